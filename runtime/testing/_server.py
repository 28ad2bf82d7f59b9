"""A loopback HTTP server: one aiohttp application on 127.0.0.1, served from its own thread.

The server owns an asyncio loop running in a daemon thread, so tests (sync or async, on any
thread) start and stop it with plain blocking calls. `down` stops listening and drops every
open connection, so the port refuses connections; `up` listens again on the same port, so a
config pointing at the server stays valid.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Self, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware

HOST = "127.0.0.1"
_BACKLOG = 2048
"""Pending connections the socket queues: a burst of 500 at once must not overflow it (the
default 128 makes the overflow retry its SYN a second later)."""
_T = TypeVar("_T")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LoopbackServer:
    """Serves the applications ``make_app`` builds on ``127.0.0.1:port`` (0: any free port).

    ``make_app`` is called each time the server starts listening (`start`, `up`), so keep
    state in the object that builds the app, not in the app. Every request handler runs as a
    task the server tracks: `down` and `stop` cancel the ones still running, which closes
    their connections, so neither call hangs on a request that never ends.
    """

    def __init__(
        self,
        make_app: Callable[[], web.Application],
        *,
        port: int = 0,
        name: str = "loopback",
        timeout_s: float = 5.0,
    ) -> None:
        self._make_app = make_app
        self._port = port
        self._name = name
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._inflight: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        """The port served; known once the server has started."""
        if not self._port:
            raise RuntimeError(f"{self._name} has not started yet, so it has no port")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, without a trailing slash."""
        return f"http://{HOST}:{self.port}"

    @property
    def listening(self) -> bool:
        """Whether the server accepts connections now."""
        return self._runner is not None

    def start(self) -> None:
        """Start the loop thread and listen; returns once connections are accepted."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"{self._name} is already started")
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=_run_forever, args=(loop,), name=f"{self._name}-loop", daemon=True
            )
            thread.start()
            self._loop, self._thread = loop, thread
        try:
            self._call(self._listen())
        except BaseException:
            self._halt()
            raise

    def stop(self) -> None:
        """Cancel requests in flight, stop listening and end the loop thread. Idempotent."""
        if self._thread is None:
            return
        try:
            self._call(self._close())
            self._call(_drain())
        finally:
            self._halt()

    def down(self) -> None:
        """Stop listening and drop every connection: clients get "connection refused"."""
        self._call(self._close())

    def up(self) -> None:
        """Listen again, on the same port, after `down`."""
        self._call(self._listen())

    def middleware(self) -> Middleware:
        """The aiohttp middleware that lets `down` and `stop` cancel requests in flight."""

        @web.middleware
        async def track(request: web.Request, handler: _Handler) -> web.StreamResponse:
            task = asyncio.current_task()
            if task is None:  # pragma: no cover - aiohttp always runs handlers in a task
                return await handler(request)
            self._inflight.add(task)
            try:
                return await handler(request)
            finally:
                self._inflight.discard(task)

        return track

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(
            self._make_app(),
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        site = web.TCPSite(runner, HOST, self._port, reuse_address=True, backlog=_BACKLOG)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = runner.addresses[0][1]
        self._runner = runner

    async def _close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for task in list(self._inflight):
            task.cancel()
        await runner.cleanup()

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        loop = self._loop
        if loop is None or self._thread is None:
            coro.close()
            raise RuntimeError(f"{self._name} is not started")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(f"{self._name} cannot be driven from its own loop thread")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(self._timeout_s)

    def _halt(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self._timeout_s)
        if not thread.is_alive():
            loop.close()


async def _drain() -> None:
    """Cancel and await every other task of the loop, so closing it leaves none pending."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


def _run_forever(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()
