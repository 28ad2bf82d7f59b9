"""Token buckets that keep a provider within its requests and tokens per minute.

Plain code with the time passed in: every method takes ``now`` (monotonic seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """A bucket of ``capacity`` that refills at ``per_s`` and may run into debt.

    Debt arises when a call turns out to cost more than was taken for it up front;
    later calls then wait until the bucket is back above what they need.
    """

    capacity: float
    per_s: float
    level: float = field(default=-1.0)
    stamp: float = 0.0

    def __post_init__(self) -> None:
        if self.level < 0:
            self.level = self.capacity

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.per_s)
            self.stamp = now

    def wait_s(self, amount: float, now: float) -> float:
        """Return how long until ``amount`` (capped at capacity) can be taken."""
        self._refill(now)
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) / self.per_s

    def backlog_wait_s(self, amount: float, now: float) -> float:
        """Return how long until ``amount`` in all (uncapped: a queue's total) has refilled."""
        self._refill(now)
        return max(0.0, (amount - self.level) / self.per_s)

    def take(self, amount: float, now: float) -> None:
        """Take ``amount`` (capped at capacity) now, even into debt."""
        self._refill(now)
        self.level -= min(amount, self.capacity)

    def adjust(self, delta: float, now: float) -> None:
        """Put back ``delta`` (positive: overestimated) or take more (negative)."""
        self._refill(now)
        self.level = min(self.capacity, self.level + delta)


BURST_S = 10.0
"""Seconds of budget a bucket holds when full."""


def _bucket(per_minute: int, *, minimum: float, now: float) -> TokenBucket:
    per_s = per_minute / 60.0
    return TokenBucket(max(minimum, per_s * BURST_S), per_s, stamp=now)


@dataclass(slots=True)
class RateLimiter:
    """Requests-per-minute and tokens-per-minute buckets, plus holds the provider asks for."""

    requests: TokenBucket | None
    tokens: TokenBucket | None
    hold_until: float = 0.0
    """Nothing is admitted before this time (a 429's Retry-After, a spent budget)."""

    @classmethod
    def per_minute(cls, rpm: int | None, tpm: int | None, now: float) -> RateLimiter:
        """Build a limiter for the given limits; ``None`` means unlimited.

        Each bucket holds `BURST_S` seconds of its budget (at least one request), so a
        quiet provider takes a short burst but never a whole minute's worth at once:
        providers enforce their per-minute limits over shorter windows.
        """
        requests = _bucket(rpm, minimum=1.0, now=now) if rpm else None
        tokens = _bucket(tpm, minimum=1.0, now=now) if tpm else None
        return cls(requests, tokens)

    def wait_s(self, tokens: int, now: float) -> float:
        """Return how long until a call estimated at ``tokens`` may start."""
        waits = [max(0.0, self.hold_until - now)]
        if self.requests is not None:
            waits.append(self.requests.wait_s(1, now))
        if self.tokens is not None:
            waits.append(self.tokens.wait_s(tokens, now))
        return max(waits)

    def backlog_wait_s(self, requests: int, tokens: int, now: float) -> float:
        """Return how long until ``requests`` calls totalling ``tokens`` could all start."""
        waits = [max(0.0, self.hold_until - now)]
        if self.requests is not None:
            waits.append(self.requests.backlog_wait_s(requests, now))
        if self.tokens is not None:
            waits.append(self.tokens.backlog_wait_s(tokens, now))
        return max(waits)

    def take(self, tokens: int, now: float) -> None:
        """Account for a call estimated at ``tokens`` starting now."""
        if self.requests is not None:
            self.requests.take(1, now)
        if self.tokens is not None:
            self.tokens.take(tokens, now)

    def settle(self, estimated: int, actual: int | None, now: float) -> None:
        """Correct the token bucket once a call's real usage is known."""
        if self.tokens is not None and actual is not None:
            self.tokens.adjust(estimated - actual, now)

    def hold(self, until: float) -> None:
        """Admit nothing before ``until``."""
        self.hold_until = max(self.hold_until, until)
