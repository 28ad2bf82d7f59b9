import json

import httpx
import pytest

from runtime._chat import ChatRequest, ImagePart, Message, TextPart, Tuning
from runtime._errors import ErrorKind, ProviderError
from runtime.protocols import Endpoint
from runtime.protocols import _replicate as replicate

pytestmark = pytest.mark.timeout(10)

BASE = "https://api.replicate.com/v1"
MODEL = "meta/meta-llama-3-8b-instruct"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
ENDPOINT = Endpoint(BASE, MODEL, api_key="r8_secret0123456789")


def _request(**kwargs):
    defaults = {"messages": (Message("user", "Hello!"),), "model": MODEL}
    return ChatRequest(**(defaults | kwargs))


def _body(value) -> bytes:
    return json.dumps(value).encode()


def _prediction(status="succeeded", output=("Hi", " there."), **extra):
    return {
        "id": "gm3qorzdhgbfurvjtvhg6dckhu",
        "model": MODEL,
        "version": "hidden",
        "input": {"prompt": "Hello!"},
        "logs": "",
        "output": list(output) if isinstance(output, tuple) else output,
        "data_removed": False,
        "error": None,
        "status": status,
        "created_at": "2024-10-21T16:19:34.765994Z",
        "urls": {
            "cancel": f"{BASE}/predictions/gm3qorzdhgbfurvjtvhg6dckhu/cancel",
            "get": f"{BASE}/predictions/gm3qorzdhgbfurvjtvhg6dckhu",
            "stream": "https://stream.replicate.com/v1/files/abc",
        },
        "metrics": {"input_token_count": 12, "output_token_count": 3, "predict_time": 0.4},
    } | extra


def _failure(status, body, headers=None):
    return replicate.parse_error(status, httpx.Headers(headers or {}), _body(body))


def _unfinished(prediction):
    with pytest.raises(ProviderError) as caught:
        replicate.parse_chat(201, httpx.Headers(), _body(prediction))
    return caught.value


def test_chat_request_runs_an_official_model_by_name():
    """A model owner/name is run with POST {base}/models/{owner}/{name}/predictions."""
    call = replicate.chat_request(ENDPOINT, _request(), stream=False)
    assert call.method == "POST"
    assert call.url == f"{BASE}/models/meta/meta-llama-3-8b-instruct/predictions"
    assert call.json == {"input": {"prompt": "Hello!"}}


def test_chat_request_runs_a_pinned_version_with_predictions():
    """A model owner/name:version is run with POST {base}/predictions and that version id."""
    call = replicate.chat_request(ENDPOINT, _request(model=f"{MODEL}:{VERSION}"), stream=False)
    assert call.url == f"{BASE}/predictions"
    assert call.json == {"version": VERSION, "input": {"prompt": "Hello!"}}


def test_chat_request_waits_in_sync_mode_with_a_bearer_token():
    """The token goes as Bearer, with Prefer: wait for sync mode, then the extra headers."""
    endpoint = Endpoint(BASE, MODEL, api_key="r8_abc", extra_headers=(("x-trace", "1"),))
    headers = replicate.chat_request(endpoint, _request(), stream=False).headers
    assert headers == (
        ("authorization", "Bearer r8_abc"),
        ("content-type", "application/json"),
        ("prefer", "wait=55"),
        ("x-trace", "1"),
    )


def test_chat_request_without_a_token_sends_no_authorization():
    """No token (or auth "none") means no authorization header."""
    for endpoint in (Endpoint(BASE, MODEL), Endpoint(BASE, MODEL, api_key="k", auth="none")):
        headers = replicate.chat_request(endpoint, _request(), stream=False).headers
        assert "authorization" not in dict(headers)


def test_a_streamed_chat_request_asks_for_a_stream_without_waiting():
    """A streamed create says ``"stream": true`` without ``Prefer: wait``: it answers at once."""
    streamed = replicate.chat_request(ENDPOINT, _request(), stream=True)
    whole = replicate.chat_request(ENDPOINT, _request(), stream=False)
    assert streamed.stream is True
    assert streamed.url == whole.url
    assert streamed.json == {**whole.json, "stream": True}
    assert "prefer" not in dict(streamed.headers)
    assert dict(whole.headers)["prefer"] == "wait=55"
    assert dict(streamed.headers)["authorization"] == "Bearer r8_secret0123456789"


