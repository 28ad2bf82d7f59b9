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
from runtime.protocols import _cohere as cohere

pytestmark = pytest.mark.timeout(10)

BASE = "https://api.cohere.com"
KEY = "co-test-key"
ENDPOINT = Endpoint(base_url=BASE, model="command-a-03-2025", api_key=KEY)
NO_HEADERS = httpx.Headers({})


def _request(**kwargs):
    defaults = {"messages": (Message("user", "Tell me about LLMs"),), "model": "command-a-03-2025"}
    return ChatRequest(**(defaults | kwargs))


def _body(value) -> bytes:
    return json.dumps(value).encode()


def _usage(billed=(21, 93), tokens=(186, 93), **extra):
    return {
        "billed_units": {"input_tokens": billed[0], "output_tokens": billed[1]},
        "tokens": {"input_tokens": tokens[0], "output_tokens": tokens[1]},
        **extra,
    }


def _response(text="LLMs are...", finish="COMPLETE", usage=None):
    return {
        "id": "2b1de636-9884-4973-ba11-108f95a2d37f",
        "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
        "finish_reason": finish,
        "usage": usage or _usage(),
    }


def _events(text_pieces, finish="COMPLETE", usage=None):
    """A documented stream as (event, data) pairs."""
    start = {"id": "a8fc", "type": "message-start", "delta": {"message": {"role": "assistant"}}}
    content = {"type": "content-start", "index": 0, "delta": {"message": {"content": {"text": ""}}}}
    deltas = [
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": t}}}}
        for t in text_pieces
    ]
    end = {"type": "message-end", "delta": {"finish_reason": finish, "usage": usage or _usage()}}
    frames = [start, content, *deltas, {"type": "content-end", "index": 0}, end]
    return [(f["type"], json.dumps(f)) for f in frames]


def _feed(parser, events):
    deltas = []
    for event, data in events:
        deltas.extend(parser.feed(event, data))
    return deltas


def _error(status, message, headers=None, **extra):
    body = _body({"id": "9c3b", "message": message, **extra})
    return cohere.parse_error(status, httpx.Headers(headers or {}), body)


def test_protocol_is_named_cohere_framed_as_sse_with_listing_and_embeddings():
    """The protocol is ``cohere`` over server-sent events, with model listing and embeddings."""
    protocol = cohere.PROTOCOL
    assert (protocol.name, protocol.framing) == ("cohere", "sse")
    assert protocol.list_models is not None
    assert protocol.embed is not None
    assert cohere.DEFAULT_BASE_URL == "https://api.cohere.com"


def test_chat_request_posts_v2_chat_with_the_system_turn_first():
    """A chat is a POST to /v2/chat: system turn first, string contents, stream said."""
    request = _request(
        messages=(Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Bye")),
        system="You are concise.",
    )
    call = cohere.chat_request(ENDPOINT, request, stream=False)
    assert (call.method, call.url, call.stream) == ("POST", f"{BASE}/v2/chat", False)
    assert call.json == {
        "model": "command-a-03-2025",
        "messages": [
            {"role": "system", "content": "You are concise."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        ],
        "stream": False,
    }


def test_chat_request_lifts_system_turns_into_one_leading_system_turn():
    """System turns inside the conversation join the one system turn that leads it."""
    request = _request(messages=(Message("user", "Hi"), Message("system", "Rule.")), system="Base.")
    messages = cohere.chat_request(ENDPOINT, request, stream=False).json["messages"]
    assert messages == [
        {"role": "system", "content": "Base.\n\nRule."},
        {"role": "user", "content": "Hi"},
    ]


def test_streamed_chat_request_says_stream_true():
    """A streamed chat says ``stream: true`` and marks the call as streamed."""
    call = cohere.chat_request(ENDPOINT, _request(), stream=True)
    assert (call.json["stream"], call.stream) == (True, True)


def test_chat_request_uses_cohere_names_for_tuning():
    """Tuning is temperature, max_tokens, ``p`` and ``stop_sequences``; unset is left out."""
    bare = cohere.chat_request(ENDPOINT, _request(), stream=False).json
    assert set(bare) == {"model", "messages", "stream"}
    tuning = Tuning(temperature=0.3, max_tokens=500, top_p=0.75, stop=("###",))
    body = cohere.chat_request(ENDPOINT, _request(tuning=tuning), stream=False).json
    assert (body["temperature"], body["max_tokens"], body["p"]) == (0.3, 500, 0.75)
    assert body["stop_sequences"] == ["###"]


def test_chat_request_sends_images_as_image_url_parts():
    """A message with images is a list of text and ``image_url`` parts (data as a data URL)."""
    message = Message(
        "user",
        (
            TextPart("Compare"),
            ImagePart(url="https://example.com/a.png"),
            ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
        ),
    )
    body = cohere.chat_request(ENDPOINT, _request(messages=(message,)), stream=False).json
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        }
    ]


