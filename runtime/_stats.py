"""Live aggregates of attempts and tasks, per (provider, role) and per role.

Plain code: the metrics actor owns one `StatsBook` and is its only writer; `snapshot`
returns immutable copies for callers.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from runtime._chat import AttemptRecord
from runtime._messages import TaskEvent

_GROWTH = 1.1
_BOUNDS: tuple[float, ...] = tuple(0.1 * _GROWTH**i for i in range(int(math.log(6e6, _GROWTH)) + 1))
"""Latency bucket upper bounds in ms: 0.1 ms to about 10 minutes, each 10% above the last."""


@dataclass(slots=True)
class LatencyHistogram:
    """Counts latencies in buckets 10% apart, for percentiles in constant memory."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(_BOUNDS) + 1))
    total: int = 0
    sum_ms: float = 0.0
    max_ms: float = 0.0

    def add(self, ms: float) -> None:
        """Count one latency."""
        self.counts[bisect.bisect_left(_BOUNDS, ms)] += 1
        self.total += 1
        self.sum_ms += ms
        self.max_ms = max(self.max_ms, ms)

    def percentile(self, q: float) -> float | None:
        """Return the latency below which a ``q`` share (0..1) falls, within 10%."""
        if self.total == 0:
            return None
        rank = q * self.total
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank and count:
                return min(_BOUNDS[index], self.max_ms) if index < len(_BOUNDS) else self.max_ms
        return self.max_ms

    def summary(self) -> dict[str, float | None]:
        """Return mean, p50, p95, p99 and max in ms."""
        mean = self.sum_ms / self.total if self.total else None
        return {
            "mean": _round(mean),
            "p50": _round(self.percentile(0.5)),
            "p95": _round(self.percentile(0.95)),
            "p99": _round(self.percentile(0.99)),
            "max": _round(self.max_ms if self.total else None),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass(slots=True)
class ProviderRoleStats:
    """Attempts made at one provider for one role."""

    attempts: int = 0
    successes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    fallback_attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def to_dict(self) -> dict[str, Any]:
        """Return the aggregates as a JSON-ready mapping."""
        return {
            "attempts": self.attempts,
            "successes": self.successes,
            "failures": dict(sorted(self.failures.items())),
            "fallback_attempts": self.fallback_attempts,
            "tokens": {
                "input": self.input_tokens,
                "output": self.output_tokens,
                "cached": self.cached_tokens,
            },
            "latency_ms": self.latency.summary(),
        }


@dataclass(slots=True)
class RoleStats:
    """Tasks run for one role."""

    tasks: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_fallback: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def to_dict(self) -> dict[str, Any]:
        """Return the aggregates as a JSON-ready mapping."""
        return {
            "tasks": self.tasks,
            "outcomes": dict(sorted(self.outcomes.items())),
            "answered_by_fallback": self.by_fallback,
            "latency_ms": self.latency.summary(),
        }


class StatsBook:
    """All live aggregates; fed one event at a time."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], ProviderRoleStats] = {}
        self.roles: dict[str, RoleStats] = {}

    def add_task(self, event: TaskEvent) -> None:
        """Count one task and each of its attempts."""
        for attempt in event.attempts:
            self._add_attempt(event, attempt)
        stats = self.roles.setdefault(event.role, RoleStats())
        stats.tasks += 1
        stats.outcomes[event.outcome] += 1
        answered_by_fallback = event.provider is not None and event.provider != event.first_choice
        stats.by_fallback += answered_by_fallback
        stats.latency.add(event.latency_ms)

    def _add_attempt(self, event: TaskEvent, attempt: AttemptRecord) -> None:
        stats = self.pairs.setdefault((attempt.provider, event.role), ProviderRoleStats())
        stats.attempts += 1
        stats.fallback_attempts += attempt.provider != event.first_choice
        stats.latency.add(attempt.latency_ms)
        if not attempt.ok:
            stats.failures[attempt.outcome] += 1
            return
        stats.successes += 1
        stats.input_tokens += event.usage.input_tokens
        stats.output_tokens += event.usage.output_tokens
        stats.cached_tokens += event.usage.cached_tokens

    def snapshot(self) -> Stats:
        """Return a JSON-ready copy of every aggregate."""
        return Stats(
            providers={
                f"{provider}/{role}": {"provider": provider, "role": role, **stats.to_dict()}
                for (provider, role), stats in sorted(self.pairs.items())
            },
            roles={role: stats.to_dict() for role, stats in sorted(self.roles.items())},
        )


@dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of the live aggregates, as `Callboard.stats` returns it.

    ``providers`` is keyed ``"provider/role"``; each value holds attempts, successes,
    failures by kind, fallback attempts, tokens and latency (mean, p50, p95, p99, max).
    ``roles`` holds per role the tasks, their outcomes, how many were answered by a
    fallback provider, and task latency.
    """

    providers: dict[str, dict[str, Any]]
    roles: dict[str, dict[str, Any]]

    def pair(self, provider: str, role: str) -> dict[str, Any]:
        """Return the aggregates of one provider in one role (empty if none yet)."""
        return self.providers.get(f"{provider}/{role}", {})

    def to_dict(self) -> dict[str, Any]:
        """Return the snapshot as one JSON-ready mapping."""
        return {"providers": self.providers, "roles": self.roles}
