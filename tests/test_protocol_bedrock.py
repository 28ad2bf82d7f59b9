import json
import subprocess
import sys

import httpx
import pytest

from runtime._chat import ChatRequest, EmbedRequest, ImagePart, Message, TextPart, Tuning, Usage
from runtime._errors import ErrorKind, ProviderError
from runtime.protocols import Endpoint
from runtime.protocols import _bedrock as bedrock
from runtime.protocols._aws_eventstream import EventStreamDecoder
from runtime.testing._bedrock import encode_message

pytestmark = pytest.mark.timeout(10)

BASE = "https://bedrock-runtime.us-west-2.amazonaws.com"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
ENDPOINT = Endpoint(base_url=BASE, model=MODEL)
KEYED = Endpoint(base_url=BASE, model=MODEL, api_key="bedrock-api-key-abc", auth="api-key")
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5Er"
    "kJggg=="
)
ERROR_TYPE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


def _request(*messages, **kwargs):
    return ChatRequest(messages=messages or (Message("user", "Hello"),), model=MODEL, **kwargs)


def _body(value) -> bytes:
    return json.dumps(value).encode()


def _answer(text="Hi there.", stop="end_turn", usage=None):
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": usage or {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16},
        "metrics": {"latencyMs": 402},
    }


def _error_headers(name):
    return httpx.Headers({"x-amzn-ErrorType": name + ERROR_TYPE})


def _feed(parser, events):
    deltas = []
    for name, payload in events:
        deltas.extend(parser.feed(name, json.dumps(payload)))
    return deltas


def _documented_stream(stop="end_turn"):
    return [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": ", world"}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": stop}),
        (
            "metadata",
            {
                "usage": {
                    "inputTokens": 10,
                    "outputTokens": 3,
                    "totalTokens": 113,
                    "cacheReadInputTokens": 100,
                },
                "metrics": {"latencyMs": 640},
            },
        ),
    ]


def _frame(message_type, name, payload=b"{}"):
    key = ":exception-type" if message_type == "exception" else ":event-type"
    headers = {key: name, ":content-type": "application/json", ":message-type": message_type}
    return encode_message(headers, payload)


# --- requests -------------------------------------------------------------------------------


def test_converse_url_leaves_the_colon_of_the_model_id_bare():
    """A chat posts to ``/model/{modelId}/converse`` with ``:`` unescaped, as it is sent."""
    call = bedrock.chat_request(ENDPOINT, _request(), False)
    assert call.method == "POST"
    assert call.url == f"{BASE}/model/{MODEL}/converse"
    assert not call.stream


def test_stream_goes_to_converse_stream():
    """A streamed chat posts to ``/converse-stream`` and is marked as a stream."""
    call = bedrock.chat_request(ENDPOINT, _request(), True)
    assert call.url == f"{BASE}/model/{MODEL}/converse-stream"
    assert call.stream


def test_an_arn_model_id_has_its_slash_escaped():
    """An inference profile ARN keeps its colons but escapes its slash as ``%2F``."""
    arn = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-v1:0"
    call = bedrock.chat_request(ENDPOINT, ChatRequest((Message("user", "Hi"),), arn), False)
    assert call.url == (
        f"{BASE}/model/arn:aws:bedrock:us-west-2:123456789012:inference-profile"
        "%2Fus.anthropic.claude-v1:0/converse"
    )


def test_body_holds_messages_as_text_blocks_and_system_apart():
    """Turns become text blocks; system text (given and from messages) goes to ``system``."""
    request = _request(
        Message("system", "Answer briefly."),
        Message("user", "Hello"),
        Message("assistant", "Hi!"),
        Message("user", "How are you?"),
        system="You are terse.",
    )
    body = bedrock.chat_request(ENDPOINT, request, False).json
    assert body == {
        "messages": [
            {"role": "user", "content": [{"text": "Hello"}]},
            {"role": "assistant", "content": [{"text": "Hi!"}]},
            {"role": "user", "content": [{"text": "How are you?"}]},
        ],
        "system": [{"text": "You are terse."}, {"text": "Answer briefly."}],
    }


def test_turns_of_one_role_in_a_row_are_one_turn():
    """Bedrock wants user and assistant to alternate, so two user messages go as one turn."""
    request = _request(Message("user", "Hello"), Message("user", "Are you there?"))
    body = bedrock.chat_request(ENDPOINT, request, False).json
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "Hello"}, {"text": "Are you there?"}]}
    ]


