"""One trial call for the whole fleet when a shared rest (a 429's cooldown, an open breaker) ends.

Plain code with the time passed in. A rest published fleet-wide ends at the same moment in
every process; without this gate each would send its trial call at once. With it, the
first process to take the store's trial token (``SET NX`` with an expiry) sends one call;
the others hold their calls until its outcome is published: ``ok`` opens every gate, a new
rest rests everyone again. If no outcome comes before the token expires (its process
died), the next process takes the token. A store that cannot be reached opens the gate:
each process then tries by itself, as without ``[shared]``.
"""

from __future__ import annotations

import math
from enum import Enum


class TrialState(Enum):
    """Where the gate stands."""

    OPEN = "open"
    RESTING = "resting"
    """A shared rest is on: calls wait for its end, then for the token."""
    ASKING = "asking"
    """The token is being asked for."""
    WON = "won"
    """This process holds the token: its next call is the trial."""
    TRYING = "trying"
    """The trial call is in flight."""
    WAITING = "waiting"
    """Another process holds the token: wait for its outcome (or the token's expiry)."""


class TrialGate:
    """One provider's gate in one process."""

    def __init__(self, token_s: float) -> None:
        self.token_s = token_s
        self.state = TrialState.OPEN
        self._until = 0.0
        self.trial_call: int | None = None

    def rest(self, until: float) -> None:
        """A rest until ``until`` was published (by this process or another)."""
        if self.state in {TrialState.RESTING, TrialState.WAITING}:
            self._until = max(self._until, until)
        else:
            self._until = until
        self.state = TrialState.RESTING

    def wait_s(self, now: float) -> float:
        """How long a call must wait (``inf``: until the store or a trial answers)."""
        state = self.state
        if state is TrialState.OPEN or state is TrialState.WON:
            return 0.0
        if state in {TrialState.RESTING, TrialState.WAITING}:
            return max(0.0, self._until - now) if now < self._until else math.inf
        return math.inf

    def due(self, now: float) -> bool:
        """Whether to ask the store for the token now (then call `asked`)."""
        return self.state in {TrialState.RESTING, TrialState.WAITING} and now >= self._until

    def asked(self) -> None:
        """The token was asked for."""
        self.state = TrialState.ASKING

    def answered(self, won: bool | None, now: float) -> None:
        """The store's answer: ``True`` won, ``False`` another holds it, ``None`` no store."""
        if self.state is not TrialState.ASKING:
            return  # a note came first
        if won is None:
            self.state = TrialState.OPEN
        elif won:
            self.state = TrialState.WON
        else:
            self.state = TrialState.WAITING
            self._until = now + self.token_s

    def started(self, call_id: int) -> bool:
        """A call starts; return whether it is the trial."""
        if self.state is not TrialState.WON:
            return False
        self.state = TrialState.TRYING
        self.trial_call = call_id
        return True

    def ended(self, call_id: int) -> bool:
        """A call ended; return whether it was the trial and brought no new rest (say ``ok``)."""
        if call_id != self.trial_call:
            return False
        self.trial_call = None
        if self.state is not TrialState.TRYING:
            return False  # it failed: `rest` came first
        self.state = TrialState.OPEN
        return True

    def recovered(self) -> None:
        """Another process's trial succeeded."""
        self.state = TrialState.OPEN
        self.trial_call = None
