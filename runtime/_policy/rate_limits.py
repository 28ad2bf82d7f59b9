"""What keeps a provider within its requests and tokens per minute.

Plain code with the time passed in: every method takes ``now`` (monotonic seconds).

A limit of N a minute means that no rolling 60-second window ever carries more than N.
Each limit is kept by two parts together (`PerMinute`):

- a `RollingWindow` that counts what was taken in the last minute, in half-second slots,
  and admits only what keeps the count within N: that is the guarantee;
- a `TokenBucket` holding ten seconds' worth (`BURST_S`), so a quiet provider takes a
  short burst at once and then calls are paced evenly, never a whole minute's worth in
  one go: providers enforce their per-minute limits over shorter windows too.

A call counts from when it is sent until a minute after it was answered: the provider
counts it from its arrival, somewhere in between. Tokens are estimated when a call
starts and corrected once its real usage is known (`RateLimiter.settle`), in both parts.
Every operation costs O(1) amortised: a slot is added and dropped once, and a wait is
found within the minute's slots (at most 121).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 60.0
"""The span of a per-minute limit."""
SLOT_S = 0.5
"""The window's resolution: an amount counts for 60 s plus up to one slot."""
BURST_S = 10.0
"""Seconds of budget a bucket holds when full."""


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


class RollingWindow:
    """What was taken in the last `WINDOW_S` seconds, kept within ``limit``.

    Amounts are counted per slot of `SLOT_S`; a slot counts until every window that
    could hold a moment of it has passed, so the count never falls short of any rolling
    window's. An amount larger than the whole limit is let through into an empty window.
    """

    def __init__(self, limit: float, span_s: float = WINDOW_S, slot_s: float = SLOT_S) -> None:
        self.limit = limit
        self.slot_s = slot_s
        self._span = round(span_s / slot_s)
        self._slots: deque[int] = deque()
        """The slots that count, oldest first (at most a minute's: 121)."""
        self._amounts: dict[int, float] = {}
        self.total = 0.0
        """What the window holds now."""

    def _slot(self, now: float) -> int:
        return math.floor(now / self.slot_s)

    def _expiry(self, slot: int) -> float:
        """When ``slot`` stops counting: no rolling window can hold a moment of it then."""
        return (slot + self._span + 1) * self.slot_s

    def _expire(self, now: float) -> None:
        oldest_kept = self._slot(now) - self._span
        while self._slots and self._slots[0] < oldest_kept:
            self.total -= self._amounts.pop(self._slots.popleft())
        if not self._slots:
            self.total = 0.0  # no drift from float sums

    def _freed_at(self, need: float, now: float) -> float:
        """Return when the oldest slots, expiring, free ``need``."""
        freed = 0.0
        for slot in self._slots:
            freed += self._amounts[slot]
            if freed >= need:
                return self._expiry(slot)
        return self._expiry(self._slots[-1]) if self._slots else now

    def wait_s(self, amount: float, now: float) -> float:
        """Return how long until ``amount`` fits in the window."""
        self._expire(now)
        need = self.total + min(amount, self.limit) - self.limit
        if need <= 0:
            return 0.0
        return max(0.0, self._freed_at(need, now) - now)

    def backlog_wait_s(self, amount: float, now: float) -> float:
        """Return how long until ``amount`` in all (a queue's total) could have been taken.

        What does not fit once the window is empty takes a further minute per limit's worth.
        """
        self._expire(now)
        need = self.total + amount - self.limit
        if need <= 0:
            return 0.0
        if need <= self.total:
            return max(0.0, self._freed_at(need, now) - now)
        emptied = self._expiry(self._slots[-1]) if self._slots else now
        minutes = math.ceil((need - self.total) / self.limit) - 1
        return max(0.0, emptied - now) + minutes * self._span * self.slot_s

    def take(self, amount: float, now: float) -> int:
        """Count ``amount`` as taken now; return its slot, to `give_back` it later."""
        return self.put(amount, now, now)

    def put(self, amount: float, at: float, now: float) -> int:
        """Count ``amount`` as taken at ``at`` (now or earlier); return its slot."""
        self._expire(now)
        slot = self._slot(at)
        if amount <= 0 or slot < self._slot(now) - self._span:
            return slot  # nothing, or its minute has passed already
        if slot in self._amounts:
            self._amounts[slot] += amount
        elif not self._slots or slot > self._slots[-1]:
            self._slots.append(slot)
            self._amounts[slot] = amount
        else:  # before a slot that counts: rare, and among at most 121
            self._slots.insert(bisect.bisect(self._slots, slot), slot)
            self._amounts[slot] = amount
        self.total += amount
        return slot

    def give_back(self, slot: int, amount: float, now: float) -> None:
        """Stop counting ``amount`` taken in ``slot`` (if that slot still counts)."""
        self._expire(now)
        held = self._amounts.get(slot)
        if held is not None:
            returned = min(amount, held)
            self._amounts[slot] = held - returned
            self.total -= returned


