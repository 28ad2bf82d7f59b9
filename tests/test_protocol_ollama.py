import json

import httpx
import pytest

from runtime._chat import (
    ChatRequest,
    EmbedRequest,
    ImagePart,
    Message,
    RateLimitInfo,
    TextPart,
    Tuning,
)
from runtime._errors import ErrorKind, ProviderError
from runtime.protocols import Endpoint
from runtime.protocols import _ollama as ollama

pytestmark = pytest.mark.timeout(10)

BASE = "http://localhost:11434"
ENDPOINT = Endpoint(base_url=BASE, model="llama3.2")
NO_HEADERS = httpx.Headers({})


def _request(**kwargs):
    defaults = {"messages": (Message("user", "Why is the sky blue?"),), "model": "llama3.2"}
    return ChatRequest(**(defaults | kwargs))


def _body(value) -> bytes:
    return json.dumps(value).encode()


def _final(text="Rayleigh scattering.", reason="stop", **extra):
    answer = {
        "model": "llama3.2",
        "created_at": "2026-11-23T10:00:00.000000Z",
        "message": {"role": "assistant", "content": text},
        "done_reason": reason,
        "done": True,
        "total_duration": 4_883_583_458,
        "load_duration": 1_334_875,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 342_546_000,
        "eval_count": 282,
        "eval_duration": 4_535_599_000,
    }
    return answer | extra


def _partial(text):
    return {"model": "llama3.2", "message": {"role": "assistant", "content": text}, "done": False}


def _feed(parser, *lines):
    deltas = []
    for line in lines:
        deltas.extend(parser.feed("", line if isinstance(line, str) else json.dumps(line)))
    return deltas


def _error(status, body, headers=None):
    return ollama.parse_error(status, httpx.Headers(headers or {}), body)


def test_protocol_is_named_ollama_and_framed_as_json_lines():
    """The protocol is ``ollama``, streams NDJSON, and offers model listing and embeddings."""
    protocol = ollama.PROTOCOL
    assert (protocol.name, protocol.framing) == ("ollama", "ndjson")
    assert protocol.list_models is not None
    assert protocol.embed is not None
    assert protocol.images is True
    assert ollama.DEFAULT_BASE_URL == "http://localhost:11434"


def test_chat_request_posts_api_chat_with_stream_false_and_the_system_first():
    """A plain chat is a POST to /api/chat that says stream false and leads with the system turn."""
    request = _request(
        messages=(Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Bye")),
        system="Be brief.",
    )
    call = ollama.chat_request(ENDPOINT, request, stream=False)
    assert (call.method, call.url, call.stream) == ("POST", f"{BASE}/api/chat", False)
    assert call.json == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        ],
        "stream": False,
    }


def test_streamed_chat_request_says_stream_true():
    """A streamed chat asks for the stream in the body and marks the call as streamed."""
    call = ollama.chat_request(ENDPOINT, _request(), stream=True)
    assert call.json["stream"] is True
    assert call.stream is True


def test_chat_request_puts_tuning_in_options():
    """Tuning goes in ``options``: temperature, top_p, num_predict and stop; unset is left out."""
    assert "options" not in ollama.chat_request(ENDPOINT, _request(), stream=False).json
    tuning = Tuning(temperature=0.2, max_tokens=128, top_p=0.9, stop=("\n\n", "END"))
    body = ollama.chat_request(ENDPOINT, _request(tuning=tuning), stream=False).json
    assert body["options"] == {
        "temperature": 0.2,
        "top_p": 0.9,
        "num_predict": 128,
        "stop": ["\n\n", "END"],
    }


def test_chat_request_sends_base64_images_in_the_message():
    """Images given as data go, bare base64, in the message's ``images``; texts join as content."""
    message = Message(
        "user",
        (
            TextPart("What is in this picture?"),
            ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
            TextPart("Be precise."),
        ),
    )
    body = ollama.chat_request(ENDPOINT, _request(messages=(message,)), stream=False).json
    assert body["messages"] == [
        {
            "role": "user",
            "content": "What is in this picture?\n\nBe precise.",
            "images": ["iVBORw0KGgo="],
        }
    ]


