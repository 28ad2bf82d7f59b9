"""A gateway served from a thread of the test, in front of a board on loopback fakes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Self

import pytest

from runtime import Callboard
from runtime._gateway.server import serve
from runtime.testing import Answer, FakeAnthropic, FakeOpenAI, config_for

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


@pytest.fixture
def primary() -> Iterator[FakeOpenAI]:
    """The first provider of role ``coder``: an OpenAI fake."""
    with FakeOpenAI(default=Answer("Hello from the primary model")) as fake:
        yield fake


@pytest.fixture
def backup() -> Iterator[FakeAnthropic]:
    """The second provider of ``coder`` and the only one of ``reviewer``: an Anthropic fake."""
    with FakeAnthropic(default=Answer("Hello from the backup model")) as fake:
        yield fake


@pytest.fixture
def gateway(primary: FakeOpenAI, backup: FakeAnthropic) -> Iterator[ServedGateway]:
    """A gateway in front of both fakes: one attempt per provider, no breaker in the way."""
    config = config_for(
        {"gpt": primary, "claude": backup},
        {"coder": ["gpt", "claude"], "reviewer": ["claude"]},
        toml="[retry]\nattempts = 1\nbackoff_initial_s = 0\n[breaker]\nfailures = 100",
    )
    with Callboard(config, check=False) as board, ServedGateway(board) as served:
        yield served
