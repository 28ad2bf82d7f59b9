import json
import re
from datetime import UTC, datetime

import httpx
import pytest
from httpx_sse import connect_sse

from runtime.testing import Answer, Fail, FakeAnthropic, StreamError

pytestmark = pytest.mark.timeout(10)

KEY = "sk-ant-api03-0123456789abcdef"
VERSION = {"anthropic-version": "2023-06-01"}
EVENTS = ["message_start", "content_block_start", "ping"]
CLOSING = ["content_block_stop", "message_delta", "message_stop"]


@pytest.fixture
def fake():
    with FakeAnthropic(keys={KEY}) as fake:
        yield fake


@pytest.fixture
def client(fake):
    with httpx.Client(base_url=fake.base_url, headers={"x-api-key": KEY, **VERSION}) as c:
        yield c


def ask(text="Hello", **extra):
    body = {"model": "claude-haiku-4-5", "max_tokens": 1024}
    return {**body, "messages": [{"role": "user", "content": text}], **extra}


def events_of(client, body):
    with connect_sse(client, "POST", "/messages", json=body) as source:
        assert source.response.status_code == 200
        return [(event.event, json.loads(event.data)) for event in source.iter_sse()]


def test_base_url_is_the_v1_root(fake):
    """The base URL is the loopback API root with Anthropic's version path."""
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/v1"


def test_answer_is_a_message(client):
    """A non-streamed answer is a ``message`` with one text block, stop reason and usage."""
    body = client.post("/messages", json=ask(system="Be brief.")).json()
    assert re.fullmatch(r"msg_01[A-Za-z0-9]{22}", body["id"])
    assert (body["type"], body["role"], body["model"]) == (
        "message",
        "assistant",
        "claude-haiku-4-5",
    )
    (block,) = body["content"]
    assert block["type"] == "text"
    assert block["text"]
    assert (body["stop_reason"], body["stop_sequence"]) == ("end_turn", None)
    assert body["usage"]["input_tokens"] == len("Be brief.\nHello") // 4
    assert body["usage"]["output_tokens"] == len(block["text"]) // 4


def test_stream_follows_the_documented_event_sequence(fake, client):
    """A stream is message_start, block start, ping, text deltas, block stop, delta, stop."""
    fake.script.append(Answer("one two three"))
    events = events_of(client, ask(stream=True))
    names = [name for name, _ in events]
    assert names == [*EVENTS, *["content_block_delta"] * 3, *CLOSING]
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert (start["content"], start["stop_reason"]) == ([], None)
    assert start["usage"]["input_tokens"] == 1
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert {d["type"] for d in deltas} == {"text_delta"}
    assert "".join(d["text"] for d in deltas) == "one two three"
    final = events[-2][1]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert final["usage"]["output_tokens"] == 3


def test_max_tokens_truncates_with_max_tokens_stop_reason(fake, client):
    """An answer longer than ``max_tokens`` is cut and stops with ``max_tokens``."""
    fake.script.extend([Answer("abcd" * 10), Answer("abcd" * 10)])
    body = client.post("/messages", json=ask(max_tokens=1)).json()
    assert (body["content"][0]["text"], body["stop_reason"]) == ("abcd", "max_tokens")
    events = events_of(client, ask(max_tokens=1, stream=True))
    assert events[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_stop_sequence_is_reported(fake, client):
    """An answer cut at a stop sequence reports ``stop_sequence`` and which one."""
    fake.script.append(Answer("alpha beta gamma"))
    body = client.post("/messages", json=ask(stop_sequences=["gamma"])).json()
    assert body["content"][0]["text"] == "alpha beta "
    assert (body["stop_reason"], body["stop_sequence"]) == ("stop_sequence", "gamma")


def test_missing_key_gets_authentication_error():
    """A request without ``x-api-key`` gets a 401 ``authentication_error``."""
    with FakeAnthropic(keys={KEY}) as fake:
        response = httpx.post(f"{fake.base_url}/messages", json=ask(), headers=VERSION)
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert body["request_id"].startswith("req_")


def test_wrong_and_revoked_keys_get_invalid_x_api_key(fake, client):
    """A wrong key, and a key once revoked, get ``invalid x-api-key``."""
    wrong = client.post("/messages", json=ask(), headers={"x-api-key": "sk-ant-nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    assert client.post("/messages", json=ask()).status_code == 200
    fake.revoke_key(KEY)
    assert client.post("/messages", json=ask()).json()["error"]["type"] == "authentication_error"


def test_missing_version_header_gets_the_real_400(fake):
    """Without ``anthropic-version`` the API answers 400 saying the header is required."""
    response = httpx.post(f"{fake.base_url}/messages", json=ask(), headers={"x-api-key": KEY})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }


def test_missing_max_tokens_gets_400(client):
    """``max_tokens`` is required, as in the real API."""
    body = ask()
    del body["max_tokens"]
    response = client.post("/messages", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "max_tokens: Field required"


def test_unknown_model_gets_not_found_error(client):
    """A model the fake does not offer gets a 404 ``not_found_error`` naming it."""
    response = client.post("/messages", json={**ask(), "model": "claude-0"})
    assert response.status_code == 404
    assert response.json()["error"] == {"type": "not_found_error", "message": "model: claude-0"}


def test_models_endpoints_list_and_get(client):
    """``GET /v1/models`` pages every model; ``GET /v1/models/{id}`` gets one or 404."""
    page = client.get("/models").json()
    ids = [m["id"] for m in page["data"]]
    assert "claude-sonnet-4-5" in ids
    assert (page["has_more"], page["first_id"], page["last_id"]) == (False, ids[0], ids[-1])
    one = client.get("/models/claude-sonnet-4-5").json()
    assert one == {
        "type": "model",
        "id": "claude-sonnet-4-5",
        "display_name": "Claude Sonnet 4.5",
        "created_at": "2025-05-22T00:00:00Z",
    }
    assert client.get("/models/claude-0").status_code == 404


def test_answers_carry_rate_limit_headers_with_rfc3339_resets(client):
    """Every answer has ``anthropic-ratelimit-*`` headers whose resets are RFC 3339 times."""
    headers = client.post("/messages", json=ask()).headers
    assert headers["anthropic-ratelimit-requests-limit"] == "4000"
    assert headers["anthropic-ratelimit-requests-remaining"] == "3999"
    assert int(headers["anthropic-ratelimit-tokens-remaining"]) < 400_000
    for name in ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", headers[name])
        assert datetime.fromisoformat(headers[name]) >= datetime.now(UTC).replace(microsecond=0)
    assert headers["request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, "rate_limit_error"), (500, "api_error"), (529, "overloaded_error")],
)
def test_failures_have_anthropic_error_bodies(fake, client, status, kind):
    """Each scripted failure answers its status with Anthropic's error type."""
    fake.script.append(Fail(status, retry_after_s=3))
    response = client.post("/messages", json=ask())
    assert response.status_code == status
    assert response.json()["error"]["type"] == kind
    assert response.headers["retry-after"] == "3"


def test_stream_error_is_an_error_event(fake, client):
    """A mid-stream failure is an ``error`` event of type ``overloaded_error``, then the end."""
    fake.script.append(StreamError(after_chunks=1))
    events = events_of(client, ask(stream=True))
    assert [name for name, _ in events] == [*EVENTS, "content_block_delta", "error"]
    assert events[-1][1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