def test_chat_request_refuses_an_image_given_by_url():
    """An image URL cannot be sent to Ollama: the request fails as bad_request, saying why."""
    message = Message("user", (TextPart("Look"), ImagePart(url="https://example.com/cat.png")))
    with pytest.raises(ProviderError) as caught:
        ollama.chat_request(ENDPOINT, _request(messages=(message,)), stream=False)
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert "base64 images only" in caught.value.message


def test_chat_request_sends_no_key_without_one_and_bearer_with_one():
    """A local Ollama gets no Authorization; a key goes as a Bearer token, unless auth is none."""
    plain = ollama.chat_request(ENDPOINT, _request(), stream=False)
    assert plain.headers == (("content-type", "application/json"),)
    keyed = Endpoint(BASE, "llama3.2", api_key="sk-proxy", extra_headers=(("x-extra", "1"),))
    assert ollama.chat_request(keyed, _request(), stream=False).headers == (
        ("authorization", "Bearer sk-proxy"),
        ("content-type", "application/json"),
        ("x-extra", "1"),
    )
    unsent = Endpoint(BASE, "llama3.2", api_key="sk-proxy", auth="none")
    assert ollama.models_request(unsent).headers == ()


def test_parse_chat_reads_text_model_usage_and_finish():
    """A finished answer gives its text, model, prompt_eval_count/eval_count and done_reason."""
    result = ollama.parse_chat(200, NO_HEADERS, _body(_final()))
    assert result.text == "Rayleigh scattering."
    assert result.model == "llama3.2"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (26, 282)
    assert result.finish_reason == "stop"


def test_parse_chat_maps_length_and_keeps_other_reasons_lower_case():
    """``done_reason: length`` stays length; another reason is kept as given."""
    assert ollama.parse_chat(200, NO_HEADERS, _body(_final(reason="length"))).finish_reason == (
        "length"
    )
    assert ollama.parse_chat(200, NO_HEADERS, _body(_final(reason="LOAD"))).finish_reason == "load"


def test_parse_chat_refuses_an_unfinished_or_foreign_body():
    """A body that is not a finished chat response, or not JSON, is malformed_response."""
    for body in (_body(_partial("Hi")), _body({"unexpected": "shape"}), b"<html>", _body([1])):
        with pytest.raises(ProviderError) as caught:
            ollama.parse_chat(200, NO_HEADERS, body)
        assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_parse_chat_reads_a_streamed_answer_read_whole():
    """JSON lines read as one body (a stream the I/O layer did not split) still parse."""
    lines = [_partial("Rayleigh"), _partial(" scattering."), _final(text="")]
    body = "\n".join(json.dumps(line) for line in lines).encode() + b"\n"
    result = ollama.parse_chat(200, NO_HEADERS, body)
    assert result.text == "Rayleigh scattering."
    assert result.usage.output_tokens == 282


def test_parse_chat_raises_the_error_of_a_streamed_answer_read_whole():
    """An error line in JSON lines read whole is the provider's error, not malformed."""
    body = json.dumps(_partial("Hi")).encode() + b'\n{"error":"out of memory"}\n'
    with pytest.raises(ProviderError) as caught:
        ollama.parse_chat(200, NO_HEADERS, body)
    assert (caught.value.kind, caught.value.message) == (ErrorKind.SERVER, "out of memory")


def test_parse_chat_raises_the_error_of_an_error_status():
    """An error status is parsed as an error, whatever the body."""
    with pytest.raises(ProviderError) as caught:
        ollama.parse_chat(
            500, NO_HEADERS, _body({"error": "model runner has unexpectedly stopped"})
        )
    assert caught.value.kind is ErrorKind.SERVER
    assert caught.value.status == 500


def test_parse_error_of_a_missing_model_is_not_found():
    """404 ``model "x" not found, try pulling it first`` is not_found, message kept."""
    error = _error(404, _body({"error": 'model "llama9" not found, try pulling it first'}))
    assert (error.kind, error.status) == (ErrorKind.NOT_FOUND, 404)
    assert error.message == 'model "llama9" not found, try pulling it first'


