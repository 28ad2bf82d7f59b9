import json

import httpx
import pytest

from runtime._chat import ChatRequest, EmbedRequest, Message, Tuning
from runtime._errors import ErrorKind, ProviderError
from runtime.protocols import Endpoint
from runtime.protocols import _azure as azure

pytestmark = pytest.mark.timeout(10)

BASE = "https://contoso.openai.azure.com"
OPTIONS = (("api_version", "2024-10-21"), ("deployment", "chat-prod"))
ENDPOINT = Endpoint(BASE, "gpt-4o", api_key="azure-key-0123456789", options=OPTIONS)
SAFE = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
VIOLENT = {**SAFE, "violence": {"filtered": True, "severity": "medium"}}


def _request(**kwargs):
    defaults = {"messages": (Message("user", "Hello!"),), "model": "gpt-4o"}
    return ChatRequest(**(defaults | kwargs))


def _endpoint(**kwargs):
    defaults = {"base_url": BASE, "model": "gpt-4o", "api_key": "k", "options": OPTIONS}
    return Endpoint(**(defaults | kwargs))


def _body(value) -> bytes:
    return json.dumps(value).encode()


def _completion(content="Hi there.", finish="stop", verdicts=SAFE):
    return {
        "choices": [
            {
                "content_filter_results": verdicts,
                "finish_reason": finish,
                "index": 0,
                "logprobs": None,
                "message": {"content": content, "refusal": None, "role": "assistant"},
            }
        ],
        "created": 1741569952,
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "model": "gpt-4o-2024-08-06",
        "object": "chat.completion",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": SAFE}],
        "system_fingerprint": "fp_b705f0c291",
        "usage": {
            "completion_tokens": 10,
            "prompt_tokens": 19,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }


def _chunk(delta=None, finish=None, *, verdicts=None, choices=None, usage=None):
    if choices is None:
        choice = {"delta": delta or {}, "finish_reason": finish, "index": 0, "logprobs": None}
        choice["content_filter_results"] = {} if verdicts is None else verdicts
        choices = [choice]
    chunk = {
        "choices": choices,
        "created": 1741569952,
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "model": "gpt-4o-2024-08-06",
        "object": "chat.completion.chunk",
        "system_fingerprint": "fp_b705f0c291",
    }
    if usage is not None:
        chunk["usage"] = usage
    return json.dumps(chunk, separators=(",", ":"))


FIRST_CHUNK = json.dumps(
    {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": SAFE}],
    },
    separators=(",", ":"),
)


def _feed(parser, *datas):
    deltas = []
    for data in datas:
        deltas.extend(parser.feed("", data))
    return deltas


def _error(status, error, headers=None):
    return azure.parse_error(status, httpx.Headers(headers or {}), _body({"error": error}))


def test_chat_request_posts_to_the_deployment_with_the_api_version():
    """The chat goes to {base}/openai/deployments/{deployment}/chat/completions?api-version=."""
    call = azure.chat_request(ENDPOINT, _request(), stream=False)
    assert call.method == "POST"
    assert call.url == (
        f"{BASE}/openai/deployments/chat-prod/chat/completions?api-version=2024-10-21"
    )
    assert call.stream is False


def test_chat_request_sends_openais_body_with_the_system_prompt_leading():
    """The body is OpenAI's: model, the system prompt first, then the turns and the tuning."""
    tuning = Tuning(temperature=0.2, max_tokens=64)
    request = _request(system="Be brief.", tuning=tuning)
    body = azure.chat_request(ENDPOINT, request, stream=False).json
    assert body == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello!"},
        ],
        "temperature": 0.2,
        "max_tokens": 64,
    }