def test_tuning_goes_to_inference_config():
    """Max tokens, temperature, top-p and stop sequences use Converse's camelCase names."""
    tuning = Tuning(temperature=0.2, max_tokens=256, top_p=0.9, stop=("END", "\n\n"))
    body = bedrock.chat_request(ENDPOINT, _request(tuning=tuning), False).json
    assert body["inferenceConfig"] == {
        "maxTokens": 256,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END", "\n\n"],
    }


def test_unset_tuning_sends_no_inference_config():
    """Without tuning the body has no ``inferenceConfig`` and no ``system``."""
    body = bedrock.chat_request(ENDPOINT, _request(), False).json
    assert set(body) == {"messages"}


def test_cached_parts_are_followed_by_cache_points():
    """A cached part (text or image, in messages or system) is followed by a cachePoint."""
    request = _request(
        Message("system", (TextPart("Long instructions.", cache=True),)),
        Message(
            "user",
            (
                ImagePart(data=PNG, media_type="image/png", cache=True),
                TextPart("Describe it."),
            ),
        ),
    )
    body = bedrock.chat_request(ENDPOINT, request, False).json
    cache_point = {"cachePoint": {"type": "default"}}
    assert body["system"] == [{"text": "Long instructions."}, cache_point]
    assert body["messages"][0]["content"] == [
        {"image": {"format": "png", "source": {"bytes": PNG}}},
        cache_point,
        {"text": "Describe it."},
    ]


@pytest.mark.parametrize(
    ("media_type", "image_format"),
    [("image/png", "png"), ("image/jpeg", "jpeg"), ("image/gif", "gif"), ("image/webp", "webp")],
)
def test_inline_images_name_their_format(media_type, image_format):
    """Each image type Bedrock takes is sent with its short format name and base64 bytes."""
    part = ImagePart(data=PNG, media_type=media_type)
    body = bedrock.chat_request(ENDPOINT, _request(Message("user", (part,))), False).json
    assert body["messages"][0]["content"] == [
        {"image": {"format": image_format, "source": {"bytes": PNG}}}
    ]


def test_a_data_url_image_is_sent_inline():
    """An image given as a ``data:`` URL is unpacked into format and bytes."""
    part = ImagePart(url=f"data:image/jpeg;base64,{PNG}")
    body = bedrock.chat_request(ENDPOINT, _request(Message("user", (part,))), False).json
    assert body["messages"][0]["content"] == [
        {"image": {"format": "jpeg", "source": {"bytes": PNG}}}
    ]


def test_an_image_by_url_cannot_be_sent():
    """Bedrock cannot fetch images: a URL image is a bad request that says what to do."""
    part = ImagePart(url="https://example.com/cat.png")
    with pytest.raises(ProviderError) as caught:
        bedrock.chat_request(ENDPOINT, _request(Message("user", (part,))), False)
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert "cannot fetch images by URL" in caught.value.message


def test_an_image_format_bedrock_lacks_is_a_bad_request():
    """A TIFF (or any type outside png, jpeg, gif, webp) is refused before sending."""
    part = ImagePart(data=PNG, media_type="image/tiff")
    with pytest.raises(ProviderError) as caught:
        bedrock.chat_request(ENDPOINT, _request(Message("user", (part,))), False)
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert "image/tiff" in caught.value.message


def test_an_image_in_the_system_prompt_is_a_bad_request():
    """System content blocks hold no images, so a system image is refused."""
    part = ImagePart(data=PNG, media_type="image/png")
    with pytest.raises(ProviderError) as caught:
        bedrock.chat_request(ENDPOINT, _request(Message("system", (part,))), False)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_sigv4_requests_are_left_unsigned():
    """With the default (SigV4) auth the protocol adds no Authorization; the I/O layer signs."""
    call = bedrock.chat_request(ENDPOINT, _request(), False)
    assert dict(call.headers) == {"content-type": "application/json"}
    assert bedrock.uses_sigv4(ENDPOINT)
    assert bedrock.uses_sigv4(Endpoint(base_url=BASE, model=MODEL, auth="sigv4"))


