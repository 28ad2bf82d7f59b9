import json

import httpx
import pytest

import runtime.protocols
from runtime._chat import ChatRequest, Message, Tuning
from runtime._config.provider_types import KINDS
from runtime._errors import ErrorKind, ProviderError
from runtime.protocols import PROTOCOLS, Endpoint
from runtime.protocols import _openai as openai

pytestmark = pytest.mark.timeout(10)

BASE = "https://api.openai.com/v1"
ENDPOINT = Endpoint(base_url=BASE, model="gpt-4o-mini", api_key="sk-test-secret-123456")


def _request(**kwargs):
    defaults = {"messages": (Message("user", "Hello!"),), "model": "gpt-4o-mini"}
    return ChatRequest(**(defaults | kwargs))


def _body(value) -> bytes:
    return json.dumps(value).encode()


def _completion(content="Hi there.", finish="stop", **extra):
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 10,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    } | extra


def _error(status, message, type_, code=None, headers=None):
    body = _body({"error": {"message": message, "type": type_, "param": None, "code": code}})
    return openai.parse_error(status, httpx.Headers(headers or {}), body)


def _chunk(delta=None, finish=None, *, choices=None, usage=None):
    if choices is None:
        choices = [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
    return json.dumps(
        {
            "id": "chatcmpl-123",
            "object": "chat.completion.chunk",
            "created": 1694268190,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": choices,
            "usage": usage,
        }
    )


def _feed(parser, *datas):
    deltas = []
    for data in datas:
        deltas.extend(parser.feed("", data))
    return deltas


def test_chat_request_posts_to_chat_completions_with_leading_system_message():
    """The chat is a POST to {base}/chat/completions whose system prompt leads the messages."""
    request = _request(
        messages=(Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Bye")),
        system="Be brief.",
    )
    call = openai.chat_request(ENDPOINT, request, stream=False)
    assert call.method == "POST"
    assert call.url == "https://api.openai.com/v1/chat/completions"
    assert call.json == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        ],
    }
    assert call.stream is False


def test_chat_request_lifts_system_turns_into_the_leading_message():
    """System turns inside the conversation join the system prompt in one leading message."""
    request = _request(
        messages=(Message("system", "Rule two."), Message("user", "Hi")), system="Rule one."
    )
    messages = openai.chat_request(ENDPOINT, request, stream=False).json["messages"]
    assert messages == [
        {"role": "system", "content": "Rule one.\n\nRule two."},
        {"role": "user", "content": "Hi"},
    ]


def test_chat_request_sends_only_the_tuning_that_is_set():
    """Unset tuning values are left out; set ones appear under OpenAI's names."""
    bare = openai.chat_request(ENDPOINT, _request(), stream=False).json
    assert set(bare) == {"model", "messages"}
    tuning = Tuning(temperature=0.2, max_tokens=64, top_p=0.9, stop=("END",))
    tuned = openai.chat_request(ENDPOINT, _request(tuning=tuning), stream=False).json
    assert tuned["temperature"] == 0.2
    assert tuned["top_p"] == 0.9
    assert tuned["max_tokens"] == 64
    assert tuned["stop"] == ["END"]
    assert "max_completion_tokens" not in tuned


def test_streamed_chat_request_asks_for_usage_in_the_stream():
    """A streamed chat sets stream and stream_options.include_usage, and marks the call streamed."""
    call = openai.chat_request(ENDPOINT, _request(), stream=True)
    assert call.json["stream"] is True
    assert call.json["stream_options"] == {"include_usage": True}
    assert call.stream is True


def test_chat_request_headers_carry_bearer_key_content_type_and_extras():
    """The key goes in a Bearer authorization header, followed by content-type and extra headers."""
    endpoint = Endpoint(
        BASE, "m", api_key="sk-abc", extra_headers=(("OpenAI-Organization", "org-1"),)
    )
    headers = openai.chat_request(endpoint, _request(), stream=False).headers
    assert headers == (
        ("authorization", "Bearer sk-abc"),
        ("content-type", "application/json"),
        ("OpenAI-Organization", "org-1"),
    )