def test_chat_request_defaults_the_deployment_to_the_model_and_the_version_to_ga():
    """Without options the deployment is the request's model and the api-version 2024-10-21."""
    call = azure.chat_request(_endpoint(options=()), _request(model="gpt-4o-mini"), False)
    assert (
        call.url == f"{BASE}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    )


@pytest.mark.parametrize("base", [f"{BASE}/", f"{BASE}/openai", f"{BASE}/openai/"])
def test_chat_request_tolerates_a_trailing_slash_or_openai_path_on_the_base(base):
    """A base URL given with a trailing slash or the /openai path still yields one /openai."""
    call = azure.chat_request(_endpoint(base_url=base), _request(), stream=False)
    assert call.url.startswith(f"{BASE}/openai/deployments/chat-prod/")


def test_chat_request_escapes_the_deployment_name():
    """A deployment name with URL-special characters is escaped in the path."""
    options = (("deployment", "my dep/1"),)
    call = azure.chat_request(_endpoint(options=options), _request(), stream=False)
    assert "/openai/deployments/my%20dep%2F1/chat/completions?" in call.url


@pytest.mark.parametrize("auth", ["default", "api-key"])
def test_chat_request_sends_the_key_in_the_api_key_header(auth):
    """By default (and with auth "api-key") the key goes in Azure's api-key header."""
    endpoint = _endpoint(api_key="secret-key", auth=auth, extra_headers=(("x-ms-useragent", "cb"),))
    headers = azure.chat_request(endpoint, _request(), stream=False).headers
    assert headers == (
        ("api-key", "secret-key"),
        ("content-type", "application/json"),
        ("x-ms-useragent", "cb"),
    )


@pytest.mark.parametrize("auth", ["entra", "bearer"])
def test_chat_request_sends_an_entra_token_as_bearer(auth):
    """With auth "entra" the api_key holds a Microsoft Entra ID token, sent as Bearer."""
    call = azure.chat_request(_endpoint(api_key="eyJtoken", auth=auth), _request(), False)
    assert call.headers == (
        ("authorization", "Bearer eyJtoken"),
        ("content-type", "application/json"),
    )


@pytest.mark.parametrize("endpoint", [_endpoint(api_key=None), _endpoint(auth="none")])
def test_chat_request_sends_no_credentials_without_a_key_or_with_auth_none(endpoint):
    """No key, or auth "none", means neither api-key nor authorization is sent."""
    headers = azure.chat_request(endpoint, _request(), stream=False).headers
    assert [name for name, _ in headers] == ["content-type"]


def test_streamed_chat_request_asks_for_usage_from_2024_09_01_preview_on():
    """A stream asks for stream_options.include_usage where the api-version takes it."""
    for version in ("2024-10-21", "2024-09-01-preview", "2025-04-01-preview", "preview"):
        endpoint = _endpoint(options=(("api_version", version),))
        call = azure.chat_request(endpoint, _request(), stream=True)
        assert call.stream is True
        assert call.json["stream"] is True
        assert call.json["stream_options"] == {"include_usage": True}, version


def test_streamed_chat_request_leaves_out_stream_options_for_older_versions():
    """Older api-versions refuse stream_options, so it is not sent to them."""
    for version in ("2024-06-01", "2024-08-01-preview", "2023-05-15"):
        endpoint = _endpoint(options=(("api_version", version),))
        call = azure.chat_request(endpoint, _request(), stream=True)
        assert call.json["stream"] is True
        assert "stream_options" not in call.json, version


def test_parse_chat_reads_the_answer_and_remaining_limits_without_resets():
    """A whole answer becomes a ChatResult; remaining requests/tokens are read, resets stay None."""
    headers = httpx.Headers(
        {"x-ratelimit-remaining-requests": "59", "x-ratelimit-remaining-tokens": "79000"}
    )
    result = azure.parse_chat(200, headers, _body(_completion()))
    assert result.text == "Hi there."
    assert result.model == "gpt-4o-2024-08-06"
    assert result.usage.to_dict() == {"input_tokens": 19, "output_tokens": 10, "cached_tokens": 0}
    assert result.finish_reason == "stop"
    assert result.rate_limits.remaining_requests == 59
    assert result.rate_limits.remaining_tokens == 79000
    assert result.rate_limits.reset_requests_s is None
    assert result.rate_limits.reset_tokens_s is None


def test_parse_chat_names_the_categories_of_a_filtered_answer():
    """finish_reason content_filter with no content is CONTENT_FILTER naming what was flagged."""
    body = _body(_completion(content=None, finish="content_filter", verdicts=VIOLENT))
    with pytest.raises(ProviderError) as caught:
        azure.parse_chat(200, httpx.Headers(), body)
    assert caught.value.kind is ErrorKind.CONTENT_FILTER
    assert "violence (medium)" in caught.value.message


def test_parse_chat_keeps_text_cut_short_by_the_content_filter():
    """Text that came before the filter stopped the answer is returned, finish content_filter."""
    body = _body(_completion(content="Part", finish="content_filter", verdicts=VIOLENT))
    result = azure.parse_chat(200, httpx.Headers(), body)
    assert (result.text, result.finish_reason) == ("Part", "content_filter")


def test_parse_chat_raises_the_azure_error_of_an_error_status():
    """An error status handed to parse_chat is read as Azure's error."""
    body = _body({"error": {"code": "DeploymentNotFound", "message": "The API deployment..."}})
    with pytest.raises(ProviderError) as caught:
        azure.parse_chat(404, httpx.Headers(), body)
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert caught.value.code == "DeploymentNotFound"


def test_stream_skips_the_empty_choices_first_chunk_and_reads_usage():
    """A stream whose first chunk has only prompt_filter_results yields the text and usage."""
    headers = httpx.Headers({"x-ratelimit-remaining-requests": "7"})
    parser = azure.stream_parser(headers)
    deltas = _feed(
        parser,
        FIRST_CHUNK,
        _chunk({"content": "", "role": "assistant", "refusal": None}),
        _chunk({"content": "Hel"}, verdicts=SAFE),
        _chunk({"content": "lo."}, verdicts=SAFE),
        _chunk({}, "stop", verdicts=SAFE),
        _chunk(choices=[], usage={"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}),
        "[DONE]",
    )
    assert deltas == ["Hel", "lo."]
    result = parser.finish()
    assert result.text == "Hello."
    assert result.model == "gpt-4o-2024-08-06"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (9, 3)
    assert result.finish_reason == "stop"
    assert result.rate_limits.remaining_requests == 7


def test_stream_filtered_before_any_text_is_a_content_filter_error():
    """A stream that ends with content_filter and no text raises CONTENT_FILTER with categories."""
    parser = azure.stream_parser(httpx.Headers())
    _feed(parser, FIRST_CHUNK, _chunk({}, "content_filter", verdicts=VIOLENT), "[DONE]")
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.CONTENT_FILTER
    assert "violence (medium)" in caught.value.message


def test_stream_cut_by_the_filter_keeps_its_text():
    """Text streamed before the filter stopped the answer is the result, finish content_filter."""
    parser = azure.stream_parser(httpx.Headers())
    _feed(
        parser,
        FIRST_CHUNK,
        _chunk({"content": "Once"}, verdicts=SAFE),
        _chunk({}, "content_filter", verdicts=VIOLENT),
        "[DONE]",
    )
    result = parser.finish()
    assert (result.text, result.finish_reason) == ("Once", "content_filter")


def test_stream_error_chunk_is_read_with_azures_codes():
    """An error event mid-stream becomes a ProviderError of the kind its Azure code means."""
    parser = azure.stream_parser(httpx.Headers())
    _feed(parser, FIRST_CHUNK, _chunk({"content": "Hi"}))
    error = json.dumps({"error": {"code": "429", "message": "Please retry after 3 seconds."}})
    with pytest.raises(ProviderError) as caught:
        parser.feed("", error)
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert caught.value.retry_after_s == 3.0


def test_stream_that_ends_without_finishing_is_malformed():
    """A stream cut off before a finish_reason or [DONE] is a malformed answer."""
    parser = azure.stream_parser(httpx.Headers())
    _feed(parser, FIRST_CHUNK, _chunk({"content": "Hi"}))
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_deployment_not_found_is_not_found_and_points_at_the_deployment_option():
    """DeploymentNotFound is NOT_FOUND whose message says to check the deployment option."""
    error = _error(
        404,
        {
            "code": "DeploymentNotFound",
            "message": "The API deployment for this resource does not exist. If you created "
            "the deployment within the last 5 minutes, please wait a moment and try again.",
        },
    )
    assert error.kind is ErrorKind.NOT_FOUND
    assert error.code == "DeploymentNotFound"
    assert "`deployment`" in error.message
    assert "does not exist" in error.message


def test_content_filter_error_names_the_flagged_categories():
    """A 400 content_filter (ResponsibleAIPolicyViolation) is CONTENT_FILTER naming categories."""
    error = _error(
        400,
        {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
            "content management policy.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    **VIOLENT,
                    "jailbreak": {"filtered": False, "detected": False},
                },
            },
        },
    )
    assert error.kind is ErrorKind.CONTENT_FILTER
    assert error.code == "content_filter"
    assert error.message.endswith("(flagged: violence (medium))")


def test_responsible_ai_inner_code_alone_is_a_content_filter():
    """An innererror ResponsibleAIPolicyViolation under another code still means CONTENT_FILTER."""
    error = _error(
        400, {"code": "400", "message": "x", "innererror": {"code": "ResponsibleAIPolicyViolation"}}
    )
    assert error.kind is ErrorKind.CONTENT_FILTER


def test_invalid_key_is_auth():
    """Azure's 401 for a wrong key is AUTH."""
    error = _error(
        401,
        {
            "code": "401",
            "message": "Access denied due to invalid subscription key or wrong API endpoint.",
        },
    )
    assert error.kind is ErrorKind.AUTH
    assert error.status == 401


def test_rejected_entra_token_from_the_gateway_is_auth():
    """The gateway's {"statusCode": 401, "message"} for a bad Entra token is AUTH."""
    body = _body(
        {
            "statusCode": 401,
            "message": "Unauthorized. Access token is missing, invalid, audience is incorrect "
            "(https://cognitiveservices.azure.com), or have expired.",
        }
    )
    error = azure.parse_error(401, httpx.Headers(), body)
    assert error.kind is ErrorKind.AUTH
    assert "Access token is missing" in error.message


def test_invalid_authentication_token_code_is_auth():
    """The InvalidAuthenticationToken code is AUTH whatever the status."""
    assert (
        _error(400, {"code": "InvalidAuthenticationToken", "message": "x"}).kind is ErrorKind.AUTH
    )


def test_permission_denied_is_permission_even_as_401():
    """An Entra identity without a role (PermissionDenied, HTTP 401) is PERMISSION."""
    error = _error(
        401,
        {"code": "PermissionDenied", "message": "Principal does not have access to API/Operation."},
    )
    assert error.kind is ErrorKind.PERMISSION


def test_throttled_prefers_retry_after_ms():
    """A 429 takes its wait from retry-after-ms before retry-after."""
    headers = {"retry-after-ms": "1500", "retry-after": "2"}
    error = _error(
        429, {"code": "429", "message": "Requests ... Please retry after 2 seconds."}, headers
    )
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.retry_after_s == 1.5


def test_throttled_reads_retry_after():
    """Without retry-after-ms a 429 takes its wait from retry-after."""
    error = _error(429, {"code": "429", "message": "Too many."}, {"retry-after": "7"})
    assert error.retry_after_s == 7.0


def test_throttled_without_headers_reads_the_wait_in_its_message():
    """A 429 with no wait header takes it from "Please retry after N seconds"."""
    message = (
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        "2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
        "Please retry after 6 seconds."
    )
    error = _error(429, {"code": "429", "message": message})
    assert error.retry_after_s == 6.0


def test_gateway_throttle_reads_try_again_in():
    """The gateway's {"statusCode": 429} says "Try again in 30 seconds": that is the wait."""
    body = _body({"statusCode": 429, "message": "Rate limit is exceeded. Try again in 30 seconds."})
    error = azure.parse_error(429, httpx.Headers(), body)
    assert (error.kind, error.retry_after_s) == (ErrorKind.RATE_LIMITED, 30.0)


def test_resource_not_found_hints_at_base_url_and_api_version():
    """Azure's 404 "Resource not found" (wrong path or api-version) says what to check."""
    error = _error(404, {"code": "404", "message": "Resource not found"})
    assert error.kind is ErrorKind.NOT_FOUND
    assert "api_version" in error.message


def test_operation_not_supported_is_a_bad_request():
    """Chatting with an embeddings deployment (OperationNotSupported) is BAD_REQUEST."""
    error = _error(
        400,
        {
            "code": "OperationNotSupported",
            "message": "The chatCompletion operation does not work with the specified model",
        },
    )
    assert error.kind is ErrorKind.BAD_REQUEST


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.BAD_REQUEST),
        (401, ErrorKind.AUTH),
        (403, ErrorKind.PERMISSION),
        (408, ErrorKind.TIMEOUT),
        (429, ErrorKind.RATE_LIMITED),
        (500, ErrorKind.SERVER),
        (503, ErrorKind.OVERLOADED),
        (504, ErrorKind.TIMEOUT),
    ],
)
def test_unknown_codes_fall_back_to_the_status(status, kind):
    """A code Azure has not documented is read by its HTTP status."""
    error = _error(status, {"code": "SomethingNew", "message": "It went wrong."})
    assert error.kind is kind
    assert error.code == "SomethingNew"