def test_chat_request_sends_the_key_as_a_bearer_token():
    """The key goes in Authorization: Bearer, then content-type and the extra headers."""
    endpoint = Endpoint(BASE, "command-a-03-2025", api_key=KEY, extra_headers=(("x-client", "t"),))
    assert cohere.chat_request(endpoint, _request(), stream=False).headers == (
        ("authorization", f"Bearer {KEY}"),
        ("content-type", "application/json"),
        ("x-client", "t"),
    )
    assert cohere.models_request(Endpoint(BASE, "m", api_key=KEY, auth="none")).headers == ()


def test_parse_chat_reads_text_usage_and_finish():
    """A documented response gives its text, the ``tokens`` counts and ``COMPLETE`` as stop."""
    result = cohere.parse_chat(200, NO_HEADERS, _body(_response()))
    assert result.text == "LLMs are..."
    assert (result.usage.input_tokens, result.usage.output_tokens) == (186, 93)
    assert result.finish_reason == "stop"
    assert result.model == ""


def test_parse_chat_reads_cached_tokens_and_falls_back_to_billed_units():
    """``usage.cached_tokens`` (a number) is the cached count; without ``tokens``, billed units."""
    usage = {"billed_units": {"input_tokens": 5, "output_tokens": 7.0}, "cached_tokens": 3.0}
    result = cohere.parse_chat(200, NO_HEADERS, _body(_response(usage=usage)))
    assert (result.usage.input_tokens, result.usage.output_tokens) == (5, 7)
    assert result.usage.cached_tokens == 3


def test_parse_chat_joins_text_parts_and_leaves_out_thinking():
    """Only ``text`` parts make the answer; a reasoning model's thinking is left out."""
    answer = _response()
    answer["message"]["content"] = [
        {"type": "thinking", "thinking": "Let me see."},
        {"type": "text", "text": "Forty"},
        {"type": "text", "text": "-two."},
    ]
    assert cohere.parse_chat(200, NO_HEADERS, _body(answer)).text == "Forty-two."


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("SOMETHING_NEW", "something_new"),
    ],
)
def test_parse_chat_normalizes_finish_reasons(finish, reason):
    """Cohere's finish reasons map to callboard's; an unknown one is kept in lower case."""
    assert cohere.parse_chat(200, NO_HEADERS, _body(_response(finish=finish))).finish_reason == (
        reason
    )


def test_parse_chat_finish_error_is_a_server_failure():
    """``finish_reason: ERROR`` is a failed answer, not a stop."""
    with pytest.raises(ProviderError) as caught:
        cohere.parse_chat(200, NO_HEADERS, _body(_response(text="", finish="ERROR")))
    assert (caught.value.kind, caught.value.code) == (ErrorKind.SERVER, "ERROR")


def test_parse_chat_toxic_without_text_is_content_filter():
    """The legacy ``ERROR_TOXIC`` with no text is the content filter."""
    with pytest.raises(ProviderError) as caught:
        cohere.parse_chat(200, NO_HEADERS, _body(_response(text="", finish="ERROR_TOXIC")))
    assert caught.value.kind is ErrorKind.CONTENT_FILTER


def test_parse_chat_refuses_foreign_bodies():
    """A body without a message, or not JSON, is malformed_response."""
    for body in (_body({"text": "v1 shape"}), b"<html>", _body([])):
        with pytest.raises(ProviderError) as caught:
            cohere.parse_chat(200, NO_HEADERS, body)
        assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_parse_chat_raises_the_error_of_an_error_status():
    """An error status is parsed as an error, whatever the body."""
    with pytest.raises(ProviderError) as caught:
        cohere.parse_chat(401, NO_HEADERS, _body({"message": "invalid api token"}))
    assert (caught.value.kind, caught.value.message) == (ErrorKind.AUTH, "invalid api token")


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (400, "invalid request: prompt must be at least 1 token long.", ErrorKind.BAD_REQUEST),
        (401, "no api key supplied", ErrorKind.AUTH),
        (
            404,
            "model 'xyz' not found, make sure the correct model ID was used",
            ErrorKind.NOT_FOUND,
        ),
        (422, "invalid request: unknown field", ErrorKind.BAD_REQUEST),
        (
            429,
            "You are past the per minute request limit, please wait and try again later.",
            ErrorKind.RATE_LIMITED,
        ),
        (498, "blocked input: please adjust your prompt", ErrorKind.CONTENT_FILTER),
        (499, "request cancelled", ErrorKind.SERVER),
        (500, "internal server error", ErrorKind.SERVER),
        (503, "service unavailable", ErrorKind.OVERLOADED),
    ],
)
def test_parse_error_maps_each_documented_status(status, message, kind):
    """Each status Cohere documents maps to its error kind, with Cohere's message."""
    error = _error(status, message)
    assert (error.kind, error.status, error.message) == (kind, status, message)


