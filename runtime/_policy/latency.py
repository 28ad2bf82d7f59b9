"""Live latency of providers: decayed percentiles of recent calls, with the time passed in.

The router learns each provider's latency and time to first token from the attempts it
hears of (`LatencyBook.observe`) and reads them back when it decides: how much of a task's
deadline to keep for the next provider (`attempt_end`), and later which provider is
fastest. Keys are whatever the caller groups by: a provider id, or ``(provider, role)``.

A `DecayedHistogram` keeps bucket weights 20 % apart, so a percentile read from it is
within 20 % of the truth (rounded up). A call's weight halves every `HALF_LIFE_S`
(forward decay: a newer call simply weighs more, so adding costs O(1) and nothing is
rescaled until the weights grow large), so a provider that got slower, or faster, is seen
so within minutes.
"""

from __future__ import annotations

import collections
import math
import statistics
from collections.abc import Hashable

GROWTH = 1.2
"""Each bucket's bound is this much above the previous one's."""
SMALLEST_S = 0.001
"""The first bucket's bound: every shorter time counts as this."""
HALF_LIFE_S = 300.0
"""How long until a call weighs half as much as one made now."""
UNMEASURED_RESERVE_S = 10.0
"""The time kept for a next provider whose latency has not been measured yet."""
RECENT = 8
"""How many of a provider's last answers `RecentAnswers` keeps."""
_FEWEST_RECENT = 3
_RESCALE_AT = 512.0
"""Half-lives past the landmark at which the weights are brought back near 1."""
_LOG_GROWTH = math.log(GROWTH)
_NEGLIGIBLE = 1e-9
"""A bucket weight below this, after rescaling, is dropped."""


class DecayedHistogram:
    """Recent durations (seconds) as bucket weights; a newer one weighs more."""

    __slots__ = ("_half_life_s", "_landmark", "_total", "_weights")

    def __init__(self, half_life_s: float = HALF_LIFE_S, now: float = 0.0) -> None:
        self._half_life_s = half_life_s
        self._landmark = now
        self._weights: dict[int, float] = {}
        self._total = 0.0

    def add(self, value_s: float, now: float) -> None:
        """Count one duration observed at ``now``."""
        age = (now - self._landmark) / self._half_life_s
        if age > _RESCALE_AT:
            self._rescale(now)
            age = 0.0
        weight = 2.0**age
        index = (
            0
            if value_s <= SMALLEST_S
            else math.ceil(math.log(value_s / SMALLEST_S) / _LOG_GROWTH - 1e-9)
        )
        self._weights[index] = self._weights.get(index, 0.0) + weight
        self._total += weight

    def quantile(self, q: float) -> float | None:
        """Return the ``q`` quantile (0..1) of the weighted durations, or ``None`` if none."""
        if not self._weights:
            return None
        rank = q * self._total
        seen = 0.0
        ordered = sorted(self._weights)
        for index in ordered:
            seen += self._weights[index]
            if seen >= rank:
                return _bound(index)
        return _bound(ordered[-1])

    def weight(self, now: float) -> float:
        """Return how many calls made now the recorded ones are worth (a measure of trust)."""
        return float(self._total * 2.0 ** (-(now - self._landmark) / self._half_life_s))

    def recency(self) -> float:
        """Return a score of how much, and how lately, this was measured (higher: more).

        ``log2`` of `weight` plus ``now`` in half-lives: comparable between histograms of
        one half-life at any time, without the time (it does not change until an add).
        """
        return math.log2(self._total) + self._landmark / self._half_life_s

    def _rescale(self, now: float) -> None:
        factor = 2.0 ** (-(now - self._landmark) / self._half_life_s)
        self._weights = {
            i: w * factor for i, w in self._weights.items() if w * factor > _NEGLIGIBLE
        }
        self._total = sum(self._weights.values())
        self._landmark = now


class LatencyBook:
    """Decayed latency and time-to-first-token histograms, by key."""

    def __init__(self, half_life_s: float = HALF_LIFE_S) -> None:
        self._half_life_s = half_life_s
        self._latency: dict[Hashable, DecayedHistogram] = {}
        self._ttft: dict[Hashable, DecayedHistogram] = {}

    def observe(self, key: Hashable, latency_s: float, ttft_s: float | None, now: float) -> None:
        """Count one answered call of ``key``: its latency and, if known, time to first token."""
        self._histogram(self._latency, key, now).add(latency_s, now)
        if ttft_s is not None:
            self._histogram(self._ttft, key, now).add(ttft_s, now)

    def latency(self, key: Hashable) -> DecayedHistogram | None:
        """Return ``key``'s latencies, or ``None`` before its first answered call."""
        return self._latency.get(key)

    def ttft(self, key: Hashable) -> DecayedHistogram | None:
        """Return ``key``'s times to first token, or ``None`` before its first streamed answer."""
        return self._ttft.get(key)

    def reserve_s(self, key: Hashable) -> float:
        """Return the time to keep for ``key`` as a fallback: its p95 latency, measured live."""
        histogram = self._latency.get(key)
        p95 = histogram.quantile(0.95) if histogram is not None else None
        return UNMEASURED_RESERVE_S if p95 is None else p95

    def forget(self, keep: set[Hashable]) -> None:
        """Drop every key not in ``keep`` (providers gone after a reload)."""
        for table in (self._latency, self._ttft):
            for key in [k for k in table if k not in keep]:
                del table[key]

    def _histogram(
        self, table: dict[Hashable, DecayedHistogram], key: Hashable, now: float
    ) -> DecayedHistogram:
        histogram = table.get(key)
        if histogram is None:
            histogram = table[key] = DecayedHistogram(self._half_life_s, now)
        return histogram


class RecentAnswers:
    """The latency and time to first token of the last `RECENT` answers, for their medians."""

    __slots__ = ("_latency", "_ttft")

    def __init__(self) -> None:
        self._latency: collections.deque[float] = collections.deque(maxlen=RECENT)
        self._ttft: collections.deque[float] = collections.deque(maxlen=RECENT)

    def add(self, latency_s: float, ttft_s: float | None) -> None:
        """Count one answer."""
        self._latency.append(latency_s)
        if ttft_s is not None:
            self._ttft.append(ttft_s)

    def latency_s(self) -> float | None:
        """Return the median latency of the last answers (``None``: fewer than 3)."""
        return _median(self._latency)

    def ttft_s(self) -> float | None:
        """Return the median time to first token of the last streamed answers."""
        return _median(self._ttft)


def _median(values: collections.deque[float]) -> float | None:
    return statistics.median(values) if len(values) >= _FEWEST_RECENT else None


def attempt_end(now: float, deadline: float, reserve_s: float | None) -> float:
    """Return when an attempt started at ``now`` must end, keeping ``reserve_s`` for a fallback.

    The attempt gets the time left less the reserve, but never less than half the time
    left: a fallback that needs more than half would rarely make it, and starving the
    provider the role put first helps no one. ``None``: there is no fallback to keep
    time for, and the attempt may use the whole deadline.
    """
    if reserve_s is None:
        return deadline
    left = deadline - now
    return now + max(left - reserve_s, left / 2.0)


def _bound(index: int) -> float:
    return SMALLEST_S * GROWTH**index