@dataclass(slots=True)
class PerMinute:
    """One per-minute limit: a rolling window for the guarantee, a bucket for the pace."""

    window: RollingWindow
    bucket: TokenBucket

    @classmethod
    def of(cls, per_minute: int, now: float) -> PerMinute:
        """Build the limit of ``per_minute``; its bucket holds at least one whole unit."""
        per_s = per_minute / WINDOW_S
        bucket = TokenBucket(max(1.0, per_s * BURST_S), per_s, stamp=now)
        return cls(RollingWindow(per_minute), bucket)

    def wait_s(self, amount: float, now: float) -> float:
        """Return how long until ``amount`` may be taken."""
        return max(self.bucket.wait_s(amount, now), self.window.wait_s(amount, now))

    def backlog_wait_s(self, amount: float, now: float) -> float:
        """Return how long until ``amount`` in all could have been taken."""
        by_pace = self.bucket.backlog_wait_s(amount, now)
        return max(by_pace, self.window.backlog_wait_s(amount, now))

    def take(self, amount: float, now: float) -> int:
        """Take ``amount`` now; return the window's slot for a later `settle`."""
        self.bucket.take(amount, now)
        return self.window.take(amount, now)

    def settle(self, slot: int, taken: float, actual: float, at: float, now: float) -> None:
        """Count ``actual`` instead of the ``taken`` of ``slot``, as of ``at``."""
        self.bucket.adjust(taken - actual, now)
        self.window.give_back(slot, taken, now)
        self.window.put(actual, at, now)


@dataclass(frozen=True, slots=True)
class Taken:
    """What `RateLimiter.take` counted for one call, and when."""

    at: float
    tokens: int
    request_slot: int = 0
    token_slot: int = 0


@dataclass(slots=True)
class RateLimiter:
    """Requests and tokens per minute, plus holds the provider asks for."""

    requests: PerMinute | None
    tokens: PerMinute | None
    hold_until: float = 0.0
    """Nothing is admitted before this time (a 429's Retry-After, a spent budget)."""

    @classmethod
    def per_minute(cls, rpm: int | None, tpm: int | None, now: float) -> RateLimiter:
        """Build a limiter for the given limits; ``None`` means unlimited."""
        requests = PerMinute.of(rpm, now) if rpm else None
        tokens = PerMinute.of(tpm, now) if tpm else None
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

    def take(self, tokens: int, now: float) -> Taken:
        """Account for a call estimated at ``tokens`` starting now."""
        request_slot = self.requests.take(1, now) if self.requests is not None else 0
        token_slot = self.tokens.take(tokens, now) if self.tokens is not None else 0
        return Taken(now, tokens, request_slot, token_slot)

    def settle(self, taken: Taken, actual: int | None, answered_at: float, now: float) -> None:
        """Count a call that ended as of ``answered_at``, and its real usage if known.

        The provider had the request by the time it answered (``answered_at``, its
        headers; the end of the call when there were none), and counts it from the moment
        it arrived, which the limiter cannot see: so the call counts from when it was
        sent until a minute after it was answered. Without ``actual`` the estimate stands.
        """
        at = min(max(answered_at, taken.at), now)
        if self.requests is not None:
            self.requests.settle(taken.request_slot, 1, 1, at, now)
        if self.tokens is not None:
            used = taken.tokens if actual is None else actual
            self.tokens.settle(taken.token_slot, taken.tokens, used, at, now)

    def refund(self, taken: Taken, now: float) -> None:
        """Give back all a call took: it could not be sent."""
        if self.requests is not None:
            self.requests.settle(taken.request_slot, 1, 0, now, now)
        if self.tokens is not None:
            self.tokens.settle(taken.token_slot, taken.tokens, 0, now, now)

    def hold(self, until: float) -> None:
        """Admit nothing before ``until``."""
        self.hold_until = max(self.hold_until, until)