def test_parse_error_of_billing_is_quota_with_advice():
    """402 (billing limit reached) is a quota error that says to add a payment method."""
    error = _error(402, "Please add or update your payment method to continue")
    assert error.kind is ErrorKind.QUOTA
    assert error.message.startswith("the account's billing limit is reached")


def test_parse_error_of_a_spent_trial_month_is_quota():
    """A 429 for a trial key's monthly calls is not a per-minute limit: it is a spent quota."""
    message = "You are using a Trial key, which is limited to 1000 API calls / month."
    error = _error(429, message)
    assert error.kind is ErrorKind.QUOTA
    per_minute = _error(
        429, "You are using a Trial key, which is limited to 40 API calls / minute."
    )
    assert per_minute.kind is ErrorKind.RATE_LIMITED


def test_parse_error_reads_retry_after_and_the_data_field():
    """A Retry-After header is the wait; the spec's ``{"data": ...}`` body is read too."""
    assert _error(429, "slow down", {"retry-after": "3"}).retry_after_s == 3.0
    spec = cohere.parse_error(503, NO_HEADERS, _body({"data": "overloaded"}))
    assert (spec.kind, spec.message) == (ErrorKind.OVERLOADED, "overloaded")


def test_parse_error_of_a_proxy_page_or_a_foreign_body():
    """An HTML page is a non-JSON error; JSON without a message is unrecognized."""
    page = cohere.parse_error(502, NO_HEADERS, b"<html>Bad Gateway</html>")
    assert page.message.startswith("non-JSON error body")
    foreign = cohere.parse_error(500, NO_HEADERS, _body({"error": {}}))
    assert (foreign.kind, foreign.message[:12]) == (ErrorKind.SERVER, "unrecognized")


def test_stream_yields_content_deltas_and_ends_at_message_end():
    """Content deltas yield text; message-end gives the finish reason and usage."""
    parser = cohere.stream_parser(NO_HEADERS)
    assert _feed(parser, _events(["LL", "Ms"], finish="MAX_TOKENS")) == ["LL", "Ms"]
    result = parser.finish()
    assert (result.text, result.finish_reason) == ("LLMs", "length")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (186, 93)


def test_stream_reads_the_type_in_the_data_without_event_names():
    """Events are told by the ``type`` in their data, so a stream without ``event:`` reads."""
    parser = cohere.stream_parser(NO_HEADERS)
    assert _feed(parser, [("", data) for _, data in _events(["Hi"])]) == ["Hi"]
    assert parser.feed("", "[DONE]") == []
    assert parser.finish().text == "Hi"


def test_stream_cut_short_is_malformed():
    """A stream that ends before message-end (the connection cut) is malformed_response."""
    parser = cohere.stream_parser(NO_HEADERS)
    _feed(parser, _events(["Hi", " there"])[:3])
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_stream_ending_in_error_is_a_server_failure():
    """A message-end with ``finish_reason: ERROR`` (and its ``error``) fails the answer."""
    parser = cohere.stream_parser(NO_HEADERS)
    events = _events(["Hi"], finish="ERROR")
    _feed(parser, events)
    with pytest.raises(ProviderError) as without_message:
        parser.finish()
    assert (without_message.value.kind, without_message.value.code) == (ErrorKind.SERVER, "ERROR")
    end = json.loads(events[-1][1])
    end["delta"]["error"] = "internal error while generating"
    with pytest.raises(ProviderError) as with_message:
        cohere.stream_parser(NO_HEADERS).feed("message-end", json.dumps(end))
    assert with_message.value.message == "internal error while generating"


def test_stream_event_that_is_not_json_is_malformed():
    """An event whose data is not a JSON object is malformed_response."""
    parser = cohere.stream_parser(NO_HEADERS)
    with pytest.raises(ProviderError) as caught:
        parser.feed("content-delta", "{unparsable}")
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_rate_limits_read_a_trial_keys_calls_left():
    """``x-trial-endpoint-call-remaining`` is the requests left; nothing else is known."""
    headers = httpx.Headers(
        {"x-trial-endpoint-call-limit": "40", "X-Trial-Endpoint-Call-Remaining": "39"}
    )
    assert cohere.rate_limits(headers) == RateLimitInfo(remaining_requests=39)
    assert cohere.rate_limits(NO_HEADERS) == RateLimitInfo()


def _model(name="command-a-03-2025", endpoints=("chat",)):
    return _body({"name": name, "endpoints": list(endpoints), "finetuned": False})