def test_an_api_key_goes_in_a_bearer_header():
    """With ``auth = "api-key"`` the Bedrock API key is sent as ``Authorization: Bearer``."""
    call = bedrock.chat_request(KEYED, _request(), False)
    assert ("authorization", "Bearer bedrock-api-key-abc") in call.headers
    assert not bedrock.uses_sigv4(KEYED)
    assert "bedrock-api-key-abc" not in repr(call)


def test_extra_headers_are_sent():
    """Headers from the config are appended to every request."""
    endpoint = Endpoint(base_url=BASE, model=MODEL, extra_headers=(("x-team", "search"),))
    assert ("x-team", "search") in bedrock.chat_request(endpoint, _request(), False).headers


@pytest.mark.parametrize(
    ("base_url", "options", "region"),
    [
        ("https://bedrock-runtime.eu-central-1.amazonaws.com", (), "eu-central-1"),
        ("https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com", (), "us-gov-west-1"),
        ("https://bedrock-runtime.cn-north-1.amazonaws.com.cn", (), "cn-north-1"),
        (
            "https://bedrock-runtime.eu-west-1.amazonaws.com",
            (("region", "ap-south-1"),),
            "ap-south-1",
        ),
        ("http://127.0.0.1:8080", (), "us-east-1"),
    ],
)
def test_region_comes_from_the_option_else_the_host(base_url, options, region):
    """The region option wins; else the runtime host names it; else ``us-east-1``."""
    endpoint = Endpoint(base_url=base_url, model=MODEL, options=options)
    assert bedrock.region_of(endpoint) == region


