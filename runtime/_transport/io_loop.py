"""The one asyncio thread where all HTTP runs, and where actors' timers fire.

Actors never block on I/O: they hand a coroutine to `IoLoop.submit` and learn of its end
through a message sent from the future's done-callback. Timers work the same way:
`IoLoop.call_later` runs a function (usually ``ref.tell``) on this thread after a delay.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from runtime._transport.loop_inbox import LoopInbox

T = TypeVar("T")

_Spawn = tuple[Coroutine[Any, Any, Any], Callable[..., object], tuple[object, ...]]
"""A coroutine to start, the function to call when it ends, and that function's arguments."""

CLOSE_GRACE_S = 0.5
"""How long `IoLoop.close` lets running coroutines (clients closing) finish before
cancelling them."""


class IoLoop:
    """A daemon thread running an asyncio event loop until `close`."""

    def __init__(self, name: str = "callboard-io") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        self._spawns: LoopInbox[_Spawn] = LoopInbox(self._loop, self._start)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop itself (use only from its own thread)."""
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coro`` on the loop; return a future that resolves with its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def spawn(
        self,
        coro: Coroutine[Any, Any, T],
        on_done: Callable[..., object],
        *args: object,
    ) -> None:
        """Start ``coro`` on the loop; when it ends, call ``on_done(*args, task)`` there.

        The cheap form of `submit` for callers that only want to hear of the end: no
        `concurrent.futures.Future` (its lock and its chaining) stands between the task
        and the callback, which reads the `asyncio.Task` as it would that future
        (``cancelled()``, ``exception()``, ``result()``).

        Spawns go through a `LoopInbox`: those made before the loop has taken the earlier
        ones wake it once with them, so the attempts a provider starts together cost one
        wake-up of the loop instead of one each.
        """
        self._spawns.put((coro, on_done, args))  # raises RuntimeError once the loop closed

    def _start(self, spawn: _Spawn) -> None:
        """Start a spawned coroutine (on the loop), its end to be told to its callback."""
        coro, on_done, args = spawn
        self._loop.create_task(coro).add_done_callback(functools.partial(on_done, *args))

    def call_later(self, delay_s: float, callback: Callable[..., object], *args: object) -> None:
        """Run ``callback(*args)`` on the loop thread after ``delay_s`` seconds."""
        if self._closed:
            return
        self._loop.call_soon_threadsafe(self._loop.call_later, max(0.0, delay_s), callback, *args)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Run ``coro`` on the loop and block the calling thread for its result.

        Only for callers' threads (start-up checks, shutdown); never from an actor.
        """
        return self.submit(coro).result(timeout=timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Let what still runs finish briefly, cancel the rest, stop the loop, join the thread."""
        if self._closed:
            return
        self._closed = True

        async def finish_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=CLOSE_GRACE_S)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            self.run(finish_all(), timeout_s)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)
