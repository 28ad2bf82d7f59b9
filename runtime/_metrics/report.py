"""Reports on how providers do in each role: aggregates per group, flags, and trends.

Plain code. A `GroupAccumulator` folds in rollup rows and raw rows alike; `build_report`
turns the accumulators into `GroupStats` and flags the providers that do clearly worse
than another serving the same role.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime._metrics.histogram import LatencyHistogram, percentiles
from runtime._rows import iso

GroupBy = Literal["provider,role", "provider", "role", "model", "tenant"]
GROUPINGS: tuple[GroupBy, ...] = ("provider,role", "provider", "role", "model", "tenant")
RAW_ONLY = ("tenant",)
"""Groupings the rollups do not keep: read from the raw rows (kept ``retain_days``)."""
NO_TENANT = "-"
"""The tenant of calls made for nobody in particular, in reports by tenant."""
MIN_CALLS_TO_FLAG = 20
"""A provider needs this many calls in a role before it is compared with another."""
WORSE_SUCCESS_POINTS = 5.0
"""A success rate this many percentage points below the best is flagged..."""
WORSE_RATIO = 1.5
"""...and so is a p95 latency or a cost per call this many times the best."""


def key_fields(by: GroupBy) -> tuple[str, ...]:
    """Return the row fields a grouping keys on."""
    return tuple(by.split(","))


@dataclass(slots=True)
class GroupAccumulator:
    """Sums for one group of calls, fed rollup rows or raw rows."""

    calls: int = 0
    successes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    fallback_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    priced_calls: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    ttft: LatencyHistogram = field(default_factory=LatencyHistogram)

    def add_counts(
        self,
        *,
        outcome: str,
        calls: int,
        fallback_calls: int,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int,
        cost_usd: float,
        priced_calls: int,
    ) -> None:
        """Add one rollup row (or one raw row with ``calls=1``)."""
        self.calls += calls
        if outcome == "ok":
            self.successes += calls
        else:
            self.failures[outcome] += calls
        self.fallback_calls += fallback_calls
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cached_tokens += cached_tokens
        self.cost_usd += cost_usd
        self.priced_calls += priced_calls

    def stats(self, key: Mapping[str, str]) -> GroupStats:
        """Freeze the sums into a `GroupStats` for ``key``."""
        return GroupStats(
            key=dict(key),
            calls=self.calls,
            successes=self.successes,
            failures=dict(sorted(self.failures.items())),
            fallback_calls=self.fallback_calls,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cached_tokens=self.cached_tokens,
            cost_usd=round(self.cost_usd, 6) if self.priced_calls else None,
            unpriced_calls=self.calls - self.priced_calls,
            latency_ms=_percentiles(self.latency, (0.5, 0.95, 0.99)),
            ttft_ms=_percentiles(self.ttft, (0.5, 0.95)),
        )


def _percentiles(histogram: LatencyHistogram, quantiles: Sequence[float]) -> dict[str, float]:
    """Read percentiles as bucket bounds, so rollups and raw rows give the same figures."""
    values = percentiles(histogram.counts, quantiles)
    return {
        f"p{round(q * 100)}": round(v, 1)
        for q, v in zip(quantiles, values, strict=True)
        if v is not None
    }


@dataclass(frozen=True, slots=True)
class GroupStats:
    """How one group of calls did (a provider in a role, a provider, a role or a model).

    Latency and time to first token are percentiles of the calls that answered, within
    10%. ``cost_usd`` sums the calls whose model has a known price (``None`` when none
    has); ``unpriced_calls`` counts the others, whose cost is unknown, never zero.
    """

    key: dict[str, str]
    calls: int
    successes: int
    failures: dict[str, int]
    fallback_calls: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float | None
    unpriced_calls: int
    latency_ms: dict[str, float]
    ttft_ms: dict[str, float]

    @property
    def success_rate(self) -> float | None:
        """Share of calls that answered, 0..1."""
        return self.successes / self.calls if self.calls else None

    @property
    def fallback_share(self) -> float | None:
        """Share of these calls that reached the provider only by fallback, 0..1."""
        return self.fallback_calls / self.calls if self.calls else None

    @property
    def cost_per_call(self) -> float | None:
        """Mean cost of the calls with a known price."""
        priced = self.calls - self.unpriced_calls
        return self.cost_usd / priced if self.cost_usd is not None and priced else None

    def label(self) -> str:
        """Return the group's key as text, e.g. ``claude/coder``."""
        return "/".join(self.key.values())

    def to_dict(self) -> dict[str, Any]:
        """Return the group as a JSON-ready mapping."""
        return {
            **self.key,
            "calls": self.calls,
            "successes": self.successes,
            "success_rate": _round(self.success_rate, 4),
            "failures": self.failures,
            "latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "cost_usd": self.cost_usd,
            "unpriced_calls": self.unpriced_calls,
            "cost_per_call_usd": _round(self.cost_per_call, 6),
            "fallback_calls": self.fallback_calls,
            "fallback_share": _round(self.fallback_share, 4),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True, slots=True)