@pytest.mark.parametrize(
    ("base_url", "control"),
    [
        (BASE, "https://bedrock.us-west-2.amazonaws.com"),
        (
            "https://bedrock-runtime-fips.us-east-1.amazonaws.com",
            "https://bedrock-fips.us-east-1.amazonaws.com",
        ),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_control_plane_is_the_bedrock_host_of_the_same_region(base_url, control):
    """AWS runtime hosts map to the ``bedrock.`` control plane; other bases serve both."""
    assert bedrock.control_url(Endpoint(base_url=base_url, model=MODEL)) == control


def test_protocol_declares_event_stream_framing_images_and_cache_points():
    """The protocol's flags: event-stream framing, images, cache points, lists and embeds."""
    protocol = bedrock.PROTOCOL
    assert protocol.name == "bedrock"
    assert protocol.framing == "aws-eventstream"
    assert protocol.images
    assert protocol.cache_points
    assert protocol.list_models is not None
    assert protocol.embed is not None


def test_importing_the_protocol_does_not_import_botocore():
    """``import runtime`` and the Bedrock protocol work without loading botocore."""
    code = (
        "import sys, runtime, runtime.protocols._bedrock, runtime._transport.aws; "
        "assert 'botocore' not in sys.modules, 'botocore was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=8)


# --- whole answers --------------------------------------------------------------------------


def test_a_converse_response_becomes_a_result():
    """Text, usage and the stop reason of a ConverseResponse are normalized."""
    result = bedrock.parse_chat(200, httpx.Headers(), _body(_answer()))
    assert result.text == "Hi there."
    assert result.usage == Usage(input_tokens=12, output_tokens=4)
    assert result.finish_reason == "stop"
    assert result.model == ""


def test_text_blocks_are_joined():
    """Several text blocks in the output message join into one text."""
    answer = _answer()
    answer["output"]["message"]["content"] = [{"text": "One. "}, {"text": "Two."}]
    assert bedrock.parse_chat(200, httpx.Headers(), _body(answer)).text == "One. Two."


def test_cache_reads_and_writes_count_as_input():
    """Bedrock counts cache tokens apart from inputTokens; ours include them, reads as cached."""
    usage = {
        "inputTokens": 10,
        "outputTokens": 5,
        "totalTokens": 1115,
        "cacheReadInputTokens": 1000,
        "cacheWriteInputTokens": 100,
    }
    result = bedrock.parse_chat(200, httpx.Headers(), _body(_answer(usage=usage)))
    assert result.usage == Usage(
        input_tokens=1110, output_tokens=5, cached_tokens=1000, cache_write_tokens=100
    )


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("content_filtered", "content_filter"),
        ("guardrail_intervened", "content_filter"),
        ("malformed_model_output", "malformed_model_output"),
    ],
)
def test_stop_reasons_are_normalized(stop, finish):
    """Each documented stopReason maps to callboard's finish reason."""
    result = bedrock.parse_chat(200, httpx.Headers(), _body(_answer(stop=stop)))
    assert result.finish_reason == finish


@pytest.mark.parametrize("stop", ["content_filtered", "guardrail_intervened"])
def test_a_filtered_answer_without_text_is_a_content_filter_failure(stop):
    """An empty answer stopped by a filter or a guardrail is a ``content_filter`` error."""
    with pytest.raises(ProviderError) as caught:
        bedrock.parse_chat(200, httpx.Headers(), _body(_answer(text="", stop=stop)))
    assert caught.value.kind is ErrorKind.CONTENT_FILTER
    assert caught.value.code == stop


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", _body({"output": {}}), _body({"output": {"message": {"content": 3}}})],
)
def test_an_answer_without_the_documented_shape_is_malformed(body):
    """A 200 whose body is not a ConverseResponse is ``malformed_response``."""
    with pytest.raises(ProviderError) as caught:
        bedrock.parse_chat(200, httpx.Headers(), body)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_an_error_status_raises_the_mapped_error():
    """``parse_chat`` given an error status raises what ``parse_error`` returns."""
    body = _body({"message": "Too many requests, please wait before trying again."})
    with pytest.raises(ProviderError) as caught:
        bedrock.parse_chat(429, _error_headers("ThrottlingException"), body)
    assert caught.value.kind is ErrorKind.RATE_LIMITED


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "kind"),
    [
        ("ThrottlingException", 429, ErrorKind.RATE_LIMITED),
        ("ServiceQuotaExceededException", 400, ErrorKind.RATE_LIMITED),
        ("AccessDeniedException", 403, ErrorKind.PERMISSION),
        ("UnrecognizedClientException", 403, ErrorKind.AUTH),
        ("ExpiredTokenException", 403, ErrorKind.AUTH),
        ("InvalidSignatureException", 403, ErrorKind.AUTH),
        ("IncompleteSignatureException", 403, ErrorKind.AUTH),
        ("MissingAuthenticationTokenException", 403, ErrorKind.AUTH),
        ("ValidationException", 400, ErrorKind.BAD_REQUEST),
        ("ResourceNotFoundException", 404, ErrorKind.NOT_FOUND),
        ("ModelTimeoutException", 408, ErrorKind.TIMEOUT),
        ("ModelNotReadyException", 429, ErrorKind.OVERLOADED),
        ("ServiceUnavailableException", 503, ErrorKind.OVERLOADED),
        ("InternalServerException", 500, ErrorKind.SERVER),
        ("ModelErrorException", 424, ErrorKind.SERVER),
    ],
)
def test_exception_names_map_to_error_kinds(name, status, kind):
    """The ``x-amzn-ErrorType`` exception name decides the kind, not the status alone."""
    body = _body({"message": f"{name} happened."})
    error = bedrock.parse_error(status, _error_headers(name), body)
    assert error.kind is kind
    assert (error.status, error.code, error.message) == (status, name, f"{name} happened.")


def test_an_invalid_model_identifier_is_not_found():
    """Bedrock's 400 for an unknown model id reads as ``not_found``, so routing falls back."""
    body = _body({"message": "The provided model identifier is invalid."})
    error = bedrock.parse_error(400, _error_headers("ValidationException"), body)
    assert error.kind is ErrorKind.NOT_FOUND


@pytest.mark.parametrize(
    "body",
    [
        {"__type": "com.amazon.coral.service#UnrecognizedClientException", "message": "bad"},
        {"code": "UnrecognizedClientException", "Message": "bad"},
    ],
)
def test_the_exception_name_may_come_in_the_body(body):
    """Without the header, ``__type`` (after its ``#``) or ``code`` names the exception."""
    error = bedrock.parse_error(403, httpx.Headers(), _body(body))
    assert (error.kind, error.code, error.message) == (
        ErrorKind.AUTH,
        "UnrecognizedClientException",
        "bad",
    )


def test_an_unknown_exception_falls_back_on_the_status():
    """An exception name callboard does not know is judged by its HTTP status."""
    error = bedrock.parse_error(503, _error_headers("BrandNewException"), _body({"message": "x"}))
    assert error.kind is ErrorKind.OVERLOADED


def test_a_non_json_error_without_a_name_describes_the_body():
    """A proxy's HTML page is reported by status with a snippet of the page."""
    error = bedrock.parse_error(502, httpx.Headers(), b"<html>502 Bad Gateway</html>")
    assert error.kind is ErrorKind.SERVER
    assert "non-JSON error body" in error.message