def test_a_started_prediction_is_read_from_its_stream_url_with_the_token():
    """The stream is a GET of urls.stream as server-sent events, with the create call's token."""
    create = replicate.chat_request(ENDPOINT, _request(), stream=True)
    call = replicate.stream_call(create, _body(_prediction("starting", None)))
    assert call is not None
    assert (call.method, call.url, call.stream) == (
        "GET",
        "https://stream.replicate.com/v1/files/abc",
        True,
    )
    headers = dict(call.headers)
    assert headers["authorization"] == "Bearer r8_secret0123456789"
    assert headers["accept"] == "text/event-stream"
    result = replicate.result_call(create, _body(_prediction("starting", None)))
    assert (result.method, result.url) == ("GET", f"{BASE}/predictions/gm3qorzdhgbfurvjtvhg6dckhu")
    assert dict(result.headers)["authorization"] == "Bearer r8_secret0123456789"


def test_a_prediction_that_already_ended_is_read_whole():
    """A create answer that is already final needs no stream: parse_chat reads it."""
    create = replicate.chat_request(ENDPOINT, _request(), stream=True)
    assert replicate.stream_call(create, _body(_prediction())) is None
    assert replicate.stream_call(create, _body(_prediction("failed", None))) is None


def test_a_model_that_does_not_stream_is_a_bad_request_saying_what_to_set():
    """No urls.stream: the model cannot stream; the error names the prediction and the fix."""
    create = replicate.chat_request(ENDPOINT, _request(), stream=True)
    body = _prediction("starting", None)
    body["urls"] = {k: v for k, v in body["urls"].items() if k != "stream"}
    with pytest.raises(ProviderError) as caught:
        replicate.stream_call(create, _body(body))
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert "gm3qorzdhgbfurvjtvhg6dckhu" in caught.value.message
    assert "stream = false" in caught.value.message


def test_chat_request_sends_the_system_prompt_and_tuning_as_inputs():
    """The system prompt and tuning become system_prompt, max_tokens/max_new_tokens, and so on."""
    tuning = Tuning(temperature=0.3, max_tokens=128, top_p=0.9, stop=("</s>", "END"))
    request = _request(system="Be brief.", tuning=tuning)
    inputs = replicate.chat_request(ENDPOINT, request, stream=False).json["input"]
    assert inputs == {
        "prompt": "Hello!",
        "system_prompt": "Be brief.",
        "max_tokens": 128,
        "max_new_tokens": 128,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop_sequences": "</s>,END",
    }


def test_chat_request_flattens_a_conversation_into_labelled_turns():
    """Several turns become User:/Assistant: lines ending with Assistant: for the answer."""
    request = _request(
        messages=(
            Message("system", "Rule."),
            Message("user", "Hi"),
            Message("assistant", "Hello"),
            Message("user", "Bye"),
        )
    )
    inputs = replicate.chat_request(ENDPOINT, request, stream=False).json["input"]
    assert inputs["prompt"] == "User: Hi\n\nAssistant: Hello\n\nUser: Bye\n\nAssistant:"
    assert inputs["system_prompt"] == "Rule."


def test_chat_request_continues_an_assistant_turn_without_a_new_label():
    """A conversation ending with the assistant's turn is left for the model to continue."""
    request = _request(messages=(Message("user", "Hi"), Message("assistant", "Once upon")))
    prompt = replicate.chat_request(ENDPOINT, request, stream=False).json["input"]["prompt"]
    assert prompt == "User: Hi\n\nAssistant: Once upon"


def test_chat_request_sends_only_the_text_of_parts():
    """Message parts are flattened to their text (Replicate inputs are model-specific)."""
    parts = (TextPart("Describe"), ImagePart(url="https://example.com/a.png"), TextPart("it"))
    request = _request(messages=(Message("user", parts),))
    prompt = replicate.chat_request(ENDPOINT, request, stream=False).json["input"]["prompt"]
    assert prompt == "Describe\n\nit"


