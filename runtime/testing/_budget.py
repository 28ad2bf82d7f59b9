"""Rate-limit budgets as providers keep them, and the time formats their headers use.

Both OpenAI and Anthropic describe their per-minute limits as buckets refilled continuously:
a budget of ``limit`` per minute regains ``limit / 60`` every second. That is what makes
OpenAI report ``x-ratelimit-reset-requests: 12ms`` after one request of 5,000 a minute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PERIOD_S = 60.0


@dataclass(frozen=True, slots=True)
class BudgetState:
    """A budget as a response reports it."""

    limit: int
    remaining: int
    reset_s: float
    """Seconds until the budget is full again."""


class Budget:
    """A per-minute budget, refilled continuously; times are passed in (monotonic seconds).

    An unenforced budget still counts what is spent, for the headers, but never refuses and
    never reads as empty, so a client that honours the headers never waits on a limit the
    fake would not apply.
    """

    def __init__(self, limit: int, *, enforced: bool) -> None:
        if limit < 1:
            raise ValueError(f"a rate limit must be at least 1 a minute, not {limit}")
        self.limit = limit
        self.enforced = enforced
        self._level = float(limit)
        self._as_of: float | None = None

    def take(self, amount: int, now: float) -> bool:
        """Spend ``amount`` if the budget allows it (an unenforced one always does)."""
        self._refill(now)
        if self.enforced and self._level < amount:
            return False
        self._level = max(self._level - amount, 0.0)
        return True

    def wait_s(self, amount: int, now: float) -> float:
        """Seconds until ``amount`` can be spent (0 when it can be now)."""
        self._refill(now)
        return max(amount - self._level, 0.0) / self._rate

    def state(self, now: float) -> BudgetState:
        """The budget now, as headers report it."""
        self._refill(now)
        remaining = math.floor(self._level)
        if not self.enforced:
            remaining = max(remaining, 1)
        return BudgetState(self.limit, remaining, (self.limit - self._level) / self._rate)

    @property
    def _rate(self) -> float:
        return self.limit / PERIOD_S

    def _refill(self, now: float) -> None:
        if self._as_of is not None:
            self._level = min(self._level + (now - self._as_of) * self._rate, self.limit)
        self._as_of = now


def go_duration(seconds: float) -> str:
    """Format a duration as Go's ``time.Duration`` prints it: ``"12ms"``, ``"1s"``, ``"6m0s"``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(math.ceil(seconds * 1000), 1)}ms"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    head = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return f"{head}{_trimmed(secs, 3)}s"


def proto_duration(seconds: float) -> str:
    """Format a duration as protobuf JSON does (Google's ``retryDelay``): ``"2s"``, ``"0.5s"``."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.3f}".rstrip("0") + "s"


def rfc3339_in(seconds: float, now: datetime | None = None) -> str:
    """The UTC time ``seconds`` from ``now``, to the whole second, as ``2026-11-23T10:39:00Z``."""
    moment = (now or datetime.now(UTC)) + timedelta(seconds=math.ceil(seconds))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def whole_seconds(seconds: float) -> int:
    """Round a wait up to whole seconds, at least 1, as a ``retry-after`` header gives it."""
    return max(math.ceil(seconds), 1)


def _trimmed(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"
