"""A circuit breaker: a state machine over a provider's consecutive failures.

Plain code with the time passed in. ``closed`` admits everything; ``failures``
consecutive failures that say the provider is unhealthy open it; after ``cooldown_s``
one trial call is admitted (``half_open``) and its outcome closes or re-opens it.
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
    trial_in_flight: bool = False

    def available_at(self) -> float:
        """Return when the breaker next admits a call (0.0: now, if closed)."""
        if self.state is BreakerState.CLOSED:
            return 0.0
        return self.opened_at + self.cooldown_s

    def admits(self, now: float) -> bool:
        """Whether a call may start now (without starting it)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            return now >= self.opened_at + self.cooldown_s
        return not self.trial_in_flight

    def on_start(self, now: float) -> BreakerState | None:
        """Record that an admitted call started; return the new state if it changed."""
        if self.state is BreakerState.OPEN and now >= self.opened_at + self.cooldown_s:
            self.state = BreakerState.HALF_OPEN
            self.trial_in_flight = True
            return self.state
        if self.state is BreakerState.HALF_OPEN:
            self.trial_in_flight = True
        return None

    def on_success(self) -> BreakerState | None:
        """Record a success; return the new state if it changed."""
        self.streak = 0
        self.trial_in_flight = False
        if self.state is BreakerState.CLOSED:
            return None
        self.state = BreakerState.CLOSED
        return self.state

    def on_failure(self, now: float) -> BreakerState | None:
        """Record a failure that says the provider is unhealthy; return the new state if changed."""
        self.streak += 1
        self.trial_in_flight = False
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.streak >= self.failures
        ):
            self.state = BreakerState.OPEN
            self.opened_at = now
            return self.state
        return None

    def on_neutral(self) -> None:
        """Record an outcome that says nothing about health (e.g. a bad request)."""
        self.trial_in_flight = False
        if self.state is BreakerState.HALF_OPEN:
            self.state = BreakerState.OPEN