def test_chat_request_escapes_the_model_path():
    """Each half of owner/name is escaped in the path."""
    call = replicate.chat_request(ENDPOINT, _request(model="me/my model"), stream=False)
    assert call.url == f"{BASE}/models/me/my%20model/predictions"


def test_parse_chat_joins_the_output_chunks():
    """A succeeded prediction's output list is the text; metrics give the usage."""
    result = replicate.parse_chat(201, httpx.Headers(), _body(_prediction()))
    assert result.text == "Hi there."
    assert result.model == MODEL
    assert result.usage.to_dict() == {"input_tokens": 12, "output_tokens": 3, "cached_tokens": 0}
    assert result.finish_reason is None
    assert result.rate_limits.remaining_requests is None


@pytest.mark.parametrize(("output", "text"), [("Just one string.", "Just one string."), (None, "")])
def test_parse_chat_takes_a_string_or_no_output(output, text):
    """An output given as one string is the text; no output is empty text."""
    assert (
        replicate.parse_chat(201, httpx.Headers(), _body(_prediction(output=output))).text == text
    )


def test_parse_chat_without_metrics_counts_zero_tokens():
    """A prediction without metrics counts zero tokens rather than failing."""
    body = _prediction()
    del body["metrics"]
    assert replicate.parse_chat(201, httpx.Headers(), _body(body)).usage.total_tokens == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        _body([1, 2]),
        _body(_prediction(output=[{"url": "x"}])),
        _body(_prediction(status="weird")),
    ],
)
def test_parse_chat_refuses_other_shapes(body):
    """Non-JSON, non-objects, non-text output and unknown statuses are malformed answers."""
    with pytest.raises(ProviderError) as caught:
        replicate.parse_chat(201, httpx.Headers(), body)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


@pytest.mark.parametrize("status", ["starting", "processing"])
def test_a_prediction_still_running_after_the_wait_is_a_timeout(status):
    """A prediction still starting or processing when Prefer: wait returned is TIMEOUT."""
    error = _unfinished(_prediction(status=status, output=None))
    assert error.kind is ErrorKind.TIMEOUT
    assert error.message.startswith("the prediction did not finish within Replicate's wait")
    assert "gm3qorzdhgbfurvjtvhg6dckhu" in error.message
    assert error.code == status


def test_a_failed_prediction_is_a_server_error_with_its_text():
    """A failed prediction is SERVER, carrying the prediction's error text."""
    error = _unfinished(_prediction(status="failed", output=None, error="CUDA out of memory"))
    assert error.kind is ErrorKind.SERVER
    assert "CUDA out of memory" in error.message


def test_a_prediction_failed_on_its_input_is_a_bad_request():
    """A prediction that failed because of its input is BAD_REQUEST."""
    text = "Prompt length (9000) exceeds maximum input length (8192)"
    error = _unfinished(_prediction(status="failed", output=None, error=text))
    assert error.kind is ErrorKind.BAD_REQUEST


@pytest.mark.parametrize("status", ["canceled", "aborted"])
def test_a_canceled_or_aborted_prediction_is_a_timeout(status):
    """Canceled and aborted predictions (deadlines) are TIMEOUT."""
    assert _unfinished(_prediction(status=status, output=None)).kind is ErrorKind.TIMEOUT


def test_parse_chat_raises_the_problem_of_an_error_status():
    """An error status handed to parse_chat is read as Replicate's problem details."""
    body = _body(
        {
            "title": "Unauthenticated",
            "detail": "You did not pass a valid authentication token",
            "status": 401,
        }
    )
    with pytest.raises(ProviderError) as caught:
        replicate.parse_chat(401, httpx.Headers(), body)
    assert caught.value.kind is ErrorKind.AUTH


