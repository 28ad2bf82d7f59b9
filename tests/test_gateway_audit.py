"""Each gateway request is one ``task_finished`` audit record, with its tenant and request id."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest
from gateway_support import ServedGateway

from runtime import Callboard
from runtime.testing import Answer, FakeOpenAI, config_for

pytestmark = pytest.mark.timeout(60)

HI = [{"role": "user", "content": "Hi"}]


def test_task_finished_carries_tenant_and_request_id(tmp_path: Path) -> None:
    """A chat, a stream and an embedding: one record each, naming the key's tenant and the id."""
    audit = tmp_path / "audit.jsonl"
    toml = f'[audit]\npath = "{audit}"\n[gateway.keys]\nteam-a = "gw-key-a"\n'
    with FakeOpenAI(default=Answer("Hello")) as fake:
        config = config_for({"gpt": fake}, {"coder": ["gpt"]}, toml=toml)
        gpt = config.providers["gpt"].model_copy(update={"embedding_model": fake.models[0]})
        config = config.model_copy(update={"providers": {"gpt": gpt}})
        with Callboard(config, check=False) as board, ServedGateway(board) as served:
            sdk = openai.OpenAI(base_url=f"{served.url}/v1", api_key="gw-key-a", max_retries=0)
            sdk.chat.completions.create(
                model="coder", messages=HI, extra_headers={"x-request-id": "req-whole"}
            )
            list(
                sdk.chat.completions.create(
                    model="coder", messages=HI, stream=True,
                    extra_headers={"x-request-id": "req-stream"},
                )
            )  # fmt: skip
            sdk.embeddings.create(
                model="coder", input=["a"], extra_headers={"x-request-id": "req-embed"}
            )
            made = httpx.post(
                f"{served.url}/v1/chat/completions",
                json={"model": "coder", "messages": HI},
                headers={"authorization": "Bearer gw-key-a"},
            )
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    finished = [r for r in records if r["event"] == "task_finished"]
    assert [(r["request_id"], r["tenant"], r["outcome"]) for r in finished] == [
        ("req-whole", "team-a", "ok"),
        ("req-stream", "team-a", "ok"),
        ("req-embed", "team-a", "ok"),
        (made.headers["x-request-id"], "team-a", "ok"),
    ]
    started = [r["request_id"] for r in records if r["event"] == "task_started"]
    assert started == [r["request_id"] for r in finished]
    assert "gw-key-a" not in audit.read_text()
