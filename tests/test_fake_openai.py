import json
import re

import httpx
import pytest
from httpx_sse import connect_sse

from runtime._chat import Usage
from runtime.testing import Answer, Fail, FakeOpenAI, StreamError

pytestmark = pytest.mark.timeout(10)

KEY = "sk-proj-0123456789abcdefghij"
GO_DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$")


@pytest.fixture
def fake():
    with FakeOpenAI(keys={KEY}) as fake:
        yield fake


@pytest.fixture
def client(fake):
    with httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield c


def ask(text="Hello", **extra):
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


def events_of(client, body):
    with connect_sse(client, "POST", "/chat/completions", json=body) as source:
        assert source.response.status_code == 200
        return [event.data for event in source.iter_sse()]


def test_base_url_is_the_v1_root(fake):
    """The base URL is the loopback API root with OpenAI's version path."""
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/v1"


def test_answer_is_a_chat_completion(client):
    """A non-streamed answer is a ``chat.completion`` object with one choice and usage."""
    body = client.post("/chat/completions", json=ask()).json()
    assert body["object"] == "chat.completion"
    assert re.fullmatch(r"chatcmpl-[A-Za-z0-9]{29}", body["id"])
    assert body["model"] == "gpt-4o-mini"
    assert isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_tokens_are_counted_as_four_characters(fake, client):
    """Usage counts about four characters to a token, and at least one."""
    fake.script.extend([Answer("y" * 20), Answer("")])
    usage = client.post("/chat/completions", json=ask("x" * 40)).json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (10, 5)
    usage = client.post("/chat/completions", json=ask("x")).json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (1, 1)


def test_scripted_usage_and_finish_are_sent_as_given(fake, client):
    """An answer's own usage and finish reason replace the counted ones."""
    fake.script.append(Answer("no", usage=Usage(7, 3), finish="content_filter"))
    body = client.post("/chat/completions", json=ask()).json()
    assert body["usage"]["prompt_tokens"] == 7
    assert body["usage"]["completion_tokens"] == 3
    assert body["choices"][0]["finish_reason"] == "content_filter"


def test_max_tokens_truncates_and_finishes_with_length(fake, client):
    """An answer longer than ``max_tokens`` is cut to it and finishes with ``length``."""
    fake.script.append(Answer("abcd" * 10))
    body = client.post("/chat/completions", json=ask(max_completion_tokens=2)).json()
    assert body["choices"][0]["message"]["content"] == "abcdabcd"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


def test_stop_sequence_cuts_the_answer(fake, client):
    """The answer ends before the first stop sequence, with finish reason ``stop``."""
    fake.script.append(Answer("one two STOP three"))
    body = client.post("/chat/completions", json=ask(stop=["STOP", "three"])).json()
    assert body["choices"][0]["message"]["content"] == "one two "
    assert body["choices"][0]["finish_reason"] == "stop"


def test_stream_sends_role_deltas_finish_usage_and_done(fake, client):
    """A stream is role chunk, text deltas, finish chunk, usage chunk, then ``[DONE]``."""
    fake.script.append(Answer("Hello there, world"))
    options = {"include_usage": True}
    data = events_of(client, ask(stream=True, stream_options=options))
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert text == "Hello there, world"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4