@pytest.mark.parametrize(
    ("status", "title", "detail", "kind"),
    [
        (401, "Unauthenticated", "You did not pass a valid authentication token", ErrorKind.AUTH),
        (
            402,
            "Insufficient credit",
            "You have insufficient credit to run this model.",
            ErrorKind.QUOTA,
        ),
        (404, "Not found", "Not found.", ErrorKind.NOT_FOUND),
        (
            422,
            "Input validation failed",
            "- input.prompt: prompt is required",
            ErrorKind.BAD_REQUEST,
        ),
        (500, "Internal server error", "Something broke.", ErrorKind.SERVER),
        (503, "Service unavailable", "Try later.", ErrorKind.OVERLOADED),
    ],
)
def test_problem_details_map_to_kinds(status, title, detail, kind):
    """Each documented problem status maps to its kind, the title and detail in the message."""
    error = _failure(status, {"title": title, "detail": detail, "status": status})
    assert error.kind is kind
    assert error.status == status
    assert detail in error.message
    assert error.code == title


def test_insufficient_credit_says_to_add_credit():
    """A 402 says the account's credit is used up."""
    error = _failure(402, {"title": "Insufficient credit", "detail": "No credit.", "status": 402})
    assert "credit" in error.message
    assert error.message.startswith("the account's credit is used up")


def test_invalid_version_is_not_found():
    """A 422 "Invalid version or not permitted" means the pinned version does not exist."""
    detail = (
        "The specified version does not exist (or perhaps you don't have permission to use it?)"
    )
    error = _failure(
        422, {"title": "Invalid version or not permitted", "detail": detail, "status": 422}
    )
    assert error.kind is ErrorKind.NOT_FOUND


def test_throttled_reads_retry_after():
    """A 429 with retry-after waits that long."""
    body = {"title": "Request was throttled", "detail": "Request was throttled.", "status": 429}
    error = _failure(429, body, {"retry-after": "4"})
    assert (error.kind, error.retry_after_s) == (ErrorKind.RATE_LIMITED, 4.0)


def test_throttled_without_header_reads_when_the_limit_resets():
    """A 429 with only the documented {"detail"} takes its wait from "resets in ~30s"."""
    error = _failure(429, {"detail": "Request was throttled. Your rate limit resets in ~30s."})
    assert (error.kind, error.retry_after_s) == (ErrorKind.RATE_LIMITED, 30.0)


def test_detail_alone_is_the_message():
    """A problem with a detail and no title is read by its detail."""
    error = _failure(404, {"detail": "Not found.", "status": 404})
    assert error.message == "Not found."
    assert error.code is None


def test_non_json_error_body_is_read_by_status():
    """A proxy's HTML page is read by its status, its start quoted."""
    error = replicate.parse_error(502, httpx.Headers(), b"<html>502 Bad Gateway</html>")
    assert error.kind is ErrorKind.SERVER
    assert "502 Bad Gateway" in error.message


def test_unrecognized_json_error_is_quoted():
    """A JSON error body of another shape is quoted, read by its status."""
    error = replicate.parse_error(500, httpx.Headers(), _body({"oops": 1}))
    assert error.kind is ErrorKind.SERVER
    assert "unrecognized error body" in error.message


def test_models_request_gets_the_model():
    """The start-up check is GET {base}/models/{owner}/{name} with the token and no Prefer."""
    call = replicate.models_request(ENDPOINT)
    assert (call.method, call.url) == ("GET", f"{BASE}/models/meta/meta-llama-3-8b-instruct")
    assert call.headers == (("authorization", "Bearer r8_secret0123456789"),)


def test_models_request_drops_a_pinned_version():
    """A pinned model is checked by its owner/name."""
    call = replicate.models_request(Endpoint(BASE, f"{MODEL}:{VERSION}", api_key="k"))
    assert call.url == f"{BASE}/models/meta/meta-llama-3-8b-instruct"


def test_check_models_accepts_the_model():
    """A 200 model object means the token works and the model exists."""
    body = _body({"owner": "meta", "name": "meta-llama-3-8b-instruct", "latest_version": {}})
    assert replicate.check_models(ENDPOINT, 200, httpx.Headers(), body) is None


def test_check_models_names_a_missing_model():
    """A 404 says the configured model does not exist on Replicate."""
    error = replicate.check_models(ENDPOINT, 404, httpx.Headers(), _body({"detail": "Not found."}))
    assert error is not None
    assert error.kind is ErrorKind.NOT_FOUND
    assert MODEL in error.message