def test_chat_request_omits_authorization_without_a_key():
    """A local server configured without a key gets no authorization header at all."""
    local = Endpoint("http://localhost:8000/v1", "m")
    headers = openai.chat_request(local, _request(), stream=False).headers
    assert [name for name, _ in headers] == ["content-type"]


def test_parse_chat_reads_text_model_usage_finish_and_rate_limits():
    """A documented chat.completion becomes a ChatResult with cached tokens and rate limits."""
    headers = httpx.Headers(
        {"x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-tokens": "6m0s"}
    )
    result = openai.parse_chat(200, headers, _body(_completion()))
    assert result.text == "Hi there."
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert result.usage.to_dict() == {"input_tokens": 19, "output_tokens": 10, "cached_tokens": 4}
    assert result.finish_reason == "stop"
    assert result.rate_limits.remaining_requests == 59
    assert result.rate_limits.reset_tokens_s == 360.0


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("Eos", "eos"),
    ],
)
def test_parse_chat_normalizes_finish_reasons(raw, normalized):
    """Finish reasons map onto the shared names, and unknown ones pass through lowercased."""
    result = openai.parse_chat(200, httpx.Headers(), _body(_completion(finish=raw)))
    assert result.finish_reason == normalized


def test_parse_chat_without_usage_counts_zero_tokens():
    """A compatible server that omits usage yields zero counts rather than an error."""
    body = _completion()
    del body["usage"]
    assert openai.parse_chat(200, httpx.Headers(), _body(body)).usage.total_tokens == 0


def test_parse_chat_raises_content_filter_when_the_answer_was_filtered_away():
    """finish_reason content_filter with no text is a CONTENT_FILTER error, not an empty answer."""
    with pytest.raises(ProviderError) as caught:
        openai.parse_chat(
            200, httpx.Headers(), _body(_completion(content=None, finish="content_filter"))
        )
    assert caught.value.kind is ErrorKind.CONTENT_FILTER


def test_parse_chat_keeps_partial_text_cut_by_the_content_filter():
    """Text that arrived before the content filter stopped the answer is returned as such."""
    result = openai.parse_chat(
        200, httpx.Headers(), _body(_completion(content="Part", finish="content_filter"))
    )
    assert (result.text, result.finish_reason) == ("Part", "content_filter")


def test_parse_chat_raises_content_filter_for_a_refusal():
    """A message with only a refusal is reported as CONTENT_FILTER carrying the refusal."""
    body = _completion(content=None)
    body["choices"][0]["message"]["refusal"] = "I can't help with that."
    with pytest.raises(ProviderError) as caught:
        openai.parse_chat(200, httpx.Headers(), _body(body))
    assert caught.value.kind is ErrorKind.CONTENT_FILTER
    assert "can't help" in caught.value.message


