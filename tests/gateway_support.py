"""A gateway served from a thread of the test, in front of a board on loopback fakes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from types import TracebackType
from typing import Self

from runtime import Callboard
from runtime._gateway.server import serve

WAIT_S = 10.0


class ServedGateway:
    """Serves ``board`` on ``127.0.0.1`` (a free port) from its own thread and loop."""

    def __init__(self, board: Callboard) -> None:
        self.board = board
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._listening: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._done: concurrent.futures.Future[None] | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        self._done = asyncio.run_coroutine_threadsafe(
            serve(self.board, "127.0.0.1", 0, on_listening=self._listening.set_result,
                  stop=self._stop, signals=False),
            self._loop,
        )  # fmt: skip
        self.url = self._listening.result(WAIT_S)
        return self

    def stop(self) -> None:
        """Stop listening, drain, and end the loop."""
        if self._done is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._done.result(WAIT_S + self.board.config.gateway.drain_s)
        self._done = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(WAIT_S)
        self._loop.close()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
