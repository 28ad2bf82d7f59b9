"""The gateway's keys, limits, request ids, health, and what a client's disconnect does."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from gateway_support import ServedGateway
from pydantic import SecretStr

from runtime import Callboard, ConfigError, parse_config
from runtime._gateway.keys import KeyRing
from runtime.testing import Answer, FakeOpenAI, Stall, config_for

pytestmark = pytest.mark.timeout(60)

HI = [{"role": "user", "content": "Hi"}]
KEYS = '[gateway.keys]\nteam-a = "gw-key-a"\nteam-b = "gw-key-b"\n'


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(default=Answer("Hello")) as served:
        yield served


def gateway_for(fake: FakeOpenAI, toml: str = "") -> tuple[Callboard, ServedGateway]:
    config = config_for({"gpt": fake}, {"coder": ["gpt"]}, toml=toml)
    board = Callboard(config, check=False)
    return board, ServedGateway(board)


def test_key_ring_names_the_tenant() -> None:
    """A key admits its tenant; a wrong or missing key is refused with the reason."""
    ring = KeyRing({"team-a": SecretStr("k-a"), "team-b": SecretStr("k-b")})
    assert ring.admit({"authorization": "Bearer k-b"}).tenant == "team-b"
    assert ring.admit({"x-api-key": "k-a"}).tenant == "team-a"
    assert not ring.admit({"authorization": "Bearer k-c"}).admitted
    assert "no gateway key" in ring.admit({}).reason
    assert KeyRing({}).admit({}).admitted


def test_keys_in_each_api(fake: FakeOpenAI) -> None:
    """With keys, each SDK raises its own AuthenticationError for a bad key; a good one passes."""
    board, served = gateway_for(fake, KEYS)
    with board, served:
        bad = openai.OpenAI(base_url=f"{served.url}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as refused:
            bad.chat.completions.create(model="coder", messages=HI)  # type: ignore[arg-type]
        assert refused.value.code == "invalid_api_key"
        assert "wrong" not in str(refused.value)
        good = openai.OpenAI(base_url=f"{served.url}/v1", api_key="gw-key-a", max_retries=0)
        assert good.chat.completions.create(model="coder", messages=HI).choices  # type: ignore[arg-type]
        claude = anthropic.Anthropic(base_url=served.url, api_key="wrong", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as denied:
            claude.messages.create(model="coder", max_tokens=10, messages=HI)  # type: ignore[arg-type]
        assert denied.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
        claude = anthropic.Anthropic(base_url=served.url, api_key="gw-key-b", max_retries=0)
        assert claude.messages.create(model="coder", max_tokens=10, messages=HI).content  # type: ignore[arg-type]
        assert httpx.get(f"{served.url}/health").status_code == 200


def test_keys_are_secrets() -> None:
    """Gateway keys are redacted like provider keys, and never shown in the config's repr."""
    with FakeOpenAI() as fake:
        config = config_for({"gpt": fake}, {"coder": ["gpt"]}, toml=KEYS)
    assert "gw-key-a" in config.secrets()
    assert "gw-key-a" not in repr(config)


def test_requests_beyond_the_limit_are_refused_at_once(fake: FakeOpenAI) -> None:
    """Past max_in_flight, a request gets 503 at once, in the API's shape, with retry-after."""
    fake.script.append(Answer("slow", delay_s=2.0))
    board, served = gateway_for(fake, "[gateway]\nmax_in_flight = 1\n")
    with board, served:
        body = {"model": "coder", "messages": HI}
        slow = threading.Thread(
            target=httpx.post,
            args=(f"{served.url}/v1/chat/completions",),
            kwargs={"json": body, "timeout": 10},
        )
        slow.start()
        fake.wait_for_requests(1, chat_only=True)
        refused = httpx.post(f"{served.url}/v1/chat/completions", json=body)
        slow.join(10)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "overloaded"


def test_body_size_limit(fake: FakeOpenAI) -> None:
    """A body over max_body_bytes is refused with 413 in the API's shape."""
    board, served = gateway_for(fake, "[gateway]\nmax_body_bytes = 1000\n")
    with board, served:
        body = {
            "model": "coder",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "x" * 2000}],
        }
        answer = httpx.post(f"{served.url}/v1/messages", json=body)
    assert answer.status_code == 413
    assert answer.json()["error"]["type"] == "request_too_large"


def test_request_id_is_echoed(fake: FakeOpenAI) -> None:
    """x-request-id comes back as sent (or made), with the provider and task that answered."""
    board, served = gateway_for(fake)
    with board, served:
        body = {"model": "coder", "messages": HI}
        sent = httpx.post(
            f"{served.url}/v1/chat/completions", json=body, headers={"x-request-id": "r-1"}
        )
        made = httpx.post(f"{served.url}/v1/chat/completions", json=body)
    assert sent.headers["x-request-id"] == "r-1"
    assert len(made.headers["x-request-id"]) == 32
    assert made.headers["x-callboard-provider"] == "gpt"


def test_unknown_path_in_the_api_shape(fake: FakeOpenAI) -> None:
    """A path the gateway does not serve is 404 in the error shape of the API it resembles."""
    board, served = gateway_for(fake)
    with board, served:
        answer = httpx.post(f"{served.url}/v1/completions", json={})
        ready = httpx.get(f"{served.url}/ready")
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert ready.json()["providers"]["gpt"]["state"] == "ready"


def test_disconnect_cancels_the_task(fake: FakeOpenAI, tmp_path: Path) -> None:
    """A client that leaves mid-stream cancels its task and the provider call with it."""
    audit = tmp_path / "audit.jsonl"
    fake.script.append(Stall(after_chunks=1))
    board, served = gateway_for(fake, f'[audit]\npath = "{audit}"\n')
    with board, served:
        body = {"model": "coder", "messages": HI, "stream": True}
        with httpx.stream("POST", f"{served.url}/v1/chat/completions", json=body) as answer:
            first = next(answer.iter_lines())
            assert first.startswith("data: ")
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    done = [r for r in records if r["event"] == "task_finished"]
    assert [r["outcome"] for r in done] == ["cancelled"]
    assert "the caller cancelled it" in json.dumps(done)


def test_gateway_config_problems_name_their_place() -> None:
    """A mistyped [gateway] key and an unset key variable are each named with their place."""
    text = (
        '[providers.gpt]\ntype = "openai"\nmodel = "gpt-4o"\napi_key = "k"\n'
        '[gateway]\nprot = 4000\n[gateway.keys]\nteam-a = "${TEAM_A_KEY}"\n'
    )
    with pytest.raises(ConfigError) as refused:
        parse_config(text, environ={})
    message = str(refused.value)
    assert "gateway.prot" in message
    assert '"port"' in message
    assert "gateway.keys.team-a" in message
    assert "TEAM_A_KEY" in message


def test_embeddings(fake: FakeOpenAI) -> None:
    """Embeddings come back as the SDK reads them (it asks for base64 by default)."""
    config = config_for({"gpt": fake}, {"search": ["gpt"]})
    provider = config.providers["gpt"].model_copy(
        update={"embedding_model": "text-embedding-3-small"}
    )
    config = config.model_copy(update={"providers": {"gpt": provider}})
    with Callboard(config, check=False) as board, ServedGateway(board) as served:
        sdk = openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
        reply = sdk.embeddings.create(model="search", input=["one", "two"])
        floats = sdk.embeddings.create(model="search", input="one", encoding_format="float")
    assert [d.index for d in reply.data] == [0, 1]
    assert len(reply.data[0].embedding) > 0
    assert reply.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-6)
