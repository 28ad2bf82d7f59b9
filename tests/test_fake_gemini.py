import json

import httpx
import pytest
from httpx_sse import connect_sse

from runtime.testing import Answer, Fail, FakeGemini, StreamError

pytestmark = pytest.mark.timeout(10)

KEY = "AIzaSy-fake-0123456789abcdef"
GENERATE = "/models/gemini-2.5-flash:generateContent"
STREAM = "/models/gemini-2.5-flash:streamGenerateContent?alt=sse"


@pytest.fixture
def fake():
    with FakeGemini(keys={KEY}) as fake:
        yield fake


@pytest.fixture
def client(fake):
    with httpx.Client(base_url=fake.base_url, headers={"x-goog-api-key": KEY}) as c:
        yield c


def ask(text="Hello", **config):
    body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    return {**body, "generationConfig": config} if config else body


def chunks_of(client, body):
    with connect_sse(client, "POST", STREAM, json=body) as source:
        assert source.response.status_code == 200
        return [json.loads(event.data) for event in source.iter_sse()]


def test_base_url_is_the_v1beta_root(fake):
    """The base URL is the loopback API root with Gemini's version path."""
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/v1beta"


def test_answer_is_a_generate_content_response(client):
    """A non-streamed answer has one model candidate, ``STOP`` and full usage metadata."""
    body = client.post(GENERATE, json=ask("x" * 8)).json()
    (candidate,) = body["candidates"]
    assert candidate["content"]["role"] == "model"
    assert candidate["content"]["parts"][0]["text"]
    assert (candidate["finishReason"], candidate["index"]) == ("STOP", 0)
    usage = body["usageMetadata"]
    assert usage["promptTokenCount"] == 2
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert body["modelVersion"] == "gemini-2.5-flash"
    assert body["responseId"]


def test_stream_is_responses_with_finish_on_the_last(fake, client):
    """An SSE stream sends response chunks whose texts join up; only the last finishes."""
    text = " ".join(f"word{i}" for i in range(20))
    fake.script.append(Answer(text))
    chunks = chunks_of(client, ask())
    assert len(chunks) > 1
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == text
    assert [("finishReason" in c["candidates"][0]) for c in chunks] == [False] * (
        len(chunks) - 1
    ) + [True]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == len(text) // 4
    assert all("promptTokenCount" in c["usageMetadata"] for c in chunks)
    assert len({c["responseId"] for c in chunks}) == 1


def test_stream_without_alt_sse_is_one_json_array(fake, client):
    """Without ``alt=sse`` a stream is one JSON array of the same response chunks."""
    fake.script.append(Answer(" ".join(["word"] * 20)))
    response = client.post(STREAM.removesuffix("?alt=sse"), json=ask())
    assert response.headers["content-type"].startswith("application/json")
    chunks = response.json()
    assert len(chunks) > 1
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_max_output_tokens_finishes_with_max_tokens(fake, client):
    """An answer longer than ``maxOutputTokens`` is cut and finishes with ``MAX_TOKENS``."""
    fake.script.append(Answer("abcd" * 10))
    body = client.post(GENERATE, json=ask(maxOutputTokens=3)).json()
    assert body["candidates"][0]["content"]["parts"][0]["text"] == "abcd" * 3
    assert body["candidates"][0]["finishReason"] == "MAX_TOKENS"


def test_stop_sequences_cut_the_answer(fake, client):
    """An answer is cut before the first of ``stopSequences`` and finishes with ``STOP``."""
    fake.script.append(Answer("red green blue"))
    body = client.post(GENERATE, json=ask(stopSequences=["blue"])).json()
    assert body["candidates"][0]["content"]["parts"][0]["text"] == "red green "
    assert body["candidates"][0]["finishReason"] == "STOP"


def test_key_may_be_a_query_parameter(fake):
    """A key passed as ``?key=`` is accepted as well as the header."""
    response = httpx.post(f"{fake.base_url}{GENERATE}", params={"key": KEY}, json=ask())
    assert response.status_code == 200


def test_missing_key_gets_permission_denied(fake):
    """A request without any key gets 403 ``PERMISSION_DENIED``."""
    response = httpx.post(f"{fake.base_url}{GENERATE}", json=ask())
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"


def test_wrong_key_gets_api_key_invalid(fake, client):
    """A wrong key gets 400 ``INVALID_ARGUMENT`` with an ``ErrorInfo`` of ``API_KEY_INVALID``."""
    response = client.post(GENERATE, json=ask(), headers={"x-goog-api-key": "AIza-wrong"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["message"] == "API key not valid. Please pass a valid API key."
    info = error["details"][0]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert (info["reason"], info["domain"]) == ("API_KEY_INVALID", "googleapis.com")


def test_revoked_key_gets_api_key_invalid(fake, client):
    """After `revoke_key` the same key gets ``API_KEY_INVALID``."""
    assert client.post(GENERATE, json=ask()).status_code == 200
    fake.revoke_key(KEY)
    response = client.post(GENERATE, json=ask())
    assert response.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_unknown_model_gets_not_found(client):
    """A model the fake does not offer gets 404 ``NOT_FOUND`` naming it."""
    response = client.post("/models/gemini-0:generateContent", json=ask())
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (404, "NOT_FOUND")
    assert error["message"].startswith("models/gemini-0 is not found for API version v1beta")


def test_missing_contents_gets_invalid_argument(client):
    """A body without ``contents`` gets 400 ``INVALID_ARGUMENT``."""
    response = client.post(GENERATE, json={})
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_models_endpoints_list_and_get(client):
    """``GET /v1beta/models`` lists ``Model`` resources; ``GET models/{id}`` gets one."""
    names = [m["name"] for m in client.get("/models").json()["models"]]
    assert "models/gemini-2.5-flash" in names
    model = client.get("/models/gemini-2.5-flash").json()
    assert model["name"] == "models/gemini-2.5-flash"
    assert model["displayName"] == "Gemini 2.5 Flash"
    assert "generateContent" in model["supportedGenerationMethods"]
    assert model["inputTokenLimit"] > model["outputTokenLimit"] > 0
    assert client.get("/models/gemini-0").status_code == 404


def test_answers_carry_no_rate_limit_headers(client):
    """Gemini sends no rate-limit headers."""
    headers = client.post(GENERATE, json=ask()).headers
    assert not [name for name in headers if "ratelimit" in name]


def test_rate_limit_failure_carries_retry_info(fake, client):
    """A 429 is ``RESOURCE_EXHAUSTED`` with quota, help and ``RetryInfo`` details."""
    fake.script.extend([Fail(429, retry_after_s=2), Fail(429, retry_after_s=0.5)])
    error = client.post(GENERATE, json=ask()).json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in error["details"]}
    assert set(details) == {"QuotaFailure", "Help", "RetryInfo"}
    assert details["RetryInfo"]["retryDelay"] == "2s"
    error = client.post(GENERATE, json=ask()).json()["error"]
    assert error["details"][-1]["retryDelay"] == "0.5s"


@pytest.mark.parametrize(("status", "name"), [(500, "INTERNAL"), (503, "UNAVAILABLE")])
def test_server_failures_have_google_status_names(fake, client, status, name):
    """Server failures answer with the Google status name of their code."""
    fake.script.append(Fail(status))
    response = client.post(GENERATE, json=ask())
    assert response.status_code == status
    assert response.json()["error"]["status"] == name


def test_stream_error_cuts_the_stream(fake, client):
    """A mid-stream failure cuts the connection after the chunks already sent."""
    fake.script.append(StreamError(after_chunks=1))
    received = []
    with (
        connect_sse(client, "POST", STREAM, json=ask()) as source,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        received.extend(source.iter_sse())
    assert len(received) == 1
    assert "finishReason" not in received[0].json()["candidates"][0]