def test_parse_error_of_a_missing_model_without_advice_adds_how_to_pull():
    """A 404 that names a missing model without advice gets the ``ollama pull`` hint."""
    error = _error(404, _body({"error": "model 'llama9' not found"}))
    assert error.kind is ErrorKind.NOT_FOUND
    assert "ollama pull" in error.message


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (400, "invalid character '}' looking for beginning of value", ErrorKind.BAD_REQUEST),
        (401, "unauthorized", ErrorKind.AUTH),
        (403, "forbidden", ErrorKind.PERMISSION),
        (404, "404 page not found", ErrorKind.NOT_FOUND),
        (429, "too many requests", ErrorKind.RATE_LIMITED),
        (500, "the model failed to generate a response", ErrorKind.SERVER),
        (502, "the cloud model could not be reached", ErrorKind.SERVER),
        (
            503,
            "server busy, please try again.  maximum pending requests exceeded",
            ErrorKind.OVERLOADED,
        ),
    ],
)
def test_parse_error_maps_each_documented_status(status, message, kind):
    """Each status Ollama documents maps to its error kind, keeping the ``error`` message."""
    error = _error(status, _body({"error": message}))
    assert (error.kind, error.status) == (kind, status)
    assert error.message == " ".join(message.split())


def test_parse_error_reads_retry_after():
    """A Retry-After header (as ollama.com sends with 429) becomes the wait."""
    error = _error(429, _body({"error": "too many requests"}), {"retry-after": "7"})
    assert error.retry_after_s == 7.0


def test_parse_error_of_a_proxy_page_or_a_foreign_body():
    """An HTML page is a non-JSON error; JSON without ``error`` is unrecognized; neither raises."""
    page = _error(502, b"<html><body>Bad Gateway</body></html>")
    assert page.kind is ErrorKind.SERVER
    assert page.message.startswith("non-JSON error body")
    foreign = _error(500, _body({"detail": "nope"}))
    assert foreign.kind is ErrorKind.SERVER
    assert foreign.message.startswith("unrecognized error body")


def test_stream_yields_each_line_and_ends_with_the_final_counts():
    """Each partial line yields its text; the done line gives usage and the finish reason."""
    parser = ollama.stream_parser(NO_HEADERS)
    deltas = _feed(parser, _partial("Ray"), "", _partial("leigh"), _final(text=""))
    assert deltas == ["Ray", "leigh"]
    result = parser.finish()
    assert result.text == "Rayleigh"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (26, 282)
    assert (result.finish_reason, result.model) == ("stop", "llama3.2")


def test_stream_error_line_mid_stream_raises_a_server_error():
    """An ``{"error": ...}`` line mid-stream raises, with Ollama's message."""
    parser = ollama.stream_parser(NO_HEADERS)
    assert _feed(parser, _partial("Yes")) == ["Yes"]
    with pytest.raises(ProviderError) as caught:
        _feed(parser, {"error": "an error was encountered while running the model"})
    assert caught.value.kind is ErrorKind.SERVER
    assert caught.value.message == "an error was encountered while running the model"
    assert caught.value.status is None


def test_stream_cut_short_is_malformed():
    """A stream that ends without its ``done: true`` line is malformed_response."""
    parser = ollama.stream_parser(NO_HEADERS)
    _feed(parser, _partial("Ray"))
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_stream_line_that_is_not_json_is_malformed():
    """A line that is not a JSON object is malformed_response."""
    parser = ollama.stream_parser(NO_HEADERS)
    with pytest.raises(ProviderError) as caught:
        _feed(parser, "data: {}")
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_rate_limits_are_empty():
    """Ollama sends no rate-limit headers, so none are read."""
    headers = httpx.Headers({"x-ratelimit-remaining-requests": "3"})
    assert ollama.rate_limits(headers) == RateLimitInfo()


def _tags(*names):
    return _body({"models": [{"name": n, "model": n, "size": 1, "details": {}} for n in names]})