def test_models_request_gets_the_configured_model():
    """The start-up check is GET /v1/models/{model}, the name quoted."""
    call = cohere.models_request(Endpoint(BASE, "my/model", api_key=KEY))
    assert (call.method, call.url) == ("GET", f"{BASE}/v1/models/my%2Fmodel")
    assert call.headers == (("authorization", f"Bearer {KEY}"),)


def test_check_models_accepts_a_chat_model():
    """A model whose endpoints include chat passes."""
    assert cohere.check_models(ENDPOINT, 200, NO_HEADERS, _model()) is None


def test_check_models_refuses_a_model_that_does_not_chat():
    """An embedding model configured for chat is refused, naming what it serves."""
    error = cohere.check_models(ENDPOINT, 200, NO_HEADERS, _model("embed-v4.0", ("embed",)))
    assert error is not None
    assert error.kind is ErrorKind.BAD_REQUEST
    assert "serves: embed" in error.message


def test_check_models_of_an_unknown_model_is_not_found():
    """A 404 names the model and keeps Cohere's message."""
    body = _body({"message": "model 'nope' not found, make sure the correct model ID was used"})
    error = cohere.check_models(Endpoint(BASE, "nope", api_key=KEY), 404, NO_HEADERS, body)
    assert error is not None
    assert (error.kind, error.code) == (ErrorKind.NOT_FOUND, "model_not_found")
    assert "'nope'" in error.message


def test_check_models_reports_a_refused_key_and_a_foreign_body():
    """A 401 is an auth error; an answer without ``name`` is malformed."""
    refused = cohere.check_models(
        ENDPOINT, 401, NO_HEADERS, _body({"message": "invalid api token"})
    )
    assert refused is not None
    assert refused.kind is ErrorKind.AUTH
    odd = cohere.check_models(ENDPOINT, 200, NO_HEADERS, _body({"id": "x"}))
    assert odd is not None
    assert odd.kind is ErrorKind.MALFORMED_RESPONSE


def test_list_models_asks_one_page_of_a_thousand_and_reads_names():
    """Listing is GET /v1/models?page_size=1000, reading each model's ``name``."""
    listing = cohere.PROTOCOL.list_models
    assert listing is not None
    assert listing.request(ENDPOINT).url == f"{BASE}/v1/models?page_size=1000"
    body = _body({"models": [{"name": "command-a-03-2025"}, {"name": "embed-v4.0"}]})
    assert listing.parse(200, NO_HEADERS, body) == ["command-a-03-2025", "embed-v4.0"]
    with pytest.raises(ProviderError) as caught:
        listing.parse(200, NO_HEADERS, _body({"data": []}))
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_embed_request_posts_v2_embed_for_float_vectors():
    """Embeddings POST /v2/embed: texts, input_type as search_document/query, float vectors."""
    embed = cohere.PROTOCOL.embed
    assert embed is not None
    call = embed.request(ENDPOINT, EmbedRequest(texts=("a", "b"), model="embed-v4.0"))
    assert (call.method, call.url) == ("POST", f"{BASE}/v2/embed")
    assert call.json == {
        "model": "embed-v4.0",
        "texts": ["a", "b"],
        "input_type": "search_document",
        "embedding_types": ["float"],
    }
    query = embed.request(ENDPOINT, EmbedRequest(("q",), "embed-v4.0", 256, input_type="query"))
    assert (query.json["input_type"], query.json["output_dimension"]) == ("search_query", 256)
    other = embed.request(ENDPOINT, EmbedRequest(("q",), "embed-v4.0", input_type="clustering"))
    assert other.json["input_type"] == "clustering"


def test_parse_embed_reads_float_vectors_and_billed_tokens():
    """``embeddings.float`` are the vectors, in order; billed input tokens the usage."""
    body = _body(
        {
            "id": "da6e",
            "embeddings": {"float": [[0.5, -0.5], [1, 0]]},
            "texts": ["a", "b"],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2}},
            "response_type": "embeddings_by_type",
        }
    )
    result = cohere.parse_embed(200, NO_HEADERS, body)
    assert result.vectors == ((0.5, -0.5), (1.0, 0.0))
    assert result.usage.input_tokens == 2


def test_parse_embed_refuses_errors_and_foreign_bodies():
    """An error status raises its error; the v1 list shape or no vectors is malformed."""
    with pytest.raises(ProviderError) as refused:
        cohere.parse_embed(400, NO_HEADERS, _body({"message": "invalid request: texts"}))
    assert refused.value.kind is ErrorKind.BAD_REQUEST
    for body in (_body({"embeddings": [[0.1]]}), _body({"embeddings": {"int8": [[1]]}}), b"x"):
        with pytest.raises(ProviderError) as caught:
            cohere.parse_embed(200, NO_HEADERS, body)
        assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE
