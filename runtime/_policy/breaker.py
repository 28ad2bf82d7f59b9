"""A circuit breaker: a state machine over a provider's consecutive failures.

Plain code with the time passed in. ``closed`` admits everything; ``failures``
consecutive failures that say the provider is unhealthy open it, when at least
``failure_rate`` of the outcomes of the last ``window_s`` seconds failed too (a provider
that fails at random now and then, but mostly answers, is not taken out by an unlucky
run: under concurrency failures come back faster than answers and bunch up); after
``cooldown_s`` one trial call is admitted (``half_open``) and only its outcome closes or
re-opens it.

Every call gets a ticket when it starts (`Breaker.on_start`) and hands it back with its
outcome. A ticket is the breaker's epoch, which moves on at every change of state, so
an outcome from an earlier epoch says nothing about now and is ignored: a call that
started before the breaker opened cannot close it when it answers, nor can a late
failure re-open a breaker that a trial has just closed.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field


class BreakerState(enum.StrEnum):
    """Where the breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class Breaker:
    """Counts consecutive failures and decides whether calls may pass."""

    failures: int
    cooldown_s: float
    failure_rate: float = 0.5
    """The share of the last ``window_s`` seconds' outcomes that must be failures for a run of
    ``failures`` to open the breaker (0: the run alone opens it)."""
    window_s: float = 10.0
    state: BreakerState = BreakerState.CLOSED
    streak: int = 0
    opened_at: float = 0.0
    epoch: int = 0
    """Moves on at every change of state; the tickets of calls started in it."""
    recent: deque[tuple[float, bool]] = field(default_factory=deque)
    """The outcomes of the last ``window_s`` seconds while closed: when, and whether failed."""
    recent_failures: int = 0

    def available_at(self) -> float:
        """Return when the breaker next admits a call (0.0: now, if closed).

        While a trial is in flight that time is unknown: it is ``inf`` until the trial ends.
        """
        if self.state is BreakerState.CLOSED:
            return 0.0
        if self.state is BreakerState.HALF_OPEN:
            return float("inf")
        return self.opened_at + self.cooldown_s

    def admits(self, now: float) -> bool:
        """Whether a call may start now (without starting it)."""
        return now >= self.available_at()

    def on_start(self, now: float) -> tuple[int, BreakerState | None]:
        """Record that an admitted call starts; return its ticket, and the new state if changed.

        The first call an open breaker admits once cooled is its trial: the breaker turns
        half-open and admits nothing more until the trial's outcome is known.
        """
        if self.state is BreakerState.OPEN and now >= self.opened_at + self.cooldown_s:
            return self._move(BreakerState.HALF_OPEN), BreakerState.HALF_OPEN
        return self.epoch, None

    def on_success(self, ticket: int, now: float) -> BreakerState | None:
        """Record the success of the call holding ``ticket``; return the new state if changed."""
        if ticket != self.epoch:
            return None
        self.streak = 0
        if self.state is BreakerState.CLOSED:
            self._remember(now, failed=False)
        if self.state is BreakerState.HALF_OPEN:
            self.recent.clear()
            self.recent_failures = 0
            self._move(BreakerState.CLOSED)
            return BreakerState.CLOSED
        return None

    def on_failure(self, ticket: int, now: float) -> BreakerState | None:
        """Record a failure that says the provider is unhealthy; return the new state if changed."""
        if ticket != self.epoch or self.state is BreakerState.OPEN:
            return None
        self.streak += 1
        if self.state is BreakerState.CLOSED:
            self._remember(now, failed=True)
        if self.state is BreakerState.HALF_OPEN or self._tripped():
            self.opened_at = now
            self._move(BreakerState.OPEN)
            return BreakerState.OPEN
        return None

    def trip(self, now: float) -> bool:
        """Open the breaker now, as another process found the provider failing; say if it moved.

        An open breaker stays as it is; a trial in flight is overtaken (its outcome no longer
        moves the breaker).
        """
        if self.state is BreakerState.OPEN:
            return False
        self.streak = 0
        self.opened_at = now
        self._move(BreakerState.OPEN)
        return True

    def _remember(self, now: float, *, failed: bool) -> None:
        self.recent.append((now, failed))
        self.recent_failures += failed
        while self.recent and self.recent[0][0] < now - self.window_s:
            _, old_failed = self.recent.popleft()
            self.recent_failures -= old_failed

    def _tripped(self) -> bool:
        """Whether the run of failures is long enough, among enough failures lately."""
        if self.streak < self.failures:
            return False
        return self.recent_failures >= self.failure_rate * len(self.recent)

    def on_neutral(self, ticket: int) -> None:
        """Record an outcome that says nothing about health (a bad request, a cancelled call).

        A trial that ends so leaves the breaker open and cooled: the next call is a trial.
        """
        if ticket == self.epoch and self.state is BreakerState.HALF_OPEN:
            self._move(BreakerState.OPEN)

    def _move(self, state: BreakerState) -> int:
        self.state = state
        self.epoch += 1
        return self.epoch
