"""Fixtures shared by every test: no actor outlives its test."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest
from _postgres_server import postgres_schema_url, postgres_url  # noqa: F401 - fixtures
from support import AWS_SECRET, KEYS, Deployment

from runtime.testing import FAKES, FakeProvider

pytest_plugins = ["_redis_server"]


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
        if protocol == "bedrock":  # signatures made with the aws_keys secret are verified
            options.setdefault("secrets", {KEYS["bedrock"]: AWS_SECRET})
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


_ENVIRONMENT = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment with no AWS credentials anywhere, and no instance metadata to ask."""
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("BOTO_CONFIG", str(tmp_path / "boto"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


@pytest.fixture
def aws_keys(no_aws: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """AWS credentials in the environment whose access key id the fake Bedrock accepts."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEYS["bedrock"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    return KEYS["bedrock"]