class Flag:
    """A provider doing clearly worse than another in the same role, and the figures."""

    role: str
    provider: str
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.provider}/{self.role}: " + "; ".join(self.reasons)


@dataclass(frozen=True, slots=True)
class Report:
    """A metrics report over a time window."""

    since: float
    until: float
    by: GroupBy
    filters: dict[str, str]
    groups: tuple[GroupStats, ...]
    flags: tuple[Flag, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready mapping (times in ISO 8601, UTC)."""
        return {
            "since": _when(self.since),
            "until": _when(self.until),
            "by": self.by,
            "filters": self.filters,
            "groups": [g.to_dict() for g in self.groups],
            "flags": [
                {"provider": f.provider, "role": f.role, "reasons": list(f.reasons)}
                for f in self.flags
            ],
        }

    def to_json(self) -> str:
        """Return the report as one JSON document."""
        return json.dumps(self.to_dict(), indent=2)

    def to_csv(self) -> str:
        """Return the groups as CSV, one row per group, failures as ``kind=count`` pairs."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*key_fields(self.by), *CSV_COLUMNS])
        for group in self.groups:
            writer.writerow([*group.key.values(), *_csv_values(group)])
        return out.getvalue()


CSV_COLUMNS = (
    "calls",
    "successes",
    "success_rate",
    "failures",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "ttft_p50_ms",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "unpriced_calls",
    "fallback_share",
)
LATENCY_COLUMNS = (
    ("latency_p50_ms", "latency_ms", "p50"),
    ("latency_p95_ms", "latency_ms", "p95"),
    ("latency_p99_ms", "latency_ms", "p99"),
    ("ttft_p50_ms", "ttft_ms", "p50"),
)


def _csv_values(group: GroupStats) -> list[Any]:
    row = group.to_dict()
    values = [row.get(c) for c in CSV_COLUMNS]
    values[CSV_COLUMNS.index("failures")] = " ".join(f"{k}={v}" for k, v in group.failures.items())
    for name, source, q in LATENCY_COLUMNS:
        values[CSV_COLUMNS.index(name)] = row[source].get(q)
    return values


def build_report(
    accumulators: Mapping[tuple[str, ...], GroupAccumulator],
    *,
    since: float,
    until: float,
    by: GroupBy,
    filters: Mapping[str, str],
) -> Report:
    """Freeze accumulators keyed by ``by``'s fields into a report, with flags."""
    names = key_fields(by)
    groups = tuple(
        acc.stats(dict(zip(names, key, strict=True))) for key, acc in sorted(accumulators.items())
    )
    flags = flag_worse(groups) if by == "provider,role" else ()
    return Report(since, until, by, dict(filters), groups, flags)


def flag_worse(groups: Iterable[GroupStats]) -> tuple[Flag, ...]:
    """Flag each provider doing clearly worse than the best other provider of its role.

    Only providers with at least `MIN_CALLS_TO_FLAG` calls in the role are compared. A
    provider is flagged for a success rate `WORSE_SUCCESS_POINTS` below the best, or a
    p95 latency or cost per call `WORSE_RATIO` times the best.
    """
    by_role: dict[str, list[GroupStats]] = {}
    for group in groups:
        if group.calls >= MIN_CALLS_TO_FLAG:
            by_role.setdefault(group.key["role"], []).append(group)
    flags = []
    for role, members in sorted(by_role.items()):
        for group in members:
            others = [g for g in members if g is not group]
            reasons = _reasons(group, others)
            if reasons:
                flags.append(Flag(role, group.key["provider"], tuple(reasons)))
    return tuple(flags)


def _reasons(group: GroupStats, others: list[GroupStats]) -> list[str]:
    reasons = []
    best = max(others, key=lambda g: g.success_rate or 0.0, default=None)
    if best is not None and group.success_rate is not None and best.success_rate is not None:
        gap = (best.success_rate - group.success_rate) * 100
        if gap >= WORSE_SUCCESS_POINTS:
            rival = best.key["provider"]
            reasons.append(f"success {group.success_rate:.1%} vs {rival} {best.success_rate:.1%}")
    reasons += _ratio_reason(group, others, "p95 latency", lambda g: g.latency_ms.get("p95"), _ms)
    reasons += _ratio_reason(group, others, "cost per call", lambda g: g.cost_per_call, _usd)
    return reasons


def _ratio_reason(
    group: GroupStats,
    others: list[GroupStats],
    name: str,
    value: Callable[[GroupStats], float | None],
    fmt: Callable[[float], str],
) -> list[str]:
    mine = value(group)
    rivals = [(v, g) for g in others if (v := value(g))]
    if mine is None or not rivals:
        return []
    best_value, best = min(rivals, key=lambda pair: pair[0])
    if mine >= WORSE_RATIO * best_value:
        return [f"{name} {fmt(mine)} vs {best.key['provider']} {fmt(best_value)}"]
    return []


def _ms(value: float) -> str:
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"  # noqa: PLR2004


def _usd(value: float) -> str:
    return f"${value:.4f}"


Every = Literal["hour", "day"]
PERIOD_S: dict[str, int] = {"hour": 3600, "day": 86400}


@dataclass(frozen=True, slots=True)
class Trend:
    """The same figures as a report, per hour or per day.

    ``starts`` holds the start (Unix seconds, UTC) of each period, oldest first;
    ``series`` maps each group's label (``"claude/coder"``) to one `GroupStats` per
    period, ``None`` where the group made no call in it.
    """

    every: Every
    since: float
    until: float
    by: GroupBy
    filters: dict[str, str]
    starts: tuple[float, ...]
    series: dict[str, tuple[GroupStats | None, ...]]

    def to_dict(self) -> dict[str, Any]:
        """Return the trend as a JSON-ready mapping (times in ISO 8601, UTC)."""
        return {
            "every": self.every,
            "since": _when(self.since),
            "until": _when(self.until),
            "by": self.by,
            "filters": self.filters,
            "starts": [_when(start) for start in self.starts],
            "series": {
                label: [g.to_dict() if g is not None else None for g in points]
                for label, points in self.series.items()
            },
        }

    def to_json(self) -> str:
        """Return the trend as one JSON document."""
        return json.dumps(self.to_dict(), indent=2)

    def to_csv(self) -> str:
        """Return one CSV row per (period, group) that made calls."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["period_start", "group", *CSV_COLUMNS])
        for label, points in self.series.items():
            for start, group in zip(self.starts, points, strict=True):
                if group is not None:
                    writer.writerow([_when(start), label, *_csv_values(group)])
        return out.getvalue()


def _when(seconds: float) -> str:
    """A Unix time as exports give it: ISO 8601, UTC, to the second."""
    return iso(seconds, "seconds")
