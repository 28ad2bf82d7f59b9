import json

import httpx
import pytest

from runtime._chat import ChatRequest, Message, Tuning
from runtime._errors import ErrorKind, ProviderError
from runtime.protocols import PROTOCOLS, Endpoint
from runtime.protocols import _anthropic as anthropic

pytestmark = pytest.mark.timeout(10)

BASE = "https://api.anthropic.com/v1"
ENDPOINT = Endpoint(base_url=BASE, model="claude-sonnet-4-5", api_key="sk-ant-test-key")
NOW = 1_760_000_000.0  # 2025-10-09T08:53:20Z


def _request(**kwargs):
    defaults = {"messages": (Message("user", "Hello, Claude"),), "model": "claude-sonnet-4-5"}
    return ChatRequest(**(defaults | kwargs))


def _body(value) -> bytes:
    return json.dumps(value).encode()


def _message(content=None, stop_reason="end_turn", usage=None):
    return {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Hi! My name is Claude."}]
        if content is None
        else content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 2095, "output_tokens": 503},
    }


def _error_body(error_type, message, **extra):
    error = {"type": error_type, "message": message} | extra
    return _body({"type": "error", "error": error, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})


def _feed(parser, events):
    deltas = []
    for event, data in events:
        deltas.extend(parser.feed(event, json.dumps(data)))
    return deltas


def _documented_stream(stop_reason="end_turn"):
    return [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": "claude-sonnet-4-5-20250929",
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 25,
                        "cache_creation_input_tokens": 10,
                        "cache_read_input_tokens": 100,
                        "output_tokens": 1,
                    },
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hello"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "!"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": 15},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def test_chat_request_posts_to_messages_with_top_level_system():
    """The chat is a POST to {base}/messages with the system prompt at the top level."""
    request = _request(
        messages=(Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Bye")),
        system="Be brief.",
    )
    call = anthropic.chat_request(ENDPOINT, request, stream=False)
    assert (call.method, call.url, call.stream) == (
        "POST",
        "https://api.anthropic.com/v1/messages",
        False,
    )
    assert call.json == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        ],
    }


def test_chat_request_lifts_system_turns_out_of_the_messages():
    """System turns inside the conversation move into the top-level system prompt."""
    request = _request(messages=(Message("system", "Rule."), Message("user", "Hi")))
    body = anthropic.chat_request(ENDPOINT, request, stream=False).json
    assert body["system"] == "Rule."
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


def test_chat_request_sends_only_the_tuning_that_is_set():
    """Unset tuning is left out (max_tokens defaults to 4096); stop goes in stop_sequences."""
    bare = anthropic.chat_request(ENDPOINT, _request(), stream=False).json
    assert set(bare) == {"model", "max_tokens", "messages"}
    tuning = Tuning(temperature=0.5, max_tokens=256, top_p=0.8, stop=("\n\nHuman:",))
    tuned = anthropic.chat_request(ENDPOINT, _request(tuning=tuning), stream=False).json
    assert tuned["temperature"] == 0.5
    assert tuned["top_p"] == 0.8
    assert tuned["max_tokens"] == 256
    assert tuned["stop_sequences"] == ["\n\nHuman:"]
    assert "stop" not in tuned


def test_streamed_chat_request_sets_stream():
    """A streamed chat sets "stream": true and marks the call streamed."""
    call = anthropic.chat_request(ENDPOINT, _request(), stream=True)
    assert call.json["stream"] is True
    assert call.stream is True
    assert "stream" not in anthropic.chat_request(ENDPOINT, _request(), stream=False).json


def test_chat_request_headers_carry_key_version_content_type_and_extras():
    """The key goes in x-api-key with anthropic-version 2023-06-01, then content-type and extras."""
    endpoint = Endpoint(BASE, "m", api_key="sk-ant-k", extra_headers=(("anthropic-beta", "x"),))
    assert anthropic.chat_request(endpoint, _request(), stream=False).headers == (
        ("x-api-key", "sk-ant-k"),
        ("anthropic-version", "2023-06-01"),
        ("content-type", "application/json"),
        ("anthropic-beta", "x"),
    )


def test_parse_chat_reads_text_model_usage_and_stop_reason():
    """A documented message becomes a ChatResult with the text blocks joined."""
    content = [
        {"type": "thinking", "thinking": "Let me think", "signature": "abc"},
        {"type": "text", "text": "Hello"},
        {"type": "text", "text": " there"},
    ]
    result = anthropic.parse_chat(200, httpx.Headers(), _body(_message(content)))
    assert result.text == "Hello there"
    assert result.model == "claude-sonnet-4-5-20250929"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (2095, 503)
    assert result.finish_reason == "stop"


def test_parse_chat_counts_cached_input_tokens_as_input():
    """Cache reads and writes are added to input_tokens, which Anthropic reports without them."""
    usage = {
        "input_tokens": 50,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 1000,
        "output_tokens": 20,
    }
    result = anthropic.parse_chat(200, httpx.Headers(), _body(_message(usage=usage)))
    assert result.usage.to_dict() == {
        "input_tokens": 1250,
        "output_tokens": 20,
        "cached_tokens": 1000,
    }
    assert result.usage.cache_write_tokens == 200


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("pause_turn", "pause_turn"),
        ("New_Reason", "new_reason"),
    ],
)
def test_parse_chat_normalizes_stop_reasons(raw, normalized):
    """Stop reasons map onto the shared names, and unknown ones pass through lowercased."""
    result = anthropic.parse_chat(200, httpx.Headers(), _body(_message(stop_reason=raw)))
    assert result.finish_reason == normalized


def test_parse_chat_raises_content_filter_for_a_refusal():
    """stop_reason "refusal" is a CONTENT_FILTER error."""
    with pytest.raises(ProviderError) as caught:
        anthropic.parse_chat(
            200, httpx.Headers(), _body(_message(content=[], stop_reason="refusal"))
        )
    assert caught.value.kind is ErrorKind.CONTENT_FILTER


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"", _body(["a"]), _body({"id": "msg_1"})])
def test_parse_chat_raises_malformed_for_bodies_without_the_documented_shape(body):
    """A 200 body that is not JSON or has no content array is MALFORMED_RESPONSE."""
    with pytest.raises(ProviderError) as caught:
        anthropic.parse_chat(200, httpx.Headers(), body)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_parse_chat_raises_the_parsed_error_for_error_statuses():
    """An error status raises what parse_error makes of it."""
    with pytest.raises(ProviderError) as caught:
        anthropic.parse_chat(529, httpx.Headers(), _error_body("overloaded_error", "Overloaded"))
    assert caught.value.kind is ErrorKind.OVERLOADED
    assert caught.value.status == 529


@pytest.mark.parametrize(
    ("status", "error_type", "kind"),
    [
        (400, "invalid_request_error", ErrorKind.BAD_REQUEST),
        (401, "authentication_error", ErrorKind.AUTH),
        (402, "billing_error", ErrorKind.QUOTA),
        (403, "permission_error", ErrorKind.PERMISSION),
        (404, "not_found_error", ErrorKind.NOT_FOUND),
        (413, "request_too_large", ErrorKind.BAD_REQUEST),
        (429, "rate_limit_error", ErrorKind.RATE_LIMITED),
        (500, "api_error", ErrorKind.SERVER),
        (504, "timeout_error", ErrorKind.TIMEOUT),
        (529, "overloaded_error", ErrorKind.OVERLOADED),
    ],
)
def test_parse_error_maps_every_documented_error_type(status, error_type, kind):
    """Each documented error type maps to its kind, keeping the type as the code."""
    error = anthropic.parse_error(
        status, httpx.Headers(), _error_body(error_type, "Something happened")
    )
    assert error.kind is kind
    assert error.code == error_type
    assert error.status == status
    assert error.message == "Something happened"


def test_parse_error_uses_the_status_for_invalid_request_errors_on_other_codes():
    """invalid_request_error on another 4xx status (here 404) is classified by that status."""
    error = anthropic.parse_error(
        404, httpx.Headers(), _error_body("invalid_request_error", "no such route")
    )
    assert error.kind is ErrorKind.NOT_FOUND


def test_parse_error_carries_retry_after_on_rate_limits():
    """A 429 rate_limit_error carries the retry-after header's wait."""
    error = anthropic.parse_error(
        429,
        httpx.Headers({"retry-after": "12"}),
        _error_body(
            "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"
        ),
    )
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.retry_after_s == 12.0


def test_parse_error_treats_the_monthly_spend_cap_as_quota():
    """A 429 whose details say enforced_spend_limit_reached is QUOTA: waiting will not help."""
    body = _error_body(
        "rate_limit_error",
        "You have reached your usage tier's monthly spend limit.",
        details={"error_code": "enforced_spend_limit_reached"},
    )
    error = anthropic.parse_error(429, httpx.Headers(), body)
    assert error.kind is ErrorKind.QUOTA
    assert not error.retryable
    assert "spend limit" in error.message


def test_parse_error_treats_an_empty_credit_balance_as_quota():
    """The 400 for a credit balance too low is QUOTA, not a bad request."""
    body = _error_body(
        "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing.",
    )
    assert anthropic.parse_error(400, httpx.Headers(), body).kind is ErrorKind.QUOTA


def test_parse_error_describes_non_json_bodies():
    """An HTML page or an empty body is classified by status and never raises."""
    error = anthropic.parse_error(502, httpx.Headers(), b"<html><h1>502 Bad Gateway</h1></html>")
    assert error.kind is ErrorKind.SERVER
    assert "502 Bad Gateway" in error.message
    assert anthropic.parse_error(529, httpx.Headers(), b"").kind is ErrorKind.OVERLOADED
    assert (
        anthropic.parse_error(400, httpx.Headers(), _body({"x": 1})).kind is ErrorKind.BAD_REQUEST
    )


def test_stream_yields_text_deltas_then_the_whole_answer():
    """The documented event sequence gives text deltas, and finish() the text, usage and stop."""
    parser = anthropic.stream_parser(
        httpx.Headers({"anthropic-ratelimit-requests-remaining": "49"})
    )
    assert _feed(parser, _documented_stream()) == ["Hello", "!"]
    result = parser.finish()
    assert result.text == "Hello!"
    assert result.model == "claude-sonnet-4-5-20250929"
    assert result.usage.to_dict() == {
        "input_tokens": 135,
        "output_tokens": 15,
        "cached_tokens": 100,
    }
    assert result.finish_reason == "stop"
    assert result.rate_limits.remaining_requests == 49


def test_stream_ignores_thinking_signature_and_tool_input_deltas():
    """Only text_delta events add text; thinking, signature and stray input_json deltas are skipped.

    (An input_json delta whose block never started as ``tool_use`` belongs to no call.)
    """
    parser = anthropic.stream_parser(httpx.Headers())
    events = _documented_stream()
    extra = [
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "thinking", "thinking": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "thinking_delta", "thinking": "Hmm"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "signature_delta", "signature": "EqQB"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": '{"a"'},
            },
        ),
    ]
    assert _feed(parser, events[:1] + extra + events[1:]) == ["Hello", "!"]
    assert parser.finish().text == "Hello!"


def test_stream_takes_the_later_usage_from_message_delta():
    """Cumulative usage in message_delta replaces the counts from message_start."""
    events = _documented_stream()
    events[-2][1]["usage"] = {"input_tokens": 30, "output_tokens": 40}
    parser = anthropic.stream_parser(httpx.Headers())
    _feed(parser, events)
    usage = parser.finish().usage
    assert (usage.input_tokens, usage.output_tokens) == (140, 40)


def test_stream_raises_the_error_an_error_event_reports():
    """An error event (overloaded_error mid-stream) raises OVERLOADED."""
    parser = anthropic.stream_parser(httpx.Headers())
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(ProviderError) as caught:
        _feed(parser, [*_documented_stream()[:3], ("error", error)])
    assert caught.value.kind is ErrorKind.OVERLOADED
    assert caught.value.code == "overloaded_error"


def test_stream_raises_malformed_for_unparsable_data():
    """Event data that is not a JSON object is MALFORMED_RESPONSE."""
    parser = anthropic.stream_parser(httpx.Headers())
    with pytest.raises(ProviderError) as caught:
        parser.feed("content_block_delta", '{"type": ')
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_stream_without_message_stop_is_malformed():
    """A stream cut before message_stop fails at finish()."""
    parser = anthropic.stream_parser(httpx.Headers())
    _feed(parser, _documented_stream()[:-1])
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_stream_ending_in_refusal_raises_content_filter():
    """A stream whose message_delta says refusal raises CONTENT_FILTER at finish()."""
    parser = anthropic.stream_parser(httpx.Headers())
    _feed(parser, _documented_stream(stop_reason="refusal"))
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.CONTENT_FILTER


def test_rate_limits_turns_rfc3339_resets_into_seconds_from_now():
    """Request and token budgets (and limits) are read; reset times become seconds from now."""
    headers = httpx.Headers(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": "2025-10-09T08:53:50Z",
            "anthropic-ratelimit-tokens-remaining": "9000",
            "anthropic-ratelimit-tokens-reset": "2025-10-09T08:54:20+00:00",
        }
    )
    info = anthropic.rate_limits(headers, now=NOW)
    assert info.remaining_requests == 0
    assert info.reset_requests_s == 30.0
    assert info.remaining_tokens == 9000
    assert info.reset_tokens_s == 60.0
    assert (info.limit_requests, info.limit_tokens) == (50, None)
    assert info.exhausted_for_s() == 30.0


def test_rate_limits_takes_the_smaller_of_input_and_output_budgets():
    """With input and output token budgets, the one with fewer tokens left is reported."""
    headers = httpx.Headers(
        {
            "anthropic-ratelimit-input-tokens-remaining": "80000",
            "anthropic-ratelimit-input-tokens-reset": "2025-10-09T08:53:21Z",
            "anthropic-ratelimit-output-tokens-remaining": "0",
            "anthropic-ratelimit-output-tokens-reset": "2025-10-09T08:53:30Z",
        }
    )
    info = anthropic.rate_limits(headers, now=NOW)
    assert (info.remaining_tokens, info.reset_tokens_s) == (0, 10.0)


def test_rate_limits_never_reports_negative_or_unparsable_resets():
    """A reset already past counts as zero seconds, and a garbled one as unknown."""
    headers = httpx.Headers(
        {
            "anthropic-ratelimit-requests-reset": "2020-01-01T00:00:00Z",
            "anthropic-ratelimit-tokens-remaining": "5",
            "anthropic-ratelimit-tokens-reset": "soon",
        }
    )
    info = anthropic.rate_limits(headers, now=NOW)
    assert info.reset_requests_s == 0.0
    assert info.reset_tokens_s is None
    assert anthropic.rate_limits(httpx.Headers(), now=NOW) == type(info)()


def test_models_request_gets_the_configured_model():
    """The start-up check is an authenticated GET {base}/models/{model}."""
    call = anthropic.models_request(ENDPOINT)
    assert (call.method, call.url, call.json) == (
        "GET",
        "https://api.anthropic.com/v1/models/claude-sonnet-4-5",
        None,
    )
    assert call.headers == (("x-api-key", "sk-ant-test-key"), ("anthropic-version", "2023-06-01"))


def test_check_models_passes_for_a_known_model():
    """A model object with an id (an alias resolved) means the check passed."""
    body = _body(
        {
            "id": "claude-sonnet-4-5-20250929",
            "created_at": "2025-09-29T00:00:00Z",
            "display_name": "Claude Sonnet 4.5",
            "type": "model",
        }
    )
    assert anthropic.check_models(ENDPOINT, 200, httpx.Headers(), body) is None


def test_check_models_reports_an_unknown_model_as_not_found_naming_it():
    """A 404 is NOT_FOUND naming the model, the URL asked and the API's root."""
    body = _error_body("not_found_error", "model: claude-sonet-4-5")
    error = anthropic.check_models(
        Endpoint(BASE, "claude-sonet-4-5", "k"), 404, httpx.Headers(), body
    )
    assert error is not None
    assert error.kind is ErrorKind.NOT_FOUND
    assert f"GET {BASE}/models/claude-sonet-4-5 answered 404 (model: claude-sonet-4-5)" in (
        error.message
    )
    assert "that is https://api.anthropic.com/v1" in error.message


def test_check_models_reports_a_rejected_key_as_auth():
    """A 401 answer is the parsed AUTH error."""
    body = _error_body("authentication_error", "invalid x-api-key")
    error = anthropic.check_models(ENDPOINT, 401, httpx.Headers(), body)
    assert error is not None
    assert error.kind is ErrorKind.AUTH


def test_check_models_reports_a_malformed_answer():
    """A 200 answer without a model id is MALFORMED_RESPONSE."""
    error = anthropic.check_models(ENDPOINT, 200, httpx.Headers(), b"{}")
    assert error is not None
    assert error.kind is ErrorKind.MALFORMED_RESPONSE


def test_protocols_registry_holds_the_anthropic_protocol():
    """PROTOCOLS["anthropic"] is this module's protocol."""
    assert PROTOCOLS["anthropic"] is anthropic.PROTOCOL
    assert anthropic.PROTOCOL.name == "anthropic"
