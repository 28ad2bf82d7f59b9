"""Work handed to an event loop from other threads, waking the loop once for a batch.

`loop.call_soon_threadsafe` wakes the loop at each call: one write to its self-pipe, one
read and one turn of its selector, and the thread switch that follows. A `LoopInbox`
queues the items instead and wakes the loop once for whatever is queued when it runs:
with many calls in flight, the items handed over together cost one wake-up. The I/O
loop's spawns and the replies bound for an asyncio caller's loop both go through one.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LoopInbox(Generic[T]):
    """Items for one event loop, each handed to ``handle`` on the loop, in order."""

    __slots__ = ("_handle", "_lock", "_loop", "_pending", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop, handle: Callable[[T], object]) -> None:
        self._loop = loop
        self._handle = handle
        self._pending: collections.deque[T] = collections.deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def put(self, item: T) -> None:
        """Queue ``item`` (from any thread); wake the loop unless a wake-up is already due.

        Raises:
            RuntimeError: the loop is closed (as ``call_soon_threadsafe`` does).
        """
        self._pending.append(item)
        with self._lock:
            if self._scheduled and not self._loop.is_closed():
                return
            self._scheduled = True
        self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        """Hand every queued item to ``handle`` (on the loop), oldest first."""
        with self._lock:
            self._scheduled = False
        pending, handle = self._pending, self._handle
        while pending:
            handle(pending.popleft())