def test_a_named_error_with_an_empty_body_still_maps():
    """An error with the header but no body keeps its kind and says it had no message."""
    error = bedrock.parse_error(429, _error_headers("ThrottlingException"), b"")
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.message == "ThrottlingException with no message"


def test_retry_after_is_honoured_when_present():
    """A ``retry-after`` header (sent by proxies, not Bedrock) becomes the wait."""
    headers = httpx.Headers({"x-amzn-ErrorType": "ThrottlingException", "retry-after": "7"})
    error = bedrock.parse_error(429, headers, _body({"message": "slow down"}))
    assert error.retry_after_s == 7.0


# --- streams --------------------------------------------------------------------------------


def test_a_documented_stream_yields_deltas_then_the_result():
    """Deltas come out as fed; the result has the text, cached usage and finish reason."""
    parser = bedrock.stream_parser(httpx.Headers())
    assert _feed(parser, _documented_stream()) == ["Hello", ", world"]
    result = parser.finish()
    assert result.text == "Hello, world"
    assert result.usage == Usage(input_tokens=110, output_tokens=3, cached_tokens=100)
    assert result.finish_reason == "stop"


def test_unknown_events_and_padding_are_ignored():
    """Events and fields a later API version adds (and Bedrock's ``p`` padding) are skipped."""
    parser = bedrock.stream_parser(httpx.Headers())
    events = [
        ("messageStart", {"role": "assistant", "p": "abcdef"}),
        ("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {}}}),
        ("somethingNew", {"x": 1}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {}}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "ok"}, "p": "ab"}),
        ("messageStop", {"stopReason": "max_tokens"}),
    ]
    assert _feed(parser, events) == ["ok"]
    result = parser.finish()
    assert (result.text, result.finish_reason, result.usage) == ("ok", "length", Usage())


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("throttlingException", ErrorKind.RATE_LIMITED),
        ("modelStreamErrorException", ErrorKind.SERVER),
        ("internalServerException", ErrorKind.SERVER),
        ("validationException", ErrorKind.BAD_REQUEST),
        ("serviceUnavailableException", ErrorKind.OVERLOADED),
        ("modelTimeoutException", ErrorKind.TIMEOUT),
        ("InternalFailure", ErrorKind.SERVER),
        ("SomeNewException", ErrorKind.SERVER),
    ],
)
def test_an_exception_message_mid_stream_raises(name, kind):
    """An exception message after some text raises its kind, with the exception's message."""
    parser = bedrock.stream_parser(httpx.Headers())
    _feed(parser, _documented_stream()[:2])
    with pytest.raises(ProviderError) as caught:
        parser.feed(name, json.dumps({"message": "Something went wrong."}))
    assert caught.value.kind is kind
    assert caught.value.message == "Something went wrong."
    assert caught.value.code == name[0].upper() + name[1:]


def test_a_stream_cut_before_message_stop_is_malformed():
    """A stream that ends before ``messageStop`` cannot be taken as a whole answer."""
    parser = bedrock.stream_parser(httpx.Headers())
    _feed(parser, _documented_stream()[:3])
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_a_filtered_stream_without_text_is_a_content_filter_failure():
    """A stream that stops with ``guardrail_intervened`` and no text is ``content_filter``."""
    parser = bedrock.stream_parser(httpx.Headers())
    _feed(parser, [("messageStart", {"role": "assistant"})])
    _feed(parser, [("messageStop", {"stopReason": "guardrail_intervened"})])
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.CONTENT_FILTER


def test_an_event_that_is_not_json_is_malformed():
    """A payload that is not a JSON object is ``malformed_response``."""
    parser = bedrock.stream_parser(httpx.Headers())
    with pytest.raises(ProviderError) as caught:
        parser.feed("contentBlockDelta", "not json")
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


# --- event-stream decoding ------------------------------------------------------------------


def test_decoding_names_events_by_event_type():
    """Events are named by ``:event-type`` and carry their payload as text."""
    frames = _frame("event", "messageStart", b'{"role":"assistant"}') + _frame(
        "event", "messageStop", b'{"stopReason":"end_turn"}'
    )
    assert list(bedrock.decode_event_stream([frames])) == [
        ("messageStart", '{"role":"assistant"}'),
        ("messageStop", '{"stopReason":"end_turn"}'),
    ]