def test_check_models_reports_a_rejected_token():
    """A 401 is AUTH."""
    body = _body(
        {
            "title": "Unauthenticated",
            "detail": "You did not pass a valid authentication token",
            "status": 401,
        }
    )
    error = replicate.check_models(ENDPOINT, 401, httpx.Headers(), body)
    assert error is not None
    assert error.kind is ErrorKind.AUTH


def test_check_models_refuses_a_model_name_without_an_owner():
    """A model without owner/ is not a Replicate model name."""
    endpoint = Endpoint(BASE, "llama3", api_key="k")
    error = replicate.check_models(endpoint, 200, httpx.Headers(), _body({}))
    assert error is not None
    assert error.kind is ErrorKind.NOT_FOUND
    assert "owner/name" in error.message


def test_list_models_reads_the_first_page_as_owner_name():
    """The model list is GET {base}/models; results[] become owner/name."""
    listing = replicate.PROTOCOL.list_models
    assert listing is not None
    assert listing.request(ENDPOINT).url == f"{BASE}/models"
    body = _body(
        {
            "next": f"{BASE}/models?cursor=cD0yMDIy",
            "previous": None,
            "results": [
                {"owner": "meta", "name": "meta-llama-3-8b-instruct"},
                {"owner": "replicate", "name": "hello-world"},
                {"owner": "", "name": "broken"},
            ],
        }
    )
    assert listing.parse(200, httpx.Headers(), body) == [
        "meta/meta-llama-3-8b-instruct",
        "replicate/hello-world",
    ]


def test_list_models_raises_for_an_error_or_another_shape():
    """An error status or a body without results raises."""
    listing = replicate.PROTOCOL.list_models
    assert listing is not None
    with pytest.raises(ProviderError) as caught:
        listing.parse(401, httpx.Headers(), _body({"detail": "no", "status": 401}))
    assert caught.value.kind is ErrorKind.AUTH
    with pytest.raises(ProviderError) as caught:
        listing.parse(200, httpx.Headers(), _body({"data": []}))
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_the_stream_gives_output_events_as_text_and_ends_at_done():
    """``output`` events are the text (as is), ``logs`` are ignored, ``done`` ends it."""
    parser = replicate.stream_parser(httpx.Headers())
    deltas = []
    for event, data in [
        ("output", "Hi"),
        ("logs", "loading"),
        ("output", " there.\n"),
        ("done", "{}"),
    ]:
        deltas += parser.feed(event, data)
    assert deltas == ["Hi", " there.\n"]
    result = parser.finish()
    assert result.text == "Hi there.\n"
    assert result.usage.total_tokens == 0


@pytest.mark.parametrize(
    ("event", "data", "kind"),
    [
        ("error", '{"detail": "CUDA out of memory"}', ErrorKind.SERVER),
        ("error", "worker crashed", ErrorKind.SERVER),
        ("done", '{"reason": "canceled"}', ErrorKind.TIMEOUT),
        ("done", '{"reason": "error"}', ErrorKind.SERVER),
    ],
)
def test_a_stream_that_fails_or_is_canceled_raises(event, data, kind):
    """An ``error`` event, or ``done`` with a reason, ends the stream with an error."""
    parser = replicate.stream_parser(httpx.Headers())
    parser.feed("output", "Hi")
    with pytest.raises(ProviderError) as caught:
        parser.feed(event, data)
    assert caught.value.kind is kind
    if event == "error":
        assert data.removeprefix('{"detail": "').removesuffix('"}') in caught.value.message


def test_a_stream_cut_before_done_is_malformed():
    """A stream that ends without its ``done`` event did not finish."""
    parser = replicate.stream_parser(httpx.Headers())
    parser.feed("output", "Hi")
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_protocol_flags():
    """Replicate streams by URL, on demand, in SSE; no embeddings, no images, a model list."""
    protocol = replicate.PROTOCOL
    assert protocol.name == "replicate"
    assert protocol.framing == "sse"
    assert protocol.stream_by_url is not None
    assert protocol.stream_on_demand is True
    assert protocol.embed is None
    assert protocol.images is False
    assert protocol.list_models is not None
    assert (
        protocol.rate_limits(
            httpx.Headers({"x-ratelimit-remaining-requests": "3"})
        ).remaining_requests
        is None
    )
