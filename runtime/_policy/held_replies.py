"""Replies held until the records they follow are written, and when to let them go.

The router sends an ended task's reply only once the task's terminal record is written,
and writes its buffered records once its inbox is drained, so that the tasks ending
together share one write (see `actors._router.RouterActor.flush`). `HeldReplies` says
when the held replies must go out sooner: when there are many (``max_held``), or when the
first has waited ``max_wait_s`` because the inbox never drains (a flood of new tasks
arriving as others end). Plain code; the caller passes the time.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")

MAX_HELD = 64
"""Replies held at most: the one that makes this many sends them all, after the write."""
MAX_WAIT_S = 0.005
"""How long the first held reply may wait for an inbox that does not drain."""


class HeldReplies(Generic[T]):
    """Replies waiting for the next write, oldest first."""

    def __init__(self, max_held: int = MAX_HELD, max_wait_s: float = MAX_WAIT_S) -> None:
        self._held: list[T] = []
        self._since = 0.0
        self._max_held = max_held
        self._max_wait_s = max_wait_s

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, reply: T, now: float) -> bool:
        """Hold ``reply``; return whether the held replies are due now (too many)."""
        if not self._held:
            self._since = now
        self._held.append(reply)
        return len(self._held) >= self._max_held

    def due(self, now: float) -> bool:
        """Whether replies are held and the first has waited ``max_wait_s`` or longer."""
        return bool(self._held) and now - self._since >= self._max_wait_s

    def take(self) -> list[T]:
        """Every held reply, oldest first; none are held after."""
        held, self._held = self._held, []
        return held
