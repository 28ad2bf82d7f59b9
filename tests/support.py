"""Helpers for tests that run the whole runtime against loopback fake providers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from runtime import Callboard
from runtime._rows import AttemptRow, TaskRow
from runtime.testing import FakeProvider

T = TypeVar("T")


@dataclass
class Deployment:
    """A config file written for a test, and the boards started from it."""

    path: Path
    audit_path: Path
    boards: list[Callboard] = field(default_factory=list)

    @property
    def metrics_path(self) -> Path:
        """Where the config puts the metrics store."""
        return self.path.parent / "metrics.db"

    def write(self, text: str) -> Path:
        """Write the config file; return its path."""
        self.path.write_text(text)
        return self.path

    def board(self, *, check: bool = False) -> Callboard:
        """Start a board from the config file (closed after the test)."""
        board = Callboard.from_config(self.path, check=check, environ=ENV)
        self.boards.append(board)
        return board

    def audit(self) -> list[dict[str, Any]]:
        """Return every audit record written so far."""
        if not self.audit_path.exists():
            return []
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]

    def events(self, name: str) -> list[dict[str, Any]]:
        """Return the audit records of one event."""
        return [record for record in self.audit() if record["event"] == name]


KEYS = {
    "openai": "sk-test-openai-0001",
    "anthropic": "sk-ant-test-0002",
    "gemini": "AIzaTestKey0003",
    "azure_openai": "azure-test-key-0004",
    "bedrock": "AKIATESTBEDROCK00005",
    "ollama": "ollama-test-key-0006",
    "cohere": "co-test-key-0007",
    "replicate": "r8_test_token_0008",
}
"""Each fake's accepted key (for Bedrock: the AWS access key id, or a Bedrock API key)."""
AWS_SECRET = "test-secret-access-key-not-real"
"""The secret of Bedrock's access key id: the fake verifies signatures made with it."""
ENV_OF = {protocol: f"{protocol.upper()}_KEY" for protocol in KEYS}
ENV = {ENV_OF[protocol]: key for protocol, key in KEYS.items()}
MODELS = {
    "openai": "gpt-4o",
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
    "azure_openai": "gpt-4o",
    "bedrock": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "ollama": "llama3.2:latest",
    "cohere": "command-a-03-2025",
    "replicate": "meta/meta-llama-3-8b-instruct",
}


def provider_toml(pid: str, fake: FakeProvider, **settings: Any) -> str:
    """Return a ``[providers.<pid>]`` table pointing at ``fake``.

    Bedrock signs with AWS credentials unless ``auth = "api-key"``: then no key is set.
    """
    signed = fake.protocol == "bedrock" and settings.get("auth", "default") in ("default", "sigv4")
    values: dict[str, Any] = {
        "type": fake.protocol,
        **({} if signed else {"api_key": "${" + ENV_OF[fake.protocol] + "}"}),
        "base_url": fake.base_url,
        "model": MODELS[fake.protocol],
        **settings,
    }
    lines = [f"[providers.{pid}]"] + [f"{k} = {_toml(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def config_toml(
    deployment: Deployment,
    providers: dict[str, FakeProvider | tuple[FakeProvider, dict[str, Any]]],
    roles: dict[str, list[str] | dict[str, Any]],
    *,
    default: str | None = None,
    sections: str = "",
) -> str:
    """Return a whole config for these fakes; timeouts are short so tests stay quick."""
    parts = [f"default_provider = {_toml(default)}\n" if default else ""]
    parts.append(sections or FAST_SECTIONS)
    parts.append(f"[audit]\npath = {_toml(str(deployment.audit_path))}\n")
    parts.append(f"[metrics]\npath = {_toml(str(deployment.metrics_path))}\n")
    for pid, spec in providers.items():
        fake, extra = spec if isinstance(spec, tuple) else (spec, {})
        parts.append(provider_toml(pid, fake, **extra))
    for role, cast in roles.items():
        table = {"providers": cast} if isinstance(cast, list) else cast
        parts.append(f"[roles.{role}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in table.items()))
    return "\n".join(parts)


FAST_SECTIONS = """
[retry]
attempts = 2
backoff_initial_s = 0.05
backoff_max_s = 0.2
jitter = false

[timeouts]
connect_s = 1.0
first_byte_s = 0.5
request_s = 5.0
task_s = 10.0
validate_s = 1.0

[breaker]
failures = 3
cooldown_s = 0.5
"""


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def primary_and_backup(deployment: Deployment, primary: FakeProvider, backup: FakeProvider) -> Path:
    """Write a config casting role ``coder`` to ``primary``, then ``backup``."""
    providers = {"primary": primary, "backup": backup}
    return deployment.write(config_toml(deployment, providers, {"coder": ["primary", "backup"]}))


def run_script(script: Path, config: Path) -> subprocess.Popen[str]:
    """Start ``script`` with ``config`` in a Python process of its own; read its stdout."""
    child = subprocess.Popen(
        [sys.executable, str(script), str(config)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV},
    )
    assert child.stdout is not None
    return child


def attempt_row(**values: Any) -> AttemptRow:
    """Build an attempt row with plausible defaults for the fields not given."""
    defaults: dict[str, Any] = {
        "ts": 1_800_000_000.0,
        "task_id": "t1",
        "workflow_id": None,
        "role": "coder",
        "attempt": 1,
        "provider": "gpt",
        "model": "gpt-4o",
        "outcome": "ok",
        "status": 200,
        "latency_ms": 100.0,
        "ttft_ms": None,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_tokens": 0,
        "fallback": False,
    }
    return AttemptRow(**{**defaults, **values})


def task_row(**values: Any) -> TaskRow:
    """Build a task row with plausible defaults for the fields not given."""
    defaults: dict[str, Any] = {
        "ts": 1_800_000_000.0,
        "task_id": "t1",
        "workflow_id": None,
        "role": "coder",
        "outcome": "ok",
        "provider": "gpt",
        "model": "gpt-4o",
        "attempts": 1,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_tokens": 0,
        "latency_ms": 100.0,
        "fallback": False,
    }
    return TaskRow(**{**defaults, **values})


def eventually(probe: Callable[[], T | None], timeout_s: float = 5.0) -> T:
    """Return the first truthy answer of ``probe``, asked every 20 ms, within ``timeout_s``.

    Only for a state the runtime reaches in the background (a provider checked again),
    read through a public call such as ``board.health()``; a reply is waited on directly.

    Raises:
        TimeoutError: ``probe`` answered nothing truthy in time.
    """
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {timeout_s} s")
        pause.wait(0.02)


def callboard(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m runtime._cli ARGS`` with the fakes' keys set; output in pipes."""
    environ = {**os.environ, **ENV, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "runtime._cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        input=stdin,
        timeout=30,
        check=False,
    )