def test_stream_without_include_usage_has_no_usage(client):
    """Without ``stream_options.include_usage`` no chunk carries a usage field."""
    data = events_of(client, ask(stream=True))
    chunks = [json.loads(d) for d in data[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_missing_key_is_refused_with_openai_401():
    """A request without a key gets OpenAI's 401 body with a null code."""
    with FakeOpenAI(keys={KEY}) as fake:
        response = httpx.post(f"{fake.base_url}/chat/completions", json=ask())
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["message"].startswith("You didn't provide an API key.")
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, None)


def test_wrong_key_is_refused_masked(fake, client):
    """A wrong key gets ``invalid_api_key`` with the key masked as OpenAI masks it."""
    wrong = "sk-wrong0123456789abcdefXYZ1"
    response = client.post(
        "/chat/completions", json=ask(), headers={"Authorization": f"Bearer {wrong}"}
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["param"] is None
    assert f"Incorrect API key provided: sk-wrong{'*' * 16}XYZ1." in error["message"]
    assert wrong not in response.text


def test_revoked_key_is_refused_from_then_on(fake, client):
    """After `revoke_key` the same key gets 401."""
    assert client.post("/chat/completions", json=ask()).status_code == 200
    fake.revoke_key(KEY)
    response = client.post("/chat/completions", json=ask())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_no_keys_accepts_any_request():
    """A fake made with ``keys=None`` requires no key at all."""
    with FakeOpenAI() as fake:
        assert httpx.post(f"{fake.base_url}/chat/completions", json=ask()).status_code == 200


def test_unknown_model_gets_404_model_not_found(client):
    """A model the fake does not offer gets OpenAI's ``model_not_found`` 404."""
    response = client.post("/chat/completions", json={**ask(), "model": "gpt-0"})
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "The model `gpt-0` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }


def test_missing_messages_gets_400(client):
    """A body without messages gets a 400 ``invalid_request_error`` naming the parameter."""
    response = client.post("/chat/completions", json={"model": "gpt-4o"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "messages")


def test_stream_options_without_stream_gets_400(client):
    """``stream_options`` on a request that does not stream is refused, as OpenAI does."""
    response = client.post("/chat/completions", json=ask(stream_options={"include_usage": True}))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "stream_options"


def test_unknown_path_gets_invalid_url(client):
    """A path the API does not have gets OpenAI's JSON 404 naming it."""
    response = client.post("/chat/completion", json=ask())
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/chat/completion)"


def test_models_lists_the_models_offered():
    """``GET /v1/models`` lists exactly the models given, as ``model`` objects."""
    with FakeOpenAI(keys={KEY}, models=["gpt-a", "gpt-b"]) as fake:
        headers = {"Authorization": f"Bearer {KEY}"}
        body = httpx.get(f"{fake.base_url}/models", headers=headers).json()
        one = httpx.get(f"{fake.base_url}/models/gpt-b", headers=headers).json()
        missing = httpx.get(f"{fake.base_url}/models/gpt-c", headers=headers)
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["gpt-a", "gpt-b"]
    assert {m["object"] for m in body["data"]} == {"model"}
    assert one["id"] == "gpt-b"
    assert missing.status_code == 404


def test_answers_carry_rate_limit_headers(client):
    """Every answer has OpenAI's six ``x-ratelimit-*`` headers, resets as Go durations."""
    first = client.post("/chat/completions", json=ask()).headers
    second = client.post("/chat/completions", json=ask()).headers
    assert first["x-ratelimit-limit-requests"] == "5000"
    # The bucket refills continuously (5000 a minute, one every 12 ms), so on a loaded
    # machine the second answer may show the first request already paid back.
    assert int(first["x-ratelimit-remaining-requests"]) == 4999
    assert int(second["x-ratelimit-remaining-requests"]) <= 4999
    assert int(first["x-ratelimit-remaining-tokens"]) <= int(first["x-ratelimit-limit-tokens"])
    assert GO_DURATION.match(first["x-ratelimit-reset-requests"])
    assert GO_DURATION.match(first["x-ratelimit-reset-tokens"])
    assert first["x-request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("fail", "kind", "code"),
    [
        (Fail(429), "requests", "rate_limit_exceeded"),
        (Fail(429, code="insufficient_quota"), "insufficient_quota", "insufficient_quota"),
        (Fail(500), "server_error", None),
        (Fail(503), "server_error", None),
    ],
)
def test_failures_have_openai_error_bodies(fake, client, fail, kind, code):
    """Each scripted failure answers its status with OpenAI's error type and code."""
    fake.script.append(fail)
    response = client.post("/chat/completions", json=ask())
    assert response.status_code == fail.status
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (kind, code, None)
    assert error["message"]
    assert "retry-after" not in response.headers


def test_failure_retry_after_is_a_header(fake, client):
    """A failure's ``retry_after_s`` is sent as a whole-second ``retry-after`` header."""
    fake.script.append(Fail(429, retry_after_s=1.2))
    assert client.post("/chat/completions", json=ask()).headers["retry-after"] == "2"


def test_stream_error_is_a_data_error_without_done(fake, client):
    """A mid-stream failure is a ``data: {"error": ...}`` event and no ``[DONE]``."""
    fake.script.append(StreamError(after_chunks=2, message="boom"))
    data = events_of(client, ask(stream=True))
    assert "[DONE]" not in data
    chunks = [json.loads(d) for d in data]
    assert [c["choices"][0]["delta"].get("content") is not None for c in chunks[1:-1]] == [True] * 2
    assert chunks[-1] == {
        "error": {"message": "boom", "type": "server_error", "param": None, "code": None}
    }