@pytest.mark.parametrize(
    "body",
    [
        b"<html>Bad gateway</html>",
        b"",
        _body([1, 2]),
        _body({"id": "x"}),
        _body({"choices": []}),
        _body({"choices": [{"index": 0}]}),
    ],
)
def test_parse_chat_raises_malformed_for_bodies_without_the_documented_shape(body):
    """A 200 body that is not JSON or lacks choices[0].message is MALFORMED_RESPONSE."""
    with pytest.raises(ProviderError) as caught:
        openai.parse_chat(200, httpx.Headers(), body)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_parse_chat_raises_the_parsed_error_for_error_statuses():
    """An error status raises what parse_error makes of it."""
    body = _body(
        {
            "error": {
                "message": "Rate limit reached",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        }
    )
    with pytest.raises(ProviderError) as caught:
        openai.parse_chat(429, httpx.Headers({"retry-after": "2"}), body)
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert caught.value.retry_after_s == 2.0


@pytest.mark.parametrize("echoed", ["sk-proj-********abcd", "gsk_live-*wxyz"])
def test_parse_error_maps_invalid_api_key_to_auth_without_echoing_the_key(echoed):
    """A 401 invalid_api_key is AUTH, keeps the code, and masks the key fragment echoed back."""
    error = _error(
        401,
        f"Incorrect API key provided: {echoed}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )
    assert error.kind is ErrorKind.AUTH
    assert error.code == "invalid_api_key"
    assert error.status == 401
    assert echoed[-4:] not in error.message
    assert "Incorrect API key provided" in error.message
    assert error.provider == ""


def test_parse_error_maps_insufficient_quota_to_quota_not_rate_limited():
    """A 429 insufficient_quota is a billing problem: QUOTA, not retryable, saying so."""
    error = _error(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        "insufficient_quota",
    )
    assert error.kind is ErrorKind.QUOTA
    assert not error.retryable
    assert "quota or billing is exhausted" in error.message


def test_parse_error_maps_other_429s_to_rate_limited_with_retry_after():
    """A plain 429 is RATE_LIMITED and carries the Retry-After wait."""
    error = _error(
        429,
        "Rate limit reached for requests",
        "requests",
        "rate_limit_exceeded",
        {"Retry-After": "7"},
    )
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.retry_after_s == 7.0
    assert error.retryable


@pytest.mark.parametrize("code", ["content_filter", "content_policy_violation"])
def test_parse_error_maps_content_filter_codes(code):
    """A 400 whose code is content_filter (Azure) or content_policy_violation is CONTENT_FILTER."""
    error = _error(
        400,
        "The response was filtered due to the prompt triggering content management policy.",
        None,
        code,
    )
    assert error.kind is ErrorKind.CONTENT_FILTER
    assert error.code == code


def test_parse_error_maps_model_not_found_to_not_found():
    """A 404 model_not_found is NOT_FOUND."""
    error = _error(
        404, "The model `gpt-5x` does not exist", "invalid_request_error", "model_not_found"
    )
    assert error.kind is ErrorKind.NOT_FOUND


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.BAD_REQUEST),
        (500, ErrorKind.SERVER),
        (502, ErrorKind.SERVER),
        (503, ErrorKind.OVERLOADED),
    ],
)
def test_parse_error_falls_back_to_the_status(status, kind):
    """Errors without a telling code are classified by HTTP status (503 is OVERLOADED)."""
    error = _error(status, "The server had an error while processing your request.", "server_error")
    assert error.kind is kind
    assert error.code == "server_error"


def test_parse_error_describes_non_json_bodies():
    """An HTML page from a proxy becomes an error classified by status, quoting the page."""
    error = openai.parse_error(502, httpx.Headers(), b"<html><body>502 Bad Gateway</body></html>")
    assert error.kind is ErrorKind.SERVER
    assert "502 Bad Gateway" in error.message
    assert openai.parse_error(503, httpx.Headers(), b"").kind is ErrorKind.OVERLOADED


def test_parse_error_accepts_json_without_the_error_object():
    """JSON in another shape (a compatible server's own) is classified by status, never raising."""
    error = openai.parse_error(404, httpx.Headers(), _body({"detail": "Not Found"}))
    assert error.kind is ErrorKind.NOT_FOUND
    assert "Not Found" in error.message
    assert (
        openai.parse_error(401, httpx.Headers(), _body({"error": "bad key"})).message == "bad key"
    )


def test_parse_error_trims_long_messages():
    """A provider's very long message is cut to a short one."""
    assert len(_error(400, "x" * 5000, "invalid_request_error").message) < 400


