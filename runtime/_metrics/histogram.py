"""Latency histograms with buckets 10% apart: percentiles in constant memory, mergeable.

A latency maps to a bucket index (`bucket_of`); counts per bucket add up across calls,
hours and providers, and a percentile read from them is within 10% of the true value.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

GROWTH = 1.1
BOUNDS: tuple[float, ...] = tuple(0.1 * GROWTH**i for i in range(int(math.log(6e6, GROWTH)) + 1))
"""Bucket upper bounds in ms: 0.1 ms to about 10 minutes; a last bucket holds the rest."""


def bucket_of(ms: float) -> int:
    """Return the index of the bucket that counts ``ms``."""
    return bisect.bisect_left(BOUNDS, ms)


def percentile(counts: Mapping[int, int], q: float, max_ms: float | None = None) -> float | None:
    """Return the latency below which a ``q`` share (0..1) of the counts falls, within 10%."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen >= rank:
            bound = BOUNDS[index] if index < len(BOUNDS) else math.inf
            return min(bound, max_ms) if max_ms is not None else bound
    return max_ms


def percentiles(counts: Mapping[int, int], quantiles: Sequence[float]) -> list[float | None]:
    """Return `percentile` for each of ``quantiles`` (ascending), sorting the counts once."""
    total = sum(counts.values())
    if total == 0:
        return [None] * len(quantiles)
    ordered = sorted(counts.items())
    values: list[float | None] = []
    position, seen = 0, ordered[0][1]
    for q in quantiles:
        rank = q * total
        while seen < rank and position + 1 < len(ordered):
            position += 1
            seen += ordered[position][1]
        index = ordered[position][0]
        bound = BOUNDS[index] if index < len(BOUNDS) else math.inf
        values.append(bound if seen >= rank else None)
    return values


@dataclass(slots=True)
class LatencyHistogram:
    """Counts of latencies per bucket, with their sum and maximum."""

    counts: Counter[int] = field(default_factory=Counter)
    total: int = 0
    sum_ms: float = 0.0
    max_ms: float = 0.0

    def add(self, ms: float, count: int = 1) -> None:
        """Count ``count`` latencies of ``ms``."""
        self.counts[bucket_of(ms)] += count
        self.total += count
        self.sum_ms += ms * count
        self.max_ms = max(self.max_ms, ms)

    def add_bucket(self, index: int, count: int) -> None:
        """Add ``count`` latencies known only by their bucket (from a rollup)."""
        self.counts[index] += count
        self.total += count

    def percentile(self, q: float) -> float | None:
        """Return the ``q`` percentile (0..1), within 10%."""
        return percentile(self.counts, q, self.max_ms or None)

    def summary(self) -> dict[str, float | None]:
        """Return mean, p50, p95, p99 and max in ms."""
        mean = self.sum_ms / self.total if self.total and self.sum_ms else None
        return {
            "mean": _round(mean),
            "p50": _round(self.percentile(0.5)),
            "p95": _round(self.percentile(0.95)),
            "p99": _round(self.percentile(0.99)),
            "max": _round(self.max_ms if self.total else None),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
