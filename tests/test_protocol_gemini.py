import json

import httpx
import pytest

from runtime._chat import ChatRequest, Message, RateLimitInfo, Tuning
from runtime._errors import ErrorKind, ProviderError
from runtime.protocols import PROTOCOLS, Endpoint
from runtime.protocols import _gemini as gemini

pytestmark = pytest.mark.timeout(10)

BASE = "https://generativelanguage.googleapis.com/v1beta"
KEY = "AIzaSy-test-key"
ENDPOINT = Endpoint(base_url=BASE, model="gemini-2.5-flash", api_key=KEY)


def _request(**kwargs):
    defaults = {"messages": (Message("user", "Explain AI"),), "model": "gemini-2.5-flash"}
    return ChatRequest(**(defaults | kwargs))


def _body(value) -> bytes:
    return json.dumps(value).encode()


def _response(text="AI is...", finish="STOP", usage=None, **extra):
    candidate = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    response = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", "responseId": "abc"}
    if usage is not False:
        response["usageMetadata"] = usage or {
            "promptTokenCount": 8,
            "candidatesTokenCount": 120,
            "totalTokenCount": 128,
        }
    return response | extra


def _error(status, rpc_status, message, details=(), headers=None):
    body = _body(
        {
            "error": {
                "code": status,
                "message": message,
                "status": rpc_status,
                "details": list(details),
            }
        }
    )
    return gemini.parse_error(status, httpx.Headers(headers or {}), body)


def _feed(parser, *responses):
    deltas = []
    for response in responses:
        deltas.extend(parser.feed("", json.dumps(response)))
    return deltas


def test_chat_request_posts_generate_content_with_system_instruction():
    """The chat is a POST to models/{model}:generateContent with roles user/model and text parts."""
    request = _request(
        messages=(Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Bye")),
        system="Be brief.",
    )
    call = gemini.chat_request(ENDPOINT, request, stream=False)
    assert call.method == "POST"
    assert call.url == f"{BASE}/models/gemini-2.5-flash:generateContent"
    assert call.stream is False
    assert call.json == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello"}]},
            {"role": "user", "parts": [{"text": "Bye"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
    }


def test_chat_request_lifts_system_turns_into_the_system_instruction():
    """System turns inside the conversation join systemInstruction instead of the contents."""
    request = _request(messages=(Message("system", "Rule."), Message("user", "Hi")))
    body = gemini.chat_request(ENDPOINT, request, stream=False).json
    assert body["systemInstruction"] == {"parts": [{"text": "Rule."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Hi"}]}]


def test_chat_request_sends_only_the_tuning_that_is_set_in_generation_config():
    """Unset tuning leaves out generationConfig; set values use Gemini's camelCase names."""
    bare = gemini.chat_request(ENDPOINT, _request(), stream=False).json
    assert set(bare) == {"contents"}
    tuning = Tuning(temperature=1.0, max_tokens=800, top_p=0.8, stop=("Title",))
    tuned = gemini.chat_request(ENDPOINT, _request(tuning=tuning), stream=False).json
    assert tuned["generationConfig"] == {
        "temperature": 1.0,
        "topP": 0.8,
        "maxOutputTokens": 800,
        "stopSequences": ["Title"],
    }


def test_streamed_chat_request_uses_stream_generate_content_with_sse():
    """A streamed chat goes to :streamGenerateContent?alt=sse with the same body."""
    call = gemini.chat_request(ENDPOINT, _request(), stream=True)
    assert call.url == f"{BASE}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert call.stream is True
    assert call.json == gemini.chat_request(ENDPOINT, _request(), stream=False).json


def test_chat_request_accepts_models_prefixed_names():
    """A model named models/x is addressed as models/x, not models/models/x."""
    call = gemini.chat_request(ENDPOINT, _request(model="models/gemini-2.0-flash"), stream=False)
    assert call.url == f"{BASE}/models/gemini-2.0-flash:generateContent"


def test_chat_request_sends_the_key_in_a_header_never_the_url():
    """The key goes in x-goog-api-key, then content-type and the extra headers; never in the URL."""
    endpoint = Endpoint(BASE, "gemini-2.5-flash", api_key=KEY, extra_headers=(("x-extra", "1"),))
    call = gemini.chat_request(endpoint, _request(), stream=True)
    assert call.headers == (
        ("x-goog-api-key", KEY),
        ("content-type", "application/json"),
        ("x-extra", "1"),
    )
    assert KEY not in call.url
    assert "key=" not in call.url


def test_parse_chat_reads_text_model_usage_and_finish():
    """A documented GenerateContentResponse becomes a ChatResult; thought parts are left out."""
    response = _response(
        usage={
            "promptTokenCount": 10,
            "candidatesTokenCount": 20,
            "thoughtsTokenCount": 5,
            "cachedContentTokenCount": 4,
            "totalTokenCount": 35,
        }
    )
    response["candidates"][0]["content"]["parts"] = [
        {"text": "Thinking about it", "thought": True},
        {"text": "AI is "},
        {"text": "neat."},
    ]
    result = gemini.parse_chat(200, httpx.Headers(), _body(response))
    assert result.text == "AI is neat."
    assert result.model == "gemini-2.5-flash"
    assert result.usage.to_dict() == {"input_tokens": 10, "output_tokens": 25, "cached_tokens": 4}
    assert result.finish_reason == "stop"
    assert result.rate_limits == RateLimitInfo()


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "malformed_function_call"),
        ("OTHER", "other"),
    ],
)
def test_parse_chat_normalizes_finish_reasons(raw, normalized):
    """Each finishReason maps onto the shared names, unknown ones lowercased."""
    assert (
        gemini.parse_chat(200, httpx.Headers(), _body(_response(finish=raw))).finish_reason
        == normalized
    )


@pytest.mark.parametrize(
    "reason", ["SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "RECITATION"]
)
def test_parse_chat_raises_content_filter_for_a_withheld_answer(reason):
    """A candidate stopped by a safety finishReason with no text is CONTENT_FILTER."""
    response = {"candidates": [{"finishReason": reason, "index": 0, "safetyRatings": []}]}
    with pytest.raises(ProviderError) as caught:
        gemini.parse_chat(200, httpx.Headers(), _body(response))
    assert caught.value.kind is ErrorKind.CONTENT_FILTER
    assert caught.value.code == reason


def test_parse_chat_raises_content_filter_for_a_blocked_prompt():
    """promptFeedback.blockReason with no candidates is CONTENT_FILTER."""
    response = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 7},
    }
    with pytest.raises(ProviderError) as caught:
        gemini.parse_chat(200, httpx.Headers(), _body(response))
    assert caught.value.kind is ErrorKind.CONTENT_FILTER
    assert "PROHIBITED_CONTENT" in caught.value.message


@pytest.mark.parametrize(
    "body", [b"<html>x</html>", b"", _body([]), _body({"modelVersion": "gemini-2.5-flash"})]
)
def test_parse_chat_raises_malformed_for_bodies_without_the_documented_shape(body):
    """A 200 body that is not JSON or has no candidates (and no block) is MALFORMED_RESPONSE."""
    with pytest.raises(ProviderError) as caught:
        gemini.parse_chat(200, httpx.Headers(), body)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_parse_chat_raises_the_parsed_error_for_error_statuses():
    """An error status raises what parse_error makes of it."""
    body = _body(
        {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    )
    with pytest.raises(ProviderError) as caught:
        gemini.parse_chat(503, httpx.Headers(), body)
    assert caught.value.kind is ErrorKind.OVERLOADED


def test_parse_error_maps_an_invalid_key_400_to_auth():
    """Gemini's 400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID is AUTH."""
    error = _error(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    )
    assert error.kind is ErrorKind.AUTH
    assert error.code == "API_KEY_INVALID"
    assert error.message == "API key not valid. Please pass a valid API key."
    assert error.status == 400


@pytest.mark.parametrize(
    ("status", "rpc_status", "kind"),
    [
        (400, "INVALID_ARGUMENT", ErrorKind.BAD_REQUEST),
        (400, "FAILED_PRECONDITION", ErrorKind.PERMISSION),
        (401, "UNAUTHENTICATED", ErrorKind.AUTH),
        (403, "PERMISSION_DENIED", ErrorKind.PERMISSION),
        (404, "NOT_FOUND", ErrorKind.NOT_FOUND),
        (429, "RESOURCE_EXHAUSTED", ErrorKind.RATE_LIMITED),
        (500, "INTERNAL", ErrorKind.SERVER),
        (503, "UNAVAILABLE", ErrorKind.OVERLOADED),
        (504, "DEADLINE_EXCEEDED", ErrorKind.TIMEOUT),
        (418, "SOMETHING_NEW", ErrorKind.BAD_REQUEST),
    ],
)
def test_parse_error_maps_each_rpc_status(status, rpc_status, kind):
    """Each documented RPC status maps to its kind (unknown ones by HTTP status), kept as code."""
    error = _error(status, rpc_status, "Something went wrong")
    assert error.kind is kind
    assert error.code == rpc_status


def test_parse_error_reads_the_retry_delay_of_a_quota_error():
    """A 429 with a RetryInfo detail waits its retryDelay, fractional seconds included."""
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37.5s"},
    ]
    error = _error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details)
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.retry_after_s == 37.5


def test_parse_error_prefers_the_longer_of_retry_after_and_retry_info():
    """When both a Retry-After header and RetryInfo are present, the longer wait wins."""
    retry = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "20s"}]
    assert _error(429, "RESOURCE_EXHAUSTED", "q", retry, {"retry-after": "5"}).retry_after_s == 20.0
    assert (
        _error(429, "RESOURCE_EXHAUSTED", "q", retry, {"retry-after": "60"}).retry_after_s == 60.0
    )
    assert _error(429, "RESOURCE_EXHAUSTED", "q", (), {"retry-after": "3"}).retry_after_s == 3.0


def test_parse_error_describes_non_json_bodies():
    """An HTML page or an empty body is classified by status and never raises."""
    error = gemini.parse_error(
        502, httpx.Headers(), b"<!DOCTYPE html><title>Error 502 (Server Error)</title>"
    )
    assert error.kind is ErrorKind.SERVER
    assert "Error 502" in error.message
    assert gemini.parse_error(504, httpx.Headers(), b"").kind is ErrorKind.TIMEOUT
    assert gemini.parse_error(404, httpx.Headers(), _body({"x": 1})).kind is ErrorKind.NOT_FOUND


def test_parse_error_accepts_an_error_wrapped_in_a_list():
    """An error body sent as a one-element JSON array is read like the bare object."""
    body = _body(
        [{"error": {"code": 429, "message": "Resource exhausted.", "status": "RESOURCE_EXHAUSTED"}}]
    )
    assert gemini.parse_error(429, httpx.Headers(), body).kind is ErrorKind.RATE_LIMITED


def test_stream_yields_deltas_then_the_whole_answer_with_the_last_usage():
    """Each data event is a GenerateContentResponse; usage comes from the last chunk that has it."""
    parser = gemini.stream_parser(httpx.Headers())
    first = _response(
        "The quick ", finish=None, usage={"promptTokenCount": 8, "totalTokenCount": 8}
    )
    second = _response("brown fox", finish=None, usage=False)
    last = _response(
        ".", usage={"promptTokenCount": 8, "candidatesTokenCount": 12, "totalTokenCount": 20}
    )
    assert _feed(parser, first, second, last) == ["The quick ", "brown fox", "."]
    result = parser.finish()
    assert result.text == "The quick brown fox."
    assert (result.usage.input_tokens, result.usage.output_tokens) == (8, 12)
    assert result.finish_reason == "stop"
    assert result.model == "gemini-2.5-flash"


def test_stream_raises_the_error_a_chunk_reports():
    """A chunk carrying an error object raises it as a ProviderError."""
    parser = gemini.stream_parser(httpx.Headers())
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    with pytest.raises(ProviderError) as caught:
        _feed(parser, _response("Hi", finish=None), error)
    assert caught.value.kind is ErrorKind.OVERLOADED


def test_stream_raises_malformed_for_unparsable_data():
    """A data event that is not a JSON object is MALFORMED_RESPONSE."""
    parser = gemini.stream_parser(httpx.Headers())
    with pytest.raises(ProviderError) as caught:
        parser.feed("", '{"candidates": [')
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_stream_without_a_finish_reason_is_malformed():
    """A stream in which no chunk gave a finishReason fails at finish()."""
    parser = gemini.stream_parser(httpx.Headers())
    _feed(parser, _response("Hi", finish=None))
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_stream_with_a_blocked_prompt_raises_content_filter():
    """A stream whose only chunk reports promptFeedback.blockReason raises CONTENT_FILTER."""
    parser = gemini.stream_parser(httpx.Headers())
    assert _feed(parser, {"promptFeedback": {"blockReason": "SAFETY"}}) == []
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.CONTENT_FILTER


def test_stream_ended_by_safety_with_no_text_raises_content_filter():
    """A stream whose finishReason is SAFETY and that gave no text raises CONTENT_FILTER."""
    parser = gemini.stream_parser(httpx.Headers())
    _feed(parser, {"candidates": [{"finishReason": "SAFETY", "index": 0}]})
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.CONTENT_FILTER


def test_rate_limits_is_always_empty():
    """Gemini sends no rate-limit headers, so the info is empty whatever the headers."""
    assert (
        gemini.rate_limits(httpx.Headers({"x-ratelimit-remaining-requests": "3"}))
        == RateLimitInfo()
    )


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "models/gemini-2.5-flash"])
def test_models_request_gets_the_model_with_or_without_prefix(model):
    """The start-up check is GET {base}/models/{model}, the key in a header and not the URL."""
    call = gemini.models_request(Endpoint(BASE, model, api_key=KEY))
    assert (call.method, call.url, call.json) == ("GET", f"{BASE}/models/gemini-2.5-flash", None)
    assert call.headers == (("x-goog-api-key", KEY),)


def test_check_models_passes_for_a_known_model():
    """A Model resource with a name means the check passed."""
    body = _body(
        {
            "name": "models/gemini-2.5-flash",
            "baseModelId": "gemini-2.5-flash",
            "version": "001",
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }
    )
    assert gemini.check_models(ENDPOINT, 200, httpx.Headers(), body) is None


def test_check_models_reports_an_unknown_model_as_not_found_naming_it():
    """A 404 is NOT_FOUND naming the model, the URL asked and the API's root."""
    body = _body(
        {
            "error": {
                "code": 404,
                "message": "models/gemini-9 is not found for API version v1beta",
                "status": "NOT_FOUND",
            }
        }
    )
    error = gemini.check_models(Endpoint(BASE, "gemini-9", KEY), 404, httpx.Headers(), body)
    assert error is not None
    assert error.kind is ErrorKind.NOT_FOUND
    assert f"GET {BASE}/models/gemini-9 answered 404" in error.message
    assert "that is https://generativelanguage.googleapis.com/v1beta" in error.message


def test_check_models_reports_an_invalid_key_as_auth():
    """A 400 API_KEY_INVALID answer to the check is AUTH."""
    body = _body(
        {
            "error": {
                "code": 400,
                "message": "API key not valid.",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                    }
                ],
            }
        }
    )
    error = gemini.check_models(ENDPOINT, 400, httpx.Headers(), body)
    assert error is not None
    assert error.kind is ErrorKind.AUTH


def test_check_models_reports_a_malformed_answer():
    """A 200 answer without a model name is MALFORMED_RESPONSE."""
    error = gemini.check_models(ENDPOINT, 200, httpx.Headers(), b"not json")
    assert error is not None
    assert error.kind is ErrorKind.MALFORMED_RESPONSE


def test_protocols_registry_holds_the_gemini_protocol():
    """PROTOCOLS["gemini"] is this module's protocol."""
    assert PROTOCOLS["gemini"] is gemini.PROTOCOL
    assert gemini.PROTOCOL.name == "gemini"
