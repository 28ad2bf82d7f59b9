"""Sticky sessions: the provider that last served each session, while the session is live.

Tasks passed the same ``session`` key go first to the provider that served the session
last (its prompt cache stays warm), as long as that provider is healthy; when it fails and
another serves, the session moves there. A session idle longer than ``sticky_s`` is
forgotten; so is the oldest one when the table is full.
"""

from __future__ import annotations

from collections import OrderedDict

MAX_SESSIONS = 100_000
"""The most sessions remembered at once (the least recently used goes first)."""


class SessionTable:
    """Session key → (provider, last used), with the time passed in."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._max = max_sessions
        self._sessions: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def provider_for(self, session: str, sticky_s: float, now: float) -> str | None:
        """Return the provider that last served ``session``, unless it has been idle too long."""
        entry = self._sessions.get(session)
        if entry is None:
            return None
        provider, used = entry
        if now - used > sticky_s:
            del self._sessions[session]
            return None
        return provider

    def served(self, session: str, provider: str, now: float) -> None:
        """Note that ``provider`` answered a task of ``session`` at ``now``."""
        self._sessions[session] = (provider, now)
        self._sessions.move_to_end(session)
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sessions)