def test_decoding_names_exceptions_by_exception_type():
    """An exception message is named by ``:exception-type``."""
    frame = _frame("exception", "throttlingException", b'{"message":"slow down"}')
    assert list(bedrock.decode_event_stream([frame])) == [
        ("throttlingException", '{"message":"slow down"}')
    ]


def test_decoding_turns_error_messages_into_a_named_json_message():
    """An ``error`` message is named by ``:error-code``; its ``:error-message`` becomes JSON."""
    headers = {
        ":message-type": "error",
        ":error-code": "InternalFailure",
        ":error-message": "It broke.",
    }
    frames = list(bedrock.decode_event_stream([encode_message(headers, b"")]))
    assert frames == [("InternalFailure", json.dumps({"message": "It broke."}))]


def test_decoding_reassembles_messages_split_across_chunks():
    """Messages split at every byte still decode whole and in order."""
    data = b"".join(
        _frame("event", "contentBlockDelta", json.dumps({"delta": {"text": t}}).encode())
        for t in ("a", "b", "c")
    )
    decoder = EventStreamDecoder()
    frames = [frame for i in range(len(data)) for frame in decoder.feed(data[i : i + 1])]
    assert [json.loads(payload)["delta"]["text"] for _, payload in frames] == ["a", "b", "c"]


@pytest.mark.parametrize("position", [5, 20, -2])
def test_a_corrupted_message_is_malformed(position):
    """A flipped byte in the prelude, headers or message CRC fails its checksum."""
    data = bytearray(_frame("event", "messageStart", b'{"role":"assistant"}'))
    data[position] ^= 0xFF
    with pytest.raises(ProviderError) as caught:
        list(bedrock.decode_event_stream([bytes(data)]))
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_a_payload_that_is_not_utf8_is_malformed():
    """A payload that is not UTF-8 cannot be fed as text."""
    with pytest.raises(ProviderError) as caught:
        list(bedrock.decode_event_stream([_frame("event", "messageStart", b"\xff\xfe")]))
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_decoding_needs_no_botocore(monkeypatch):
    """The decoder is callboard's own: a Bedrock API key needs no extra to stream."""
    monkeypatch.setitem(sys.modules, "botocore.eventstream", None)
    frame = _frame("event", "messageStop", b'{"stopReason":"end_turn"}')
    assert EventStreamDecoder().feed(frame) == [("messageStop", '{"stopReason":"end_turn"}')]


# --- models ---------------------------------------------------------------------------------

LISTED = {
    "modelSummaries": [
        {"modelArn": "arn:aws:bedrock:us-west-2::foundation-model/" + m, "modelId": m}
        for m in (MODEL, "amazon.nova-pro-v1:0", "cohere.embed-v4:0")
    ]
}


def test_models_request_lists_foundation_models_on_the_control_plane():
    """The check reads ``GET /foundation-models`` on ``bedrock.{region}``, key sent if any."""
    call = bedrock.models_request(KEYED)
    assert (call.method, call.url) == (
        "GET",
        "https://bedrock.us-west-2.amazonaws.com/foundation-models",
    )
    assert ("authorization", "Bearer bedrock-api-key-abc") in call.headers
    assert dict(bedrock.models_request(ENDPOINT).headers) == {}


def test_listed_models_are_their_model_ids():
    """The model list is ``modelSummaries[].modelId``."""
    assert bedrock.parse_models(200, httpx.Headers(), _body(LISTED)) == [
        MODEL,
        "amazon.nova-pro-v1:0",
        "cohere.embed-v4:0",
    ]


@pytest.mark.parametrize(
    "model",
    [
        MODEL,
        f"us.{MODEL}",
        f"eu.{MODEL}",
        f"arn:aws:bedrock:us-west-2::foundation-model/{MODEL}",
        "arn:aws:bedrock:us-west-2:123456789012:application-inference-profile/abc123",
    ],
)
def test_a_listed_model_or_its_inference_profile_passes_the_check(model):
    """A listed id, an inference profile of one, or an ARN that cannot be listed passes."""
    endpoint = Endpoint(base_url=BASE, model=model)
    assert bedrock.check_models(endpoint, 200, httpx.Headers(), _body(LISTED)) is None