def test_models_request_lists_api_tags():
    """The start-up check is GET /api/tags."""
    call = ollama.models_request(ENDPOINT)
    assert (call.method, call.url) == ("GET", f"{BASE}/api/tags")


def test_check_models_matches_a_name_without_a_tag_to_latest():
    """``llama3.2`` is found as ``llama3.2:latest``; a tagged name must match its tag."""
    tags = _tags("llama3.2:latest", "qwen3:8b")
    assert ollama.check_models(ENDPOINT, 200, NO_HEADERS, tags) is None
    assert ollama.check_models(Endpoint(BASE, "qwen3:8b"), 200, NO_HEADERS, tags) is None
    assert ollama.check_models(Endpoint(BASE, "llama3.2:latest"), 200, NO_HEADERS, tags) is None


def test_check_models_names_close_matches_for_a_missing_model():
    """A model the server has not pulled is not_found, with how to pull it and close matches."""
    error = ollama.check_models(Endpoint(BASE, "qwen3"), 200, NO_HEADERS, _tags("qwen3:8b"))
    assert error is not None
    assert error.kind is ErrorKind.NOT_FOUND
    assert "ollama pull qwen3" in error.message
    assert "qwen3:8b" in error.message


def test_check_models_reports_errors_and_foreign_bodies():
    """An error answer (a proxy's 401) is its error; a body without ``models`` is malformed."""
    refused = ollama.check_models(ENDPOINT, 401, NO_HEADERS, _body({"error": "unauthorized"}))
    assert refused is not None
    assert refused.kind is ErrorKind.AUTH
    odd = ollama.check_models(ENDPOINT, 200, NO_HEADERS, _body({"data": []}))
    assert odd is not None
    assert odd.kind is ErrorKind.MALFORMED_RESPONSE


def test_list_models_reads_every_name():
    """Listing models reads the ``name`` of each entry of /api/tags."""
    listing = ollama.PROTOCOL.list_models
    assert listing is not None
    assert listing.request(ENDPOINT).url == f"{BASE}/api/tags"
    assert listing.parse(200, NO_HEADERS, _tags("llama3.2:latest", "gemma3:4b")) == [
        "llama3.2:latest",
        "gemma3:4b",
    ]


def test_embed_request_posts_every_text_as_input():
    """Embeddings POST /api/embed with the texts as ``input`` and the dimensions when asked."""
    embed = ollama.PROTOCOL.embed
    assert embed is not None
    call = embed.request(ENDPOINT, EmbedRequest(texts=("a", "b"), model="nomic-embed-text"))
    assert (call.method, call.url) == ("POST", f"{BASE}/api/embed")
    assert call.json == {"model": "nomic-embed-text", "input": ["a", "b"]}
    sized = embed.request(ENDPOINT, EmbedRequest(("a",), "embeddinggemma", dimensions=256))
    assert sized.json["dimensions"] == 256


def test_parse_embed_reads_vectors_model_and_tokens():
    """The answer's ``embeddings`` are the vectors in order; ``prompt_eval_count`` the tokens."""
    body = _body(
        {
            "model": "nomic-embed-text",
            "embeddings": [[0.1, -0.2], [1, 0]],
            "total_duration": 14_143_917,
            "load_duration": 1_019_500,
            "prompt_eval_count": 8,
        }
    )
    result = ollama.parse_embed(200, NO_HEADERS, body)
    assert result.vectors == ((0.1, -0.2), (1.0, 0.0))
    assert (result.model, result.usage.input_tokens) == ("nomic-embed-text", 8)


def test_parse_embed_refuses_errors_and_foreign_bodies():
    """An error status raises its error; a body without vectors is malformed."""
    with pytest.raises(ProviderError) as missing:
        ollama.parse_embed(404, NO_HEADERS, _body({"error": 'model "x" not found'}))
    assert missing.value.kind is ErrorKind.NOT_FOUND
    for body in (_body({"embedding": [0.1]}), _body({"embeddings": [["a"]]}), b"nope"):
        with pytest.raises(ProviderError) as caught:
            ollama.parse_embed(200, NO_HEADERS, body)
        assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE
