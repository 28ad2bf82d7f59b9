"""The fake Ollama and Cohere servers, spoken to with plain httpx, and read by their protocols."""

import json
import threading
import time

import httpx
import pytest
from httpx_sse import connect_sse

from runtime._chat import ChatRequest, EmbedRequest, Message, Tuning, Usage
from runtime._errors import ErrorKind, ProviderError
from runtime.protocols import Endpoint, HttpCall
from runtime.protocols import _cohere as cohere_protocol
from runtime.protocols import _ollama as ollama_protocol
from runtime.testing import (
    FAKES,
    Answer,
    Drop,
    Fail,
    FakeCohere,
    FakeOllama,
    Hang,
    Malformed,
    ProxyError,
    Stall,
    StreamError,
)

pytestmark = pytest.mark.timeout(10)

KEY = "co-test-key-0123456789abcdefghij"
BEARER = {"Authorization": f"Bearer {KEY}"}
TEXT = "The sky is blue because air scatters blue light the most."
OLLAMA_MODEL = "llama3.2"
COHERE_MODEL = "command-a-03-2025"


@pytest.fixture
def ollama():
    with FakeOllama() as fake:
        yield fake


@pytest.fixture
def ollama_client(ollama):
    with httpx.Client(base_url=ollama.base_url, timeout=5) as client:
        yield client


@pytest.fixture
def cohere():
    with FakeCohere(keys={KEY}) as fake:
        yield fake


@pytest.fixture
def cohere_client(cohere):
    with httpx.Client(base_url=cohere.base_url, headers=BEARER, timeout=5) as client:
        yield client


def ollama_ask(text="Why is the sky blue?", stream=None, model=OLLAMA_MODEL, **options):
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream is not None:
        body["stream"] = stream
    return {**body, "options": options} if options else body


def cohere_ask(text="Why is the sky blue?", stream=False, model=COHERE_MODEL, **tuning):
    return {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
        **tuning,
    }


def ollama_lines(client, body):
    response = client.post("/api/chat", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines() if line]


def cohere_events(client, body):
    with connect_sse(client, "POST", "/v2/chat", json=body) as source:
        assert source.response.status_code == 200
        return [(event.event, event.json()) for event in source.iter_sse()]


def send(call: HttpCall) -> httpx.Response:
    """Send a protocol's `HttpCall` as it is, with plain httpx."""
    return httpx.request(call.method, call.url, headers=dict(call.headers), json=call.json)


def _outcome(call):
    try:
        call()
    except httpx.HTTPError as error:
        return type(error)
    return None


# --- Ollama: shapes ---------------------------------------------------------------------


def test_ollama_base_url_is_the_loopback_root_without_a_version(ollama):
    """Ollama's base URL has no version path."""
    assert ollama.base_url == f"http://127.0.0.1:{ollama.port}"
    assert ollama.protocol == "ollama"


def test_ollama_answer_is_a_finished_chat_response(ollama, ollama_client):
    """``stream: false`` answers one JSON object: the message, ``done``, reason and counts."""
    ollama.script.append(Answer(TEXT))
    response = ollama_client.post("/api/chat", json=ollama_ask("x" * 40, stream=False))
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["message"] == {"role": "assistant", "content": TEXT}
    assert (body["done"], body["done_reason"]) == (True, "stop")
    assert (body["prompt_eval_count"], body["eval_count"]) == (10, len(TEXT) // 4)
    assert body["model"] == "llama3.2:latest"
    assert body["created_at"].endswith("Z")
    assert all(body[d] >= 0 for d in ("total_duration", "load_duration", "eval_duration"))


def test_ollama_streams_json_lines_by_default(ollama, ollama_client):
    """Without ``stream`` the answer is NDJSON: partial lines, then one line with ``done: true``."""
    ollama.script.append(Answer(TEXT))
    lines = ollama_lines(ollama_client, ollama_ask())
    assert len(lines) > 2
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    assert "".join(line["message"]["content"] for line in lines) == TEXT
    final = lines[-1]
    assert (final["done_reason"], final["eval_count"]) == ("stop", len(TEXT) // 4)
    assert "eval_count" not in lines[0]


def test_ollama_num_predict_and_stop_end_the_answer(ollama, ollama_client):
    """``num_predict`` cuts the answer with ``length``; a stop string cuts it with ``stop``."""
    ollama.script.extend([Answer(TEXT), Answer(TEXT)])
    short = ollama_client.post("/api/chat", json=ollama_ask(stream=False, num_predict=2)).json()
    assert (short["message"]["content"], short["done_reason"]) == (TEXT[:8], "length")
    stopped = ollama_client.post("/api/chat", json=ollama_ask(stream=False, stop=[" because"]))
    assert stopped.json()["message"]["content"] == "The sky is blue"
    assert stopped.json()["done_reason"] == "stop"


def test_ollama_model_without_a_tag_is_latest_and_a_missing_one_is_404(ollama_client):
    """``llama3.2`` is ``llama3.2:latest``; a model not pulled answers 404 with Ollama's advice."""
    assert ollama_client.post("/api/chat", json=ollama_ask(stream=False)).status_code == 200
    tagged = ollama_client.post("/api/chat", json=ollama_ask(stream=False, model="qwen3:8b"))
    assert tagged.status_code == 200
    missing = ollama_client.post("/api/chat", json=ollama_ask(model="qwen3"))
    assert missing.status_code == 404
    assert missing.json() == {"error": 'model "qwen3:latest" not found, try pulling it first'}


def test_ollama_models_given_without_tags_are_served_as_latest():
    """A fake given ``phi3`` serves and lists ``phi3:latest``."""
    with FakeOllama(models=["phi3"]) as fake, httpx.Client(base_url=fake.base_url) as client:
        assert [m["name"] for m in client.get("/api/tags").json()["models"]] == ["phi3:latest"]
        assert client.post("/api/chat", json=ollama_ask(model="phi3", stream=False)).is_success


def test_ollama_refuses_bad_requests_with_an_error(ollama_client):
    """No model, unreadable JSON, a wrong messages type and bad base64 images answer 400."""
    cases = [
        ({"messages": []}, "model is required"),
        ({"model": OLLAMA_MODEL, "messages": "hi"}, "json: cannot unmarshal string"),
        (
            {
                "model": OLLAMA_MODEL,
                "messages": [{"role": "user", "content": "?", "images": ["@@"]}],
            },
            "illegal base64 data at input byte 0",
        ),
    ]
    for body, message in cases:
        response = ollama_client.post("/api/chat", json=body)
        assert response.status_code == 400
        assert response.json()["error"].startswith(message)
    broken = ollama_client.post(
        "/api/chat", content=b"{", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert set(broken.json()) == {"error"}


def test_ollama_names_the_innermost_go_struct_in_unmarshal_errors(ollama_client):
    """As Go's decoder does, a bad nested field names its own struct (Message), not ChatRequest."""
    image = {"role": "user", "content": "?", "images": "iVBORw0KGgo="}
    response = ollama_client.post("/api/chat", json={"model": OLLAMA_MODEL, "messages": [image]})
    assert response.status_code == 400
    assert response.json()["error"] == (
        "json: cannot unmarshal string into Go struct field Message.messages.images "
        "of type []api.ImageData"
    )


def test_ollama_takes_valid_base64_images(ollama_client):
    """A message with base64 images is answered."""
    image = {"role": "user", "content": "What is this?", "images": ["iVBORw0KGgo="]}
    response = ollama_client.post(
        "/api/chat", json={"model": OLLAMA_MODEL, "messages": [image], "stream": False}
    )
    assert response.status_code == 200


def test_ollama_without_keys_takes_any_request_and_with_keys_wants_a_bearer():
    """A local fake needs no key; given keys, a request without the right one is 401."""
    with FakeOllama(keys={KEY}) as fake, httpx.Client(base_url=fake.base_url) as client:
        assert client.get("/api/tags").status_code == 401
        wrong = client.get("/api/tags", headers={"Authorization": "Bearer nope"})
        assert (wrong.status_code, wrong.json()) == (401, {"error": "unauthorized"})
        assert client.get("/api/tags", headers=BEARER).status_code == 200


def test_ollama_tags_list_every_model_with_details(ollama_client):
    """``GET /api/tags`` lists the models with name, digest and details."""
    models = ollama_client.get("/api/tags").json()["models"]
    assert "llama3.2:latest" in [m["name"] for m in models]
    first = models[0]
    assert first["model"] == first["name"]
    assert len(first["digest"]) == 64
    assert first["details"]["format"] == "gguf"


def test_ollama_embed_answers_one_vector_per_input(ollama_client):
    """``/api/embed`` takes one text or a list; vectors are unit length, and the same per text."""
    one = ollama_client.post("/api/embed", json={"model": "nomic-embed-text", "input": "a"}).json()
    many = ollama_client.post(
        "/api/embed", json={"model": "nomic-embed-text", "input": ["a", "b"], "dimensions": 4}
    ).json()
    assert one["model"] == "nomic-embed-text:latest"
    assert len(one["embeddings"]) == 1
    assert [len(v) for v in many["embeddings"]] == [4, 4]
    assert sum(x * x for x in many["embeddings"][0]) == pytest.approx(1.0, abs=1e-4)
    again = ollama_client.post(
        "/api/embed", json={"model": "nomic-embed-text", "input": ["a"], "dimensions": 4}
    ).json()
    assert again["embeddings"][0] == many["embeddings"][0]
    assert many["prompt_eval_count"] == 2


def test_ollama_embed_refuses_unknown_models_and_bad_input(ollama, ollama_client):
    """An embedding model not pulled is 404; bad ``input`` is 400; no script is consumed."""
    ollama.script.append(Fail(500))
    missing = ollama_client.post("/api/embed", json={"model": "bge-m3", "input": "a"})
    assert missing.status_code == 404
    bad = ollama_client.post("/api/embed", json={"model": "nomic-embed-text", "input": 3})
    assert bad.status_code == 400
    assert len(ollama.script) == 1
    assert [r.action for r in ollama.requests] == ["embed", "embed"]


def test_ollama_unknown_path_is_404(ollama_client):
    """A path Ollama does not serve is 404 ``404 page not found``."""
    response = ollama_client.get("/v1/models")
    assert (response.status_code, response.json()) == (404, {"error": "404 page not found"})


# --- Ollama: behaviours -----------------------------------------------------------------


def test_ollama_fail_answers_the_error_body_for_each_status(ollama, ollama_client):
    """`Fail` answers ``{"error": ...}`` with the status, a retry-after when asked."""
    ollama.script.extend([Fail(500), Fail(503, retry_after_s=2), Fail(404), Fail(400, message="x")])
    first = ollama_client.post("/api/chat", json=ollama_ask())
    assert first.json() == {"error": "the model failed to generate a response"}
    busy = ollama_client.post("/api/chat", json=ollama_ask())
    assert (busy.status_code, busy.headers["retry-after"]) == (503, "2")
    assert busy.json()["error"].startswith("server busy")
    assert (
        "try pulling it first" in ollama_client.post("/api/chat", json=ollama_ask()).json()["error"]
    )
    assert ollama_client.post("/api/chat", json=ollama_ask()).json() == {"error": "x"}


def test_ollama_stream_error_is_an_error_line_mid_stream(ollama, ollama_client):
    """`StreamError` sends some lines, then an ``{"error": ...}`` line, status still 200."""
    ollama.script.append(StreamError(after_chunks=2))
    ollama.default = Answer(TEXT)
    lines = ollama_lines(ollama_client, ollama_ask(stream=True))
    assert [line.get("done") for line in lines] == [False, False, None]
    assert lines[-1] == {"error": "an error was encountered while running the model"}


def test_ollama_stream_error_on_a_plain_request_is_a_500(ollama, ollama_client):
    """A `StreamError` met by a non-streamed request answers 500 with the same error."""
    ollama.script.append(StreamError(message="model runner crashed"))
    response = ollama_client.post("/api/chat", json=ollama_ask(stream=False))
    assert (response.status_code, response.json()) == (500, {"error": "model runner crashed"})


def test_ollama_malformed_answers_an_undocumented_body_even_to_a_stream(ollama, ollama_client):
    """`Malformed` answers 200 with undocumented JSON, streamed or not."""
    ollama.script.extend([Malformed(), Malformed()])
    for stream in (False, True):
        response = ollama_client.post("/api/chat", json=ollama_ask(stream=stream))
        assert (response.status_code, response.json()) == (200, {"unexpected": "shape"})


# --- Cohere: shapes ---------------------------------------------------------------------


def test_cohere_base_url_is_the_loopback_root_without_a_version(cohere):
    """Cohere's base URL has no version path: its paths carry their own."""
    assert cohere.base_url == f"http://127.0.0.1:{cohere.port}"
    assert cohere.protocol == "cohere"


def test_cohere_answer_is_a_v2_chat_response(cohere, cohere_client):
    """A chat response has an id, the text part, ``COMPLETE`` and billed and token usage."""
    cohere.script.append(Answer(TEXT))
    response = cohere_client.post("/v2/chat", json=cohere_ask("x" * 40))
    body = response.json()
    assert set(body) == {"id", "message", "finish_reason", "usage"}
    assert body["message"] == {"role": "assistant", "content": [{"type": "text", "text": TEXT}]}
    assert body["finish_reason"] == "COMPLETE"
    counts = {"input_tokens": 10, "output_tokens": len(TEXT) // 4}
    assert body["usage"] == {"billed_units": counts, "tokens": counts}
    assert response.headers["x-trial-endpoint-call-remaining"].isdigit()


def test_cohere_stream_is_the_documented_event_sequence(cohere, cohere_client):
    """A stream is message-start, content-start, content-deltas, content-end, message-end."""
    cohere.script.append(Answer(TEXT, usage=Usage(7, 9, cached_tokens=3)))
    events = cohere_events(cohere_client, cohere_ask(stream=True))
    names = [name for name, _ in events]
    assert names[:2] == ["message-start", "content-start"]
    assert names[-2:] == ["content-end", "message-end"]
    assert set(names[2:-2]) == {"content-delta"}
    assert all(data["type"] == name for name, data in events)
    deltas = [data["delta"]["message"]["content"]["text"] for name, data in events[2:-2]]
    assert "".join(deltas) == TEXT
    end = events[-1][1]["delta"]
    assert end["finish_reason"] == "COMPLETE"
    assert end["usage"]["tokens"] == {"input_tokens": 7, "output_tokens": 9}
    assert end["usage"]["cached_tokens"] == 3
    assert events[0][1]["delta"]["message"]["role"] == "assistant"


def test_cohere_max_tokens_and_stop_sequences_set_the_finish_reason(cohere, cohere_client):
    """``max_tokens`` ends with ``MAX_TOKENS``; a stop sequence with ``STOP_SEQUENCE``."""
    cohere.script.extend([Answer(TEXT), Answer(TEXT)])
    short = cohere_client.post("/v2/chat", json=cohere_ask(max_tokens=2)).json()
    assert short["finish_reason"] == "MAX_TOKENS"
    stopped = cohere_client.post("/v2/chat", json=cohere_ask(stop_sequences=[" because"])).json()
    assert stopped["finish_reason"] == "STOP_SEQUENCE"
    assert stopped["message"]["content"][0]["text"] == "The sky is blue"


def test_cohere_checks_the_key(cohere):
    """No key is ``no api key supplied``, a wrong one ``invalid api token``, both 401."""
    with httpx.Client(base_url=cohere.base_url) as client:
        bare = client.post("/v2/chat", json=cohere_ask())
        wrong = client.post("/v2/chat", json=cohere_ask(), headers={"Authorization": "Bearer x"})
        right = client.post(
            "/v2/chat", json=cohere_ask(), headers={"authorization": f"bearer {KEY}"}
        )
    assert (bare.status_code, bare.json()["message"]) == (401, "no api key supplied")
    assert (wrong.status_code, wrong.json()["message"]) == (401, "invalid api token")
    assert set(wrong.json()) == {"id", "message"}
    assert right.status_code == 200


def test_cohere_refuses_unknown_models_and_bad_requests(cohere_client):
    """An unknown model is 404; no model, no messages, or a late system turn is 400."""
    missing = cohere_client.post("/v2/chat", json=cohere_ask(model="command-z"))
    assert missing.status_code == 404
    assert missing.json()["message"].startswith("model 'command-z' not found")
    no_model = cohere_client.post("/v2/chat", json={"messages": [{"role": "user", "content": "x"}]})
    assert (no_model.status_code, no_model.json()["message"]) == (
        400,
        "a model parameter is required for this endpoint.",
    )
    assert (
        cohere_client.post("/v2/chat", json={"model": COHERE_MODEL, "messages": []}).status_code
        == 400
    )
    late = [{"role": "user", "content": "x"}, {"role": "system", "content": "y"}]
    late_system = cohere_client.post("/v2/chat", json={"model": COHERE_MODEL, "messages": late})
    assert late_system.json()["message"] == "system turn must be the first in the list"


def test_cohere_takes_content_as_a_list_of_parts(cohere_client):
    """A message content given as text and image_url parts is answered."""
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    body = {"model": COHERE_MODEL, "messages": [{"role": "user", "content": content}]}
    assert cohere_client.post("/v2/chat", json=body).status_code == 200


def test_cohere_models_list_and_lookup(cohere_client):
    """``/v1/models`` lists every model; ``/v1/models/{model}`` describes one or answers 404."""
    listed = cohere_client.get("/v1/models", params={"page_size": 1000}).json()
    assert COHERE_MODEL in [m["name"] for m in listed["models"]]
    one = cohere_client.get(f"/v1/models/{COHERE_MODEL}").json()
    assert (one["name"], one["endpoints"]) == (COHERE_MODEL, ["chat"])
    assert cohere_client.get("/v1/models/embed-v4.0").json()["endpoints"][0] == "embed"
    assert cohere_client.get("/v1/models/nope").status_code == 404


def test_cohere_embed_answers_float_vectors(cohere_client):
    """``/v2/embed`` answers ``embeddings.float``, one vector per text, with billed tokens."""
    body = {
        "model": "embed-v4.0",
        "texts": ["alpha", "beta"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "output_dimension": 8,
    }
    answer = cohere_client.post("/v2/embed", json=body).json()
    assert [len(v) for v in answer["embeddings"]["float"]] == [8, 8]
    assert answer["texts"] == ["alpha", "beta"]
    assert answer["meta"]["billed_units"]["input_tokens"] == 2
    assert answer["response_type"] == "embeddings_by_type"


def test_cohere_embed_refuses_a_missing_input_type_and_too_many_texts(cohere_client):
    """Without a valid ``input_type``, or past 96 texts, an embed call is 400."""
    body = {"model": "embed-v4.0", "texts": ["a"]}
    untyped = cohere_client.post("/v2/embed", json=body)
    assert untyped.status_code == 400
    assert "input_type" in untyped.json()["message"]
    many = cohere_client.post(
        "/v2/embed", json={**body, "texts": ["a"] * 97, "input_type": "search_query"}
    )
    assert many.json()["message"].endswith("at most 96 - received 97")


# --- Cohere: behaviours -----------------------------------------------------------------


def test_cohere_fail_answers_the_documented_messages(cohere, cohere_client):
    """`Fail` answers ``{"id", "message"}`` with Cohere's message for the status."""
    cohere.script.extend([Fail(402), Fail(429), Fail(499), Fail(404), Fail(500, retry_after_s=3)])
    bodies = [cohere_client.post("/v2/chat", json=cohere_ask()) for _ in range(5)]
    assert [r.status_code for r in bodies] == [402, 429, 499, 404, 500]
    assert "payment method" in bodies[0].json()["message"]
    assert bodies[1].json()["message"].startswith("You are past the per minute request limit")
    assert bodies[2].json()["message"] == "request cancelled"
    assert COHERE_MODEL in bodies[3].json()["message"]
    assert bodies[4].headers["retry-after"] == "3"


def test_cohere_stream_error_cuts_the_stream(cohere, cohere_client):
    """`StreamError` sends the start and some deltas, then cuts the connection."""
    cohere.script.append(StreamError(after_chunks=2))
    events = []

    def read():
        with connect_sse(cohere_client, "POST", "/v2/chat", json=cohere_ask(stream=True)) as s:
            events.extend(event.event for event in s.iter_sse())

    assert _outcome(read) is httpx.RemoteProtocolError
    assert events == ["message-start", "content-start", "content-delta", "content-delta"]


def test_cohere_stream_error_on_a_plain_request_is_a_500(cohere, cohere_client):
    """A `StreamError` met by a non-streamed request answers 500."""
    cohere.script.append(StreamError())
    assert cohere_client.post("/v2/chat", json=cohere_ask()).status_code == 500


def test_cohere_malformed_stream_sends_one_undocumented_event(cohere, cohere_client):
    """`Malformed` on a stream sends one event of undocumented JSON, then ends."""
    cohere.script.append(Malformed())
    assert cohere_events(cohere_client, cohere_ask(stream=True)) == [
        ("message", {"unexpected": "shape"})
    ]


# --- Both: transport behaviours ---------------------------------------------------------


def _chat(fake, client, stream=False):
    if fake.protocol == "ollama":
        return client.post("/api/chat", json=ollama_ask(stream=stream))
    return client.post("/v2/chat", json=cohere_ask(stream=stream))


@pytest.fixture(params=["cohere", "ollama"])
def served(request):
    with (
        FAKES[request.param](keys={KEY}) as fake,
        httpx.Client(base_url=fake.base_url, headers=BEARER, timeout=5) as client,
    ):
        yield fake, client


def test_proxy_error_is_a_non_json_page(served):
    """`ProxyError` answers an HTML page, as a proxy in front of the API does."""
    fake, client = served
    fake.script.append(ProxyError())
    response = _chat(fake, client)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")


def test_drop_closes_the_connection_and_the_next_request_is_served(served):
    """`Drop` closes the connection before answering; the next request is answered."""
    fake, client = served
    fake.script.append(Drop())
    with pytest.raises(httpx.RemoteProtocolError):
        _chat(fake, client)
    assert _chat(fake, client).status_code == 200


def test_hang_never_answers_until_the_server_stops(served):
    """`Hang` holds the request until `stop`, which cuts it promptly."""
    fake, client = served
    fake.script.append(Hang())
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(_outcome(lambda: _chat(fake, client))))
    thread.start()
    fake.wait_for_requests(1, chat_only=True)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    thread.join(5)
    assert outcome == [httpx.RemoteProtocolError]


def test_stall_stops_a_stream_midway_until_the_server_stops(served):
    """`Stall` sends the first text chunk, then nothing until the server stops."""
    fake, client = served
    fake.script.append(Stall(after_chunks=1))
    frames, first_text = [], threading.Event()

    def read():
        if fake.protocol == "ollama":
            with client.stream("POST", "/api/chat", json=ollama_ask(stream=True)) as response:
                for line in response.iter_lines():
                    frames.append(json.loads(line))
                    first_text.set()
        else:
            with connect_sse(client, "POST", "/v2/chat", json=cohere_ask(stream=True)) as s:
                for event in s.iter_sse():
                    frames.append(event.json())
                    if event.event == "content-delta":
                        first_text.set()

    thread = threading.Thread(target=lambda: _outcome(read))
    thread.start()
    assert first_text.wait(5)
    fake.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert not any(f.get("done") or f.get("type") == "message-end" for f in frames)


def test_rpm_limit_answers_429_past_it():
    """Past an enforced rpm, Ollama answers 429 with a wait; Cohere its documented 429."""
    with FakeOllama(rpm=1) as fake, httpx.Client(base_url=fake.base_url) as client:
        assert client.post("/api/chat", json=ollama_ask(stream=False)).status_code == 200
        refused = client.post("/api/chat", json=ollama_ask(stream=False))
        assert refused.status_code == 429
        assert 55 <= int(refused.headers["retry-after"]) <= 60
    with FakeCohere(rpm=1) as fake, httpx.Client(base_url=fake.base_url) as client:
        assert client.post("/v2/chat", json=cohere_ask()).status_code == 200
        refused = client.post("/v2/chat", json=cohere_ask())
        assert refused.status_code == 429
        assert refused.headers["x-trial-endpoint-call-remaining"] == "0"


def test_log_masks_the_key(served):
    """Requests are logged with their action; the key itself is never kept."""
    fake, client = served
    _chat(fake, client)
    (chat,) = fake.wait_for_requests(1, chat_only=True)
    assert chat.action == "chat"
    assert chat.headers["authorization"].endswith("...ghij")
    assert KEY not in repr(fake.requests)


# --- End to end: each protocol reads its fake -------------------------------------------


def _ollama_endpoint(fake, model=OLLAMA_MODEL):
    return Endpoint(base_url=fake.base_url, model=model)


def _cohere_endpoint(fake, model=COHERE_MODEL):
    return Endpoint(base_url=fake.base_url, model=model, api_key=KEY)


def _chat_request(model, **tuning):
    return ChatRequest(
        messages=(Message("user", "Why is the sky blue?"),),
        model=model,
        system="Answer in one sentence.",
        tuning=Tuning(**tuning),
    )


def test_ollama_protocol_reads_the_fakes_whole_answer(ollama):
    """The Ollama protocol's request, sent to the fake, parses back to the scripted answer."""
    ollama.script.append(Answer(TEXT))
    call = ollama_protocol.chat_request(
        _ollama_endpoint(ollama), _chat_request(OLLAMA_MODEL), False
    )
    response = send(call)
    result = ollama_protocol.PROTOCOL.parse_chat(
        response.status_code, response.headers, response.content
    )
    assert (result.text, result.finish_reason) == (TEXT, "stop")
    assert result.usage.output_tokens == len(TEXT) // 4
    assert ollama.requests[-1].json["messages"][0] == {
        "role": "system",
        "content": "Answer in one sentence.",
    }


def test_ollama_protocol_reads_the_fakes_stream_line_by_line(ollama):
    """Each NDJSON line of the fake's stream, fed to the parser, rebuilds the answer."""
    ollama.script.append(Answer(TEXT))
    request = _chat_request(OLLAMA_MODEL, max_tokens=5)
    call = ollama_protocol.chat_request(_ollama_endpoint(ollama), request, True)
    with httpx.stream(
        call.method, call.url, headers=dict(call.headers), json=call.json
    ) as response:
        parser = ollama_protocol.PROTOCOL.stream_parser(response.headers)
        deltas = [text for line in response.iter_lines() for text in parser.feed("", line)]
    result = parser.finish()
    assert "".join(deltas) == result.text == TEXT[:20]
    assert (result.finish_reason, result.usage.output_tokens) == ("length", 5)


def test_ollama_protocol_raises_the_fakes_mid_stream_error(ollama):
    """The fake's mid-stream error line raises a server error from the parser."""
    ollama.script.append(StreamError(after_chunks=1))
    call = ollama_protocol.chat_request(_ollama_endpoint(ollama), _chat_request(OLLAMA_MODEL), True)
    response = send(call)
    parser = ollama_protocol.PROTOCOL.stream_parser(response.headers)
    lines = response.text.splitlines()
    assert parser.feed("", lines[0])
    with pytest.raises(ProviderError) as caught:
        parser.feed("", lines[1])
    assert caught.value.kind is ErrorKind.SERVER
    with pytest.raises(ProviderError) as whole:
        ollama_protocol.parse_chat(response.status_code, response.headers, response.content)
    assert whole.value.message == caught.value.message


def test_ollama_protocol_reads_the_fakes_errors(ollama):
    """The fake's error bodies parse to the right kinds: overloaded, and not_found."""
    ollama.script.append(Fail(503, retry_after_s=4))
    call = ollama_protocol.chat_request(
        _ollama_endpoint(ollama), _chat_request(OLLAMA_MODEL), False
    )
    busy = send(call)
    error = ollama_protocol.parse_error(busy.status_code, busy.headers, busy.content)
    assert (error.kind, error.retry_after_s) == (ErrorKind.OVERLOADED, 4.0)
    missing = send(
        ollama_protocol.chat_request(_ollama_endpoint(ollama), _chat_request("qwen3"), False)
    )
    assert (
        ollama_protocol.parse_error(404, missing.headers, missing.content).kind
        is ErrorKind.NOT_FOUND
    )


def test_ollama_protocol_checks_lists_and_embeds_against_the_fake(ollama):
    """The model check, the model list and embeddings read the fake's answers."""
    protocol = ollama_protocol.PROTOCOL
    tags = send(protocol.models_request(_ollama_endpoint(ollama)))
    assert (
        protocol.check_models(
            _ollama_endpoint(ollama), tags.status_code, tags.headers, tags.content
        )
        is None
    )
    absent = protocol.check_models(
        _ollama_endpoint(ollama, "qwen3"), 200, tags.headers, tags.content
    )
    assert absent is not None
    assert absent.kind is ErrorKind.NOT_FOUND
    assert protocol.list_models is not None
    assert "gemma3:4b" in protocol.list_models.parse(200, tags.headers, tags.content)
    assert protocol.embed is not None
    ask = EmbedRequest(texts=("a", "b", "c"), model="nomic-embed-text", dimensions=6)
    answer = send(protocol.embed.request(_ollama_endpoint(ollama), ask))
    result = protocol.embed.parse(answer.status_code, answer.headers, answer.content)
    assert [len(v) for v in result.vectors] == [6, 6, 6]
    assert result.usage.input_tokens == 3


def test_cohere_protocol_reads_the_fakes_whole_answer(cohere):
    """The Cohere protocol's request, sent to the fake, parses back to the scripted answer."""
    cohere.script.append(Answer(TEXT, usage=Usage(30, 12, cached_tokens=10)))
    call = cohere_protocol.chat_request(
        _cohere_endpoint(cohere), _chat_request(COHERE_MODEL), False
    )
    response = send(call)
    result = cohere_protocol.parse_chat(response.status_code, response.headers, response.content)
    assert (result.text, result.finish_reason) == (TEXT, "stop")
    assert result.usage == Usage(30, 12, 10)
    assert result.rate_limits.remaining_requests is not None


def test_cohere_protocol_reads_the_fakes_stream_event_by_event(cohere):
    """Each server-sent event of the fake's stream, fed to the parser, rebuilds the answer."""
    cohere.script.append(Answer(TEXT))
    request = _chat_request(COHERE_MODEL, stop=(" because",))
    call = cohere_protocol.chat_request(_cohere_endpoint(cohere), request, True)
    with (
        httpx.Client(headers=dict(call.headers)) as client,
        connect_sse(client, call.method, call.url, json=call.json) as source,
    ):
        parser = cohere_protocol.PROTOCOL.stream_parser(source.response.headers)
        deltas = [t for e in source.iter_sse() for t in parser.feed(e.event, e.data)]
    result = parser.finish()
    assert "".join(deltas) == result.text == "The sky is blue"
    assert result.finish_reason == "stop"


def test_cohere_protocol_finds_a_cut_stream_incomplete(cohere):
    """A stream the fake cuts leaves the parser without message-end: malformed, text kept."""
    cohere.script.append(StreamError(after_chunks=3))
    call = cohere_protocol.chat_request(_cohere_endpoint(cohere), _chat_request(COHERE_MODEL), True)
    parser = cohere_protocol.PROTOCOL.stream_parser(httpx.Headers())
    deltas = []

    def read():
        with (
            httpx.Client(headers=dict(call.headers)) as client,
            connect_sse(client, call.method, call.url, json=call.json) as source,
        ):
            for event in source.iter_sse():
                deltas.extend(parser.feed(event.event, event.data))

    assert _outcome(read) is httpx.RemoteProtocolError
    assert len(deltas) == 3
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_cohere_protocol_reads_the_fakes_errors(cohere):
    """The fake's billing, auth and unknown-model answers parse to their kinds."""
    cohere.script.append(Fail(402))
    endpoint = _cohere_endpoint(cohere)
    billing = send(cohere_protocol.chat_request(endpoint, _chat_request(COHERE_MODEL), False))
    assert (
        cohere_protocol.parse_error(402, billing.headers, billing.content).kind is ErrorKind.QUOTA
    )
    stranger = Endpoint(base_url=cohere.base_url, model=COHERE_MODEL, api_key="wrong")
    refused = send(cohere_protocol.chat_request(stranger, _chat_request(COHERE_MODEL), False))
    error = cohere_protocol.parse_error(refused.status_code, refused.headers, refused.content)
    assert (error.kind, error.message) == (ErrorKind.AUTH, "invalid api token")
    missing = send(cohere_protocol.chat_request(endpoint, _chat_request("command-z"), False))
    with pytest.raises(ProviderError) as caught:
        cohere_protocol.parse_chat(missing.status_code, missing.headers, missing.content)
    assert caught.value.kind is ErrorKind.NOT_FOUND


def test_cohere_protocol_checks_lists_and_embeds_against_the_fake(cohere):
    """The model check, the model list and embeddings read the fake's answers."""
    protocol = cohere_protocol.PROTOCOL
    for model, expected in (
        (COHERE_MODEL, None),
        ("embed-v4.0", ErrorKind.BAD_REQUEST),
        ("nope", ErrorKind.NOT_FOUND),
    ):
        endpoint = _cohere_endpoint(cohere, model)
        found = send(protocol.models_request(endpoint))
        error = protocol.check_models(endpoint, found.status_code, found.headers, found.content)
        assert (error.kind if error else None) == expected
    assert protocol.list_models is not None
    listed = send(protocol.list_models.request(_cohere_endpoint(cohere)))
    assert protocol.list_models.parse(200, listed.headers, listed.content) == list(cohere.models)
    assert protocol.embed is not None
    ask = EmbedRequest(texts=("a", "b"), model="embed-v4.0", dimensions=5, input_type="query")
    answer = send(protocol.embed.request(_cohere_endpoint(cohere), ask))
    result = protocol.embed.parse(answer.status_code, answer.headers, answer.content)
    assert [len(v) for v in result.vectors] == [5, 5]
    assert cohere.requests[-1].json["input_type"] == "search_query"