def test_stream_yields_deltas_then_the_whole_answer_with_usage():
    """The documented chunk sequence gives text deltas, and finish() the text, usage and finish."""
    parser = openai.stream_parser(httpx.Headers({"x-ratelimit-remaining-tokens": "149984"}))
    deltas = _feed(
        parser,
        _chunk({"role": "assistant", "content": "", "refusal": None}),
        _chunk({"content": "Hello"}),
        _chunk({"content": " world"}),
        _chunk({}, "stop"),
        _chunk(choices=[], usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}),
        "[DONE]",
    )
    assert deltas == ["Hello", " world"]
    result = parser.finish()
    assert result.text == "Hello world"
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (9, 2)
    assert result.finish_reason == "stop"
    assert result.rate_limits.remaining_tokens == 149984


def test_stream_accepts_a_first_chunk_with_only_prompt_filter_results():
    """Azure's first chunk, with empty choices and prompt_filter_results, is accepted."""
    parser = openai.stream_parser(httpx.Headers())
    azure_first = json.dumps(
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
        }
    )
    assert _feed(parser, azure_first, _chunk({"content": "Hi"}, "stop"), "[DONE]") == ["Hi"]
    assert parser.finish().text == "Hi"


def test_stream_raises_the_error_an_error_chunk_reports():
    """A data line holding an error object raises it as a ProviderError."""
    parser = openai.stream_parser(httpx.Headers())
    error = json.dumps(
        {"error": {"message": "The server had an error", "type": "server_error", "code": None}}
    )
    with pytest.raises(ProviderError) as caught:
        _feed(parser, _chunk({"content": "Hi"}), error)
    assert caught.value.kind is ErrorKind.SERVER
    assert "server had an error" in caught.value.message


def test_stream_raises_malformed_for_unparsable_data():
    """A data line that is not a JSON object is MALFORMED_RESPONSE."""
    parser = openai.stream_parser(httpx.Headers())
    with pytest.raises(ProviderError) as caught:
        parser.feed("", "{not json")
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_stream_cut_before_finish_reason_or_done_is_malformed():
    """A stream that stops with neither a finish_reason nor [DONE] fails at finish()."""
    parser = openai.stream_parser(httpx.Headers())
    _feed(parser, _chunk({"content": "Hel"}))
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_stream_with_finish_reason_but_no_done_is_complete():
    """A server that never sends [DONE] still completes once a finish_reason arrived."""
    parser = openai.stream_parser(httpx.Headers())
    _feed(parser, _chunk({"content": "Hi"}), _chunk({}, "length"))
    assert parser.finish().finish_reason == "length"


def test_stream_ended_by_done_without_finish_reason_is_complete():
    """A server that never fills finish_reason still completes at data: [DONE]."""
    parser = openai.stream_parser(httpx.Headers())
    _feed(parser, _chunk({"content": "Hi"}), "[DONE]")
    result = parser.finish()
    assert (result.text, result.finish_reason) == ("Hi", None)


def test_stream_filtered_to_nothing_raises_content_filter():
    """A stream ending with content_filter and no text raises CONTENT_FILTER at finish()."""
    parser = openai.stream_parser(httpx.Headers())
    _feed(parser, _chunk({"role": "assistant"}), _chunk({}, "content_filter"), "[DONE]")
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.CONTENT_FILTER


def test_rate_limits_reads_remaining_counts_and_duration_resets():
    """The x-ratelimit headers give limits, remaining counts and resets in seconds."""
    info = openai.rate_limits(
        httpx.Headers(
            {
                "x-ratelimit-limit-requests": "60",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-remaining-tokens": "149984",
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-reset-tokens": "6m0s",
            }
        )
    )
    assert info.remaining_requests == 0
    assert info.remaining_tokens == 149984
    assert info.reset_requests_s == 1.0
    assert info.reset_tokens_s == 360.0
    assert (info.limit_requests, info.limit_tokens) == (60, None)
    assert info.exhausted_for_s() == 1.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("120ms", 0.12),
        ("1h2m3.5s", 3723.5),
        (".5s", 0.5),
        ("500µs", 0.0005),
        (" 20ms ", 0.02),
        ("0.75", 0.75),
        ("12", 12.0),
        ("", None),
        ("soon", None),
        ("3x", None),
        ("1.2.3s", None),
        ("5m3", None),
        ("ms", None),
    ],
)
def test_reset_durations_are_go_durations_or_plain_seconds(header, seconds):
    """Resets read as Go prints durations; anything else is unknown, never an error."""
    raw = [(b"x-ratelimit-reset-tokens", header.encode())]  # Go sends UTF-8: "µs"
    info = openai.rate_limits(httpx.Headers(raw))
    assert info.reset_tokens_s == (None if seconds is None else pytest.approx(seconds))


def test_rate_limits_is_empty_without_headers():
    """A server that sends no rate-limit headers yields an all-None RateLimitInfo."""
    info = openai.rate_limits(httpx.Headers())
    assert info == type(info)()


def test_models_request_gets_the_model_list_with_the_key():
    """The start-up check is an authenticated GET {base}/models without a body."""
    call = openai.models_request(ENDPOINT)
    assert (call.method, call.url, call.json) == ("GET", "https://api.openai.com/v1/models", None)
    assert call.headers == (("authorization", "Bearer sk-test-secret-123456"),)


def _model_list(*ids):
    return _body(
        {
            "object": "list",
            "data": [{"id": i, "object": "model", "created": 0, "owned_by": "openai"} for i in ids],
        }
    )


def test_check_models_passes_when_the_model_is_listed():
    """A model list that contains the configured model means the check passed."""
    assert (
        openai.check_models(ENDPOINT, 200, httpx.Headers(), _model_list("gpt-4o", "gpt-4o-mini"))
        is None
    )


def test_check_models_names_close_matches_for_an_unlisted_model():
    """An unlisted model is NOT_FOUND, naming the configured model and the closest listed ones."""
    endpoint = Endpoint(BASE, "gpt-4o-mni", api_key="sk-x")
    error = openai.check_models(
        endpoint, 200, httpx.Headers(), _model_list("gpt-4o-mini", "gpt-4o", "dall-e-3")
    )
    assert error is not None
    assert error.kind is ErrorKind.NOT_FOUND
    assert error.message.startswith(
        "model 'gpt-4o-mni' is not offered by this provider; close matches: "
    )
    assert "gpt-4o-mini" in error.message
    assert "dall-e-3" not in error.message


def test_check_models_reports_a_rejected_key_as_auth():
    """A 401 answer to the model list is the parsed AUTH error."""
    body = _body(
        {
            "error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
    )
    error = openai.check_models(ENDPOINT, 401, httpx.Headers(), body)
    assert error is not None
    assert error.kind is ErrorKind.AUTH


def test_check_models_reports_a_malformed_list():
    """A 200 answer without a data array is MALFORMED_RESPONSE."""
    error = openai.check_models(ENDPOINT, 200, httpx.Headers(), b"<html></html>")
    assert error is not None
    assert error.kind is ErrorKind.MALFORMED_RESPONSE


def test_protocols_registry_holds_every_protocol_by_name():
    """PROTOCOLS maps each name to its protocol; every provider type speaks one of them."""
    assert set(PROTOCOLS) == {
        "openai",
        "anthropic",
        "gemini",
        "azure_openai",
        "bedrock",
        "ollama",
        "cohere",
        "replicate",
    }
    assert {kind.protocol for kind in KINDS.values()} == set(PROTOCOLS)
    assert PROTOCOLS["openai"] is openai.PROTOCOL
    assert all(name == protocol.name for name, protocol in PROTOCOLS.items())


def test_package_exports_exactly_the_documented_names():
    """The protocols package's __all__ names its public names, each of which exists."""
    expected = {
        "PROTOCOLS",
        "Embeddings",
        "Endpoint",
        "Framing",
        "HttpCall",
        "ListModels",
        "StreamByUrl",
        "StreamParser",
        "WireProtocol",
    }
    assert set(runtime.protocols.__all__) == expected
    assert all(hasattr(runtime.protocols, name) for name in expected)
