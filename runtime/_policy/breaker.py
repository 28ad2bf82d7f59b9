"""A circuit breaker: a state machine over a provider's consecutive failures.

Plain code with the time passed in. ``closed`` admits everything; ``failures``
consecutive failures that say the provider is unhealthy open it; after ``cooldown_s``
one trial call is admitted (``half_open``) and only its outcome closes or re-opens it.

Every call gets a ticket when it starts (`Breaker.on_start`) and hands it back with its
outcome. A ticket is the breaker's epoch, which moves on at every change of state, so
an outcome from an earlier epoch says nothing about now and is ignored: a call that
started before the breaker opened cannot close it when it answers, nor can a late
failure re-open a breaker that a trial has just closed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
    state: BreakerState = BreakerState.CLOSED
    streak: int = 0
    opened_at: float = 0.0
    epoch: int = 0
    """Moves on at every change of state; the tickets of calls started in it."""

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

    def on_success(self, ticket: int) -> BreakerState | None:
        """Record the success of the call holding ``ticket``; return the new state if changed."""
        if ticket != self.epoch:
            return None
        self.streak = 0
        if self.state is BreakerState.HALF_OPEN:
            self._move(BreakerState.CLOSED)
            return BreakerState.CLOSED
        return None

    def on_failure(self, ticket: int, now: float) -> BreakerState | None:
        """Record a failure that says the provider is unhealthy; return the new state if changed."""
        if ticket != self.epoch or self.state is BreakerState.OPEN:
            return None
        self.streak += 1
        if self.state is BreakerState.HALF_OPEN or self.streak >= self.failures:
            self.opened_at = now
            self._move(BreakerState.OPEN)
            return BreakerState.OPEN
        return None

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