def test_non_json_error_body_is_read_by_status():
    """A proxy's HTML page is read by its status, its start quoted."""
    error = azure.parse_error(502, httpx.Headers(), b"<html>Bad Gateway</html>")
    assert error.kind is ErrorKind.SERVER
    assert "Bad Gateway" in error.message


def test_models_request_lists_models_with_the_key():
    """The start-up check is GET /openai/models?api-version= with the api-key and no body."""
    call = azure.models_request(ENDPOINT)
    assert (call.method, call.url) == ("GET", f"{BASE}/openai/models?api-version=2024-10-21")
    assert call.headers == (("api-key", "azure-key-0123456789"),)
    assert call.json is None


def test_check_models_accepts_any_model_list():
    """A 200 list proves the key: the deployment itself is checked by the first call."""
    body = _body({"data": [{"id": "gpt-4o-2024-08-06", "object": "model"}], "object": "list"})
    assert azure.check_models(ENDPOINT, 200, httpx.Headers(), body) is None


def test_check_models_reports_a_rejected_key():
    """A 401 from the model list is AUTH."""
    body = _body({"error": {"code": "401", "message": "Access denied"}})
    error = azure.check_models(ENDPOINT, 401, httpx.Headers(), body)
    assert error is not None
    assert error.kind is ErrorKind.AUTH


