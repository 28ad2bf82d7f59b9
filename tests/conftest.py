"""Fixtures shared by every test: no actor outlives its test."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest
from support import KEYS, Deployment

from runtime.testing import FAKES, FakeProvider


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=5)


@pytest.fixture
def fakes() -> Iterator[Callable[..., FakeProvider]]:
    """Start loopback fake providers by protocol name; all are stopped after the test."""
    started: list[FakeProvider] = []

    def start(protocol: str, **options: Any) -> FakeProvider:
        options.setdefault("keys", {KEYS[protocol]})
        fake = FAKES[protocol](**options).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """A place for a test's config file and audit log; its boards are closed after the test."""
    deployed = Deployment(tmp_path / "config.toml", tmp_path / "audit.jsonl")
    yield deployed
    for board in deployed.boards:
        board.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a black-holed host)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]
