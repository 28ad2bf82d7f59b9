"""``callboard serve`` end to end: it listens, and SIGTERM drains requests in flight first."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from runtime.testing import Answer, FakeOpenAI

pytestmark = pytest.mark.timeout(60)
BOUND_S = 20.0


def test_sigterm_drains_requests_in_flight(tmp_path: Path) -> None:
    """A request in flight at SIGTERM gets its answer; the process exits 0 with every record."""
    audit = tmp_path / "audit.jsonl"
    with FakeOpenAI(script=[Answer("the slow answer", delay_s=1.0)]) as fake:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[audit]\npath = "{audit}"\n[metrics]\npath = "off"\n'
            "[startup]\ncheck_credentials = false\n[gateway]\ndrain_s = 10\n"
            f'[providers.gpt]\ntype = "openai"\nbase_url = "{fake.base_url}"\n'
            'model = "gpt-4o"\napi_key = "test-key"\n'
            '[roles.coder]\nproviders = ["gpt"]\n'
        )
        child = subprocess.Popen(
            [sys.executable, "-m", "runtime", "serve", "--config", str(config), "--port", "0"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert child.stderr is not None
            line = child.stderr.readline()
            assert "listening on" in line, line
            url = line.split("listening on ")[1].split()[0]
            body = {"model": "coder", "messages": [{"role": "user", "content": "Hi"}]}
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                answer = pool.submit(
                    httpx.post, f"{url}/v1/chat/completions", json=body, timeout=BOUND_S
                )
                fake.wait_for_requests(1, chat_only=True)
                child.send_signal(signal.SIGTERM)
                reply = answer.result(BOUND_S)
            status = child.wait(BOUND_S)
        finally:
            if child.poll() is None:
                child.kill()
            child.communicate()
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "the slow answer"
    assert status == 0
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    outcomes = [e["outcome"] for e in events if e["event"] == "task_finished"]
    assert outcomes == ["ok"]
    assert events[-1]["event"] == "board_closed"