def test_check_models_names_the_api_version_when_the_api_is_not_found():
    """A 404 from the model list says the base URL has no API for the api-version."""
    body = _body({"error": {"code": "404", "message": "Resource not found"}})
    error = azure.check_models(ENDPOINT, 404, httpx.Headers(), body)
    assert error is not None
    assert error.kind is ErrorKind.NOT_FOUND
    assert "2024-10-21" in error.message
    assert BASE in error.message


def test_check_models_refuses_a_list_of_another_shape():
    """A 200 that is not a model list is a malformed answer."""
    error = azure.check_models(ENDPOINT, 200, httpx.Headers(), b"[]")
    assert error is not None
    assert error.kind is ErrorKind.MALFORMED_RESPONSE


def test_list_models_reads_the_ids():
    """The model list's data[].id are the listed models."""
    listing = azure.PROTOCOL.list_models
    assert listing is not None
    assert listing.request(ENDPOINT).url == f"{BASE}/openai/models?api-version=2024-10-21"
    body = _body({"data": [{"id": "gpt-4o"}, {"id": "text-embedding-3-small"}], "object": "list"})
    assert listing.parse(200, httpx.Headers(), body) == ["gpt-4o", "text-embedding-3-small"]


def test_embed_request_posts_to_the_embedding_deployment():
    """Embeddings go to the deployment EmbedRequest.model names, with the api-version."""
    request = EmbedRequest(("a", "b"), "embed-small", dimensions=256)
    call = azure.embed_request(ENDPOINT, request)
    assert call.method == "POST"
    assert call.url == f"{BASE}/openai/deployments/embed-small/embeddings?api-version=2024-10-21"
    assert call.json["input"] == ["a", "b"]
    assert call.json["dimensions"] == 256
    assert ("api-key", "azure-key-0123456789") in call.headers


def test_parse_embeddings_orders_vectors_by_index():
    """The vectors come back in input order, whatever order the answer lists them in."""
    body = _body(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
                {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
            ],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 4, "total_tokens": 4},
        }
    )
    result = azure.parse_embeddings(200, httpx.Headers(), body)
    assert result.vectors == ((0.1, 0.2), (0.3, 0.4))
    assert result.usage.input_tokens == 4


def test_parse_embeddings_reads_errors_as_azures():
    """An embeddings error is read with Azure's codes."""
    body = _body({"error": {"code": "DeploymentNotFound", "message": "no"}})
    with pytest.raises(ProviderError) as caught:
        azure.parse_embeddings(404, httpx.Headers(), body)
    assert caught.value.kind is ErrorKind.NOT_FOUND


def test_protocol_flags():
    """Azure streams SSE and takes images, embeddings and model listing; no cache points."""
    protocol = azure.PROTOCOL
    assert protocol.name == "azure_openai"
    assert protocol.framing == "sse"
    assert protocol.images is True
    assert protocol.embed is not None
    assert protocol.list_models is not None
    assert protocol.cache_points is False