def test_an_unlisted_model_is_not_found_with_close_matches():
    """A model Bedrock does not list is ``not_found``, naming the region and close ids."""
    endpoint = Endpoint(base_url=BASE, model="amazon.nova-pro-v2:0")
    error = bedrock.check_models(endpoint, 200, httpx.Headers(), _body(LISTED))
    assert error is not None
    assert error.kind is ErrorKind.NOT_FOUND
    assert "us-west-2" in error.message
    assert "amazon.nova-pro-v1:0" in error.message


def test_a_rejected_check_reports_the_error():
    """An error answer to the check (credentials refused) is returned as its kind."""
    body = _body({"message": "The security token included in the request is invalid."})
    error = bedrock.check_models(ENDPOINT, 403, _error_headers("UnrecognizedClientException"), body)
    assert error is not None
    assert error.kind is ErrorKind.AUTH


def test_a_model_list_without_summaries_is_malformed():
    """A 200 without ``modelSummaries`` is ``malformed_response``."""
    error = bedrock.check_models(ENDPOINT, 200, httpx.Headers(), _body({"models": []}))
    assert error is not None
    assert error.kind is ErrorKind.MALFORMED_RESPONSE


# --- embeddings -----------------------------------------------------------------------------


def test_embeddings_invoke_a_cohere_model_with_every_text():
    """Embeddings post all texts to ``/invoke``, asking for float vectors."""
    request = EmbedRequest(texts=("a", "b"), model="cohere.embed-english-v3", input_type="query")
    call = bedrock.embed_request(KEYED, request)
    assert call.url == f"{BASE}/model/cohere.embed-english-v3/invoke"
    assert call.json == {
        "texts": ["a", "b"],
        "input_type": "search_query",
        "embedding_types": ["float"],
    }
    assert ("authorization", "Bearer bedrock-api-key-abc") in call.headers


def test_embeddings_default_to_documents_and_pass_dimensions():
    """Without an input type texts embed as documents; dimensions become ``output_dimension``."""
    request = EmbedRequest(texts=("a",), model="cohere.embed-v4:0", dimensions=256)
    body = bedrock.embed_request(ENDPOINT, request).json
    assert body["input_type"] == "search_document"
    assert body["output_dimension"] == 256


def test_titan_embeddings_are_refused_with_advice():
    """Titan takes one text a call, so it is refused, pointing at Cohere models."""
    request = EmbedRequest(texts=("a", "b"), model="amazon.titan-embed-text-v2:0")
    with pytest.raises(ProviderError) as caught:
        bedrock.embed_request(ENDPOINT, request)
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert "cohere" in caught.value.message.lower()


def test_more_texts_than_cohere_takes_are_refused():
    """More than 96 texts in one call is a bad request before sending."""
    request = EmbedRequest(texts=("x",) * 97, model="cohere.embed-v4:0")
    with pytest.raises(ProviderError) as caught:
        bedrock.embed_request(ENDPOINT, request)
    assert caught.value.kind is ErrorKind.BAD_REQUEST


@pytest.mark.parametrize(
    "embeddings", [[[0.1, 0.2], [0.3, 0.4]], {"float": [[0.1, 0.2], [0.3, 0.4]]}]
)
def test_embeddings_parse_either_response_shape(embeddings):
    """Vectors come as a list (Embed v3 floats) or by type (``{"float": ...}``), in order."""
    headers = httpx.Headers({"X-Amzn-Bedrock-Input-Token-Count": "6"})
    body = _body({"id": "e1", "embeddings": embeddings, "texts": ["a", "b"]})
    result = bedrock.parse_embeddings(200, headers, body)
    assert result.vectors == ((0.1, 0.2), (0.3, 0.4))
    assert result.usage == Usage(input_tokens=6)


def test_embeddings_without_vectors_are_malformed():
    """An embeddings answer without float vectors is ``malformed_response``."""
    with pytest.raises(ProviderError) as caught:
        bedrock.parse_embeddings(200, httpx.Headers(), _body({"embeddings": {"int8": [[1]]}}))
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_an_embeddings_error_is_mapped():
    """An error answer to embeddings raises its mapped kind."""
    with pytest.raises(ProviderError) as caught:
        bedrock.parse_embeddings(
            403, _error_headers("AccessDeniedException"), _body({"message": "no"})
        )
    assert caught.value.kind is ErrorKind.PERMISSION
