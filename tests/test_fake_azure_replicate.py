import json

import httpx
import pytest
from httpx_sse import connect_sse

from runtime._chat import ChatRequest, EmbedRequest, Message, Tuning, Usage
from runtime._errors import ErrorKind, ProviderError
from runtime.protocols import Endpoint
from runtime.protocols import _azure as azure
from runtime.protocols import _replicate as replicate
from runtime.testing import (
    FAKES,
    Answer,
    Fail,
    FakeAzureOpenAI,
    FakeReplicate,
    Malformed,
    ProxyError,
    StreamError,
)

pytestmark = pytest.mark.timeout(10)

AZURE_KEY = "azure-key-0123456789abcdef"
ENTRA_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJjb2duaXRpdmUifQ.c2ln"
R8_TOKEN = "r8_0123456789abcdefghijklmnop"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
PINNED = f"replicate/hello-llm:{VERSION}"
MODEL = "meta/meta-llama-3-8b-instruct"


@pytest.fixture
def az():
    with FakeAzureOpenAI(keys={AZURE_KEY, ENTRA_TOKEN}) as fake:
        yield fake


@pytest.fixture
def r8():
    models = ("meta/meta-llama-3-8b-instruct", PINNED)
    with FakeReplicate(keys={R8_TOKEN}, models=models) as fake:
        yield fake


@pytest.fixture
def client():
    with httpx.Client(timeout=5) as c:
        yield c


def az_endpoint(fake, *, key=AZURE_KEY, auth="default", deployment="gpt-4o", version=None):
    options = (("api_version", version or "2024-10-21"), ("deployment", deployment))
    return Endpoint(fake.base_url, deployment, api_key=key, auth=auth, options=options)


def r8_endpoint(fake, model="meta/meta-llama-3-8b-instruct", key=R8_TOKEN):
    return Endpoint(fake.base_url, model, api_key=key)


def chat(model, text="Hello there", **kwargs):
    return ChatRequest((Message("user", text),), model, **kwargs)


def send(client, call):
    return client.request(call.method, call.url, headers=dict(call.headers), json=call.json)


def parsed(protocol, response):
    return protocol.parse_chat(response.status_code, response.headers, response.content)


def error_of(protocol, response):
    assert response.status_code >= 400
    return protocol.parse_error(response.status_code, response.headers, response.content)


def chat_error(protocol, response):
    with pytest.raises(ProviderError) as caught:
        parsed(protocol, response)
    return caught.value


def streamed(client, call):
    """Send a streamed call and feed its events to the Azure parser: (events, deltas, parser)."""
    events, deltas = [], []
    with connect_sse(
        client, call.method, call.url, headers=dict(call.headers), json=call.json
    ) as src:
        assert src.response.status_code == 200
        parser = azure.stream_parser(src.response.headers)
        for event in src.iter_sse():
            events.append(event.data)
            deltas.extend(parser.feed(event.event, event.data))
    return events, deltas, parser


def test_fakes_are_offered_by_protocol_name():
    """The two fakes are listed in `FAKES` under their protocols' names."""
    assert FAKES[azure.NAME] is FakeAzureOpenAI
    assert FAKES[replicate.NAME] is FakeReplicate
    assert FakeAzureOpenAI().protocol == azure.NAME
    assert FakeReplicate().protocol == replicate.NAME


def test_azure_base_url_is_the_resource_endpoint(az):
    """The Azure fake's base URL is the resource endpoint, with no path."""
    assert az.base_url == f"http://127.0.0.1:{az.port}"


def test_azure_answer_parses_with_filter_results_and_limits(az, client):
    """An answer carries prompt and completion filter results and parses with remaining limits."""
    response = send(client, azure.chat_request(az_endpoint(az), chat("gpt-4o"), False))
    body = response.json()
    assert (
        body["prompt_filter_results"][0]["content_filter_results"]["violence"]["filtered"] is False
    )
    assert "content_filter_results" in body["choices"][0]
    assert "apim-request-id" in response.headers
    result = parsed(azure, response)
    assert result.text == Answer().text
    assert result.finish_reason == "stop"
    assert result.rate_limits.remaining_requests is not None
    assert result.rate_limits.reset_requests_s is None


def test_azure_request_reaches_the_deployment_with_the_key_masked(az, client):
    """The fake sees the deployment path, the api-version and a masked api-key header."""
    send(client, azure.chat_request(az_endpoint(az), chat("gpt-4o"), False))
    (request,) = az.wait_for_requests(1, chat_only=True)
    assert request.path == "/openai/deployments/gpt-4o/chat/completions"
    assert request.query["api-version"] == "2024-10-21"
    assert request.headers["api-key"] != AZURE_KEY
    assert AZURE_KEY not in json.dumps(dict(request.headers))


def test_azure_takes_an_entra_token_as_bearer(az, client):
    """A Microsoft Entra ID token sent as Bearer is accepted like a key."""
    endpoint = az_endpoint(az, key=ENTRA_TOKEN, auth="entra")
    response = send(client, azure.chat_request(endpoint, chat("gpt-4o"), False))
    assert response.status_code == 200
    assert parsed(azure, response).text


def test_azure_refuses_a_missing_key_with_its_401(az, client):
    """No key gets Azure's 401 "Access denied" body, read as AUTH."""
    response = send(client, azure.chat_request(az_endpoint(az, key=None), chat("gpt-4o"), False))
    assert response.json()["error"]["code"] == "401"
    assert error_of(azure, response).kind is ErrorKind.AUTH


def test_azure_refuses_a_bad_entra_token_with_the_gateways_401(az, client):
    """A refused token gets the gateway's {"statusCode": 401} body, read as AUTH."""
    endpoint = az_endpoint(az, key="eyJbad.token.sig", auth="entra")
    response = send(client, azure.chat_request(endpoint, chat("gpt-4o"), False))
    assert response.json()["statusCode"] == 401
    error = error_of(azure, response)
    assert error.kind is ErrorKind.AUTH
    assert "Access token" in error.message


def test_azure_unknown_deployment_is_deployment_not_found(az, client):
    """A chat for a deployment the resource lacks is 404 DeploymentNotFound, read as NOT_FOUND."""
    endpoint = az_endpoint(az, deployment="no-such-deployment")
    response = send(client, azure.chat_request(endpoint, chat("gpt-4o"), False))
    assert response.json()["error"]["code"] == "DeploymentNotFound"
    error = error_of(azure, response)
    assert (error.kind, error.code) == (ErrorKind.NOT_FOUND, "DeploymentNotFound")


def test_azure_needs_the_api_version(az, client):
    """Without ?api-version= Azure answers 404 Resource not found."""
    url = f"{az.base_url}/openai/deployments/gpt-4o/chat/completions"
    ask = {"messages": [{"role": "user", "content": "Hi"}]}
    response = client.post(url, headers={"api-key": AZURE_KEY}, json=ask)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "404", "message": "Resource not found"}}
    assert error_of(azure, response).kind is ErrorKind.NOT_FOUND


def test_azure_body_model_is_optional(az, client):
    """Azure takes a chat body without a model: the path names the deployment."""
    url = f"{az.base_url}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
    ask = {"messages": [{"role": "user", "content": "Hi"}]}
    response = client.post(url, headers={"api-key": AZURE_KEY}, json=ask)
    assert response.status_code == 200
    assert response.json()["model"] == "gpt-4o-mini"


def test_azure_stream_starts_with_an_empty_choices_filter_chunk(az, client):
    """A stream's first event has empty choices and prompt_filter_results; the parser reads it."""
    call = azure.chat_request(az_endpoint(az), chat("gpt-4o"), True)
    events, deltas, parser = streamed(client, call)
    first = json.loads(events[0])
    assert first["choices"] == []
    assert first["id"] == ""
    assert first["prompt_filter_results"][0]["prompt_index"] == 0
    assert events[-1] == "[DONE]"
    result = parser.finish()
    assert "".join(deltas) == result.text == Answer().text
    assert result.usage.output_tokens > 0
    assert result.rate_limits.remaining_tokens is not None


def test_azure_old_api_version_refuses_stream_options_which_the_protocol_leaves_out(az, client):
    """Before 2024-09-01 stream_options is refused, and the protocol leaves it out for them."""
    url = f"{az.base_url}/openai/deployments/gpt-4o/chat/completions?api-version=2024-06-01"
    ask = {"messages": [{"role": "user", "content": "Hi"}], "stream": True}
    response = client.post(
        url, headers={"api-key": AZURE_KEY}, json={**ask, "stream_options": {"include_usage": True}}
    )
    assert response.status_code == 400
    assert "stream_options" in response.json()["error"]["message"]
    call = azure.chat_request(az_endpoint(az, version="2024-06-01"), chat("gpt-4o"), True)
    _, deltas, parser = streamed(client, call)
    assert parser.finish().text == "".join(deltas) == Answer().text


def test_azure_429_tells_its_wait_in_headers_and_message(az, client):
    """A scripted 429 carries retry-after-ms and retry-after, read as the wait."""
    az.script.append(Fail(429, retry_after_s=2.5))
    response = send(client, azure.chat_request(az_endpoint(az), chat("gpt-4o"), False))
    assert response.headers["retry-after-ms"] == "2500"
    assert response.headers["retry-after"] == "3"
    assert "Please retry after 3 seconds" in response.json()["error"]["message"]
    error = error_of(azure, response)
    assert (error.kind, error.retry_after_s) == (ErrorKind.RATE_LIMITED, 2.5)


def test_azure_rpm_limit_is_a_429_with_a_wait(client):
    """Past the fake's rpm the answer is Azure's 429, with a positive wait."""
    with FakeAzureOpenAI(keys={AZURE_KEY}, rpm=1) as fake:
        call = azure.chat_request(az_endpoint(fake), chat("gpt-4o"), False)
        assert send(client, call).status_code == 200
        error = error_of(azure, send(client, call))
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.retry_after_s is not None
    assert error.retry_after_s > 0


def test_azure_filtered_prompt_names_the_category(az, client):
    """Fail(400, code="content_filter") is Azure's filtered-prompt 400, read as CONTENT_FILTER."""
    az.script.append(Fail(400, code="content_filter"))
    response = send(client, azure.chat_request(az_endpoint(az), chat("gpt-4o"), False))
    assert response.json()["error"]["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    error = error_of(azure, response)
    assert error.kind is ErrorKind.CONTENT_FILTER
    assert "violence (medium)" in error.message


def test_azure_filtered_answer_is_a_content_filter_whole_or_streamed(az, client):
    """An answer the filter withheld is CONTENT_FILTER, whole and streamed alike."""
    az.script.extend([Answer("", finish="content_filter"), Answer("", finish="content_filter")])
    whole = send(client, azure.chat_request(az_endpoint(az), chat("gpt-4o"), False))
    assert whole.json()["choices"][0]["message"]["content"] is None
    assert chat_error(azure, whole).kind is ErrorKind.CONTENT_FILTER
    _, _, parser = streamed(client, azure.chat_request(az_endpoint(az), chat("gpt-4o"), True))
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.CONTENT_FILTER
    assert "violence" in caught.value.message


@pytest.mark.parametrize(
    ("fail", "kind"),
    [
        (Fail(401, code="PermissionDenied"), ErrorKind.PERMISSION),
        (Fail(403), ErrorKind.PERMISSION),
        (Fail(404), ErrorKind.NOT_FOUND),
        (Fail(408), ErrorKind.TIMEOUT),
        (Fail(500), ErrorKind.SERVER),
        (Fail(503), ErrorKind.OVERLOADED),
    ],
)
def test_azure_scripted_errors_read_back_as_their_kinds(az, client, fail, kind):
    """Each scripted Azure error parses back to the kind its status and code mean."""
    az.script.append(fail)
    response = send(client, azure.chat_request(az_endpoint(az), chat("gpt-4o"), False))
    assert response.status_code == fail.status
    assert error_of(azure, response).kind is kind


def test_azure_stream_error_mid_stream_raises(az, client):
    """A StreamError sends an error event after the first chunk; the parser raises SERVER."""
    az.script.append(StreamError(after_chunks=1))
    call = azure.chat_request(az_endpoint(az), chat("gpt-4o"), True)
    with pytest.raises(ProviderError) as caught:
        streamed(client, call)
    assert caught.value.kind is ErrorKind.SERVER


def test_azure_malformed_and_proxy_answers_are_errors(az, client):
    """A malformed 200 and a proxy's HTML page both parse to errors, not answers."""
    az.script.extend([Malformed(), ProxyError()])
    call = azure.chat_request(az_endpoint(az), chat("gpt-4o"), False)
    assert chat_error(azure, send(client, call)).kind is ErrorKind.MALFORMED_RESPONSE
    assert error_of(azure, send(client, call)).kind is ErrorKind.SERVER


def test_azure_embeddings_come_from_the_embedding_deployment(az, client):
    """Embeddings go to the deployment the request names and parse to one vector per text."""
    request = EmbedRequest(("alpha", "beta", "alpha"), "text-embedding-3-small", dimensions=8)
    response = send(client, azure.embed_request(az_endpoint(az), request))
    assert response.status_code == 200
    result = azure.parse_embeddings(response.status_code, response.headers, response.content)
    assert len(result.vectors) == 3
    assert all(len(vector) == 8 for vector in result.vectors)
    assert result.vectors[0] == result.vectors[2] != result.vectors[1]
    assert result.usage.input_tokens > 0
    request_seen = az.wait_for_requests(1)[-1]
    assert request_seen.action == "embed"
    assert request_seen.path == "/openai/deployments/text-embedding-3-small/embeddings"


def test_azure_embeddings_body_model_does_not_pick_the_deployment(az, client):
    """The path names the embedding deployment even when the body names another model."""
    url = (
        f"{az.base_url}/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21"
    )
    response = client.post(url, headers={"api-key": AZURE_KEY}, json={"input": "hi", "model": "x"})
    assert response.status_code == 200
    assert response.json()["model"] == "text-embedding-3-small"


def test_azure_embeddings_for_an_unknown_deployment_are_not_found(az, client):
    """Embeddings for a deployment the resource lacks are DeploymentNotFound."""
    request = EmbedRequest(("a",), "no-embedder")
    response = send(client, azure.embed_request(az_endpoint(az), request))
    with pytest.raises(ProviderError) as caught:
        azure.parse_embeddings(response.status_code, response.headers, response.content)
    assert caught.value.code == "DeploymentNotFound"


def test_azure_model_check_and_list_agree_with_the_fake(az, client):
    """The start-up check passes with a good key, fails AUTH with a bad one; the list reads back."""
    response = send(client, azure.models_request(az_endpoint(az)))
    assert (
        azure.check_models(
            az_endpoint(az), response.status_code, response.headers, response.content
        )
        is None
    )
    assert azure.parse_models(response.status_code, response.headers, response.content) == list(
        az.models
    )
    item = response.json()["data"][0]
    assert {"capabilities", "lifecycle_status", "status", "object"} <= set(item)
    bad = az_endpoint(az, key="wrong-key")
    response = send(client, azure.models_request(bad))
    error = azure.check_models(bad, response.status_code, response.headers, response.content)
    assert error is not None
    assert error.kind is ErrorKind.AUTH


def test_azure_scripted_usage_reads_back(az, client):
    """An answer's scripted usage is what the parser reports."""
    az.script.append(Answer("ok", usage=Usage(11, 2)))
    result = parsed(azure, send(client, azure.chat_request(az_endpoint(az), chat("gpt-4o"), False)))
    assert (result.usage.input_tokens, result.usage.output_tokens) == (11, 2)


def test_replicate_official_model_answers_201_in_sync_mode(r8, client):
    """A chat on an official model is a 201 prediction with output chunks, parsed to the text."""
    call = replicate.chat_request(
        r8_endpoint(r8), chat("meta/meta-llama-3-8b-instruct", system="Be kind."), False
    )
    response = send(client, call)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "succeeded"
    assert isinstance(body["output"], list)
    assert set(body["urls"]) >= {"get", "cancel", "stream"}
    result = parsed(replicate, response)
    assert result.text == Answer().text
    assert result.model == "meta/meta-llama-3-8b-instruct"
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0
    (seen,) = r8.wait_for_requests(1, chat_only=True)
    assert seen.headers["prefer"] == "wait=55"
    assert seen.json["input"]["system_prompt"] == "Be kind."
    assert seen.headers["authorization"] != f"Bearer {R8_TOKEN}"


def test_replicate_pinned_version_runs_by_its_version_id(r8, client):
    """A pinned model runs through POST /predictions with its bare version id."""
    response = send(client, replicate.chat_request(r8_endpoint(r8), chat(PINNED), False))
    assert response.status_code == 201
    body = response.json()
    assert (body["model"], body["version"]) == ("replicate/hello-llm", VERSION)
    assert parsed(replicate, response).text == Answer().text
    assert r8.wait_for_requests(1)[-1].path == "/v1/predictions"


def test_replicate_unknown_model_and_version_are_not_found(r8, client):
    """An unknown model is 404 and an unknown version 422 "Invalid version", both NOT_FOUND."""
    response = send(client, replicate.chat_request(r8_endpoint(r8), chat("nobody/nothing"), False))
    assert response.status_code == 404
    assert error_of(replicate, response).kind is ErrorKind.NOT_FOUND
    unknown = f"replicate/hello-llm:{'0' * 64}"
    response = send(client, replicate.chat_request(r8_endpoint(r8), chat(unknown), False))
    assert response.status_code == 422
    assert response.json()["title"] == "Invalid version or not permitted"
    assert error_of(replicate, response).kind is ErrorKind.NOT_FOUND


def test_replicate_refuses_a_missing_token(r8, client):
    """No token gets 401 Unauthenticated, read as AUTH."""
    call = replicate.chat_request(
        r8_endpoint(r8, key=None), chat("meta/meta-llama-3-8b-instruct"), False
    )
    response = send(client, call)
    assert response.json()["title"] == "Unauthenticated"
    assert error_of(replicate, response).kind is ErrorKind.AUTH


def test_replicate_missing_prompt_is_an_input_validation_error(r8, client):
    """A prediction without a prompt is 422 Input validation failed, read as BAD_REQUEST."""
    url = f"{r8.base_url}/models/meta/meta-llama-3-8b-instruct/predictions"
    response = client.post(url, headers={"Authorization": f"Bearer {R8_TOKEN}"}, json={"input": {}})
    assert response.status_code == 422
    assert response.json()["invalid_fields"][0]["field"] == "input.prompt"
    assert error_of(replicate, response).kind is ErrorKind.BAD_REQUEST


@pytest.mark.parametrize(
    ("fail", "kind"),
    [
        (Fail(402), ErrorKind.QUOTA),
        (Fail(422), ErrorKind.BAD_REQUEST),
        (Fail(500), ErrorKind.SERVER),
        (Fail(503), ErrorKind.OVERLOADED),
    ],
)
def test_replicate_scripted_problems_read_back_as_their_kinds(r8, client, fail, kind):
    """Each scripted problem-details error parses back to its kind."""
    r8.script.append(fail)
    response = send(
        client,
        replicate.chat_request(r8_endpoint(r8), chat("meta/meta-llama-3-8b-instruct"), False),
    )
    assert response.status_code == fail.status
    assert response.json()["status"] == fail.status
    assert error_of(replicate, response).kind is kind


def test_replicate_throttle_wait_comes_from_header_or_detail(r8, client):
    """A 429 with retry_after_s sends retry-after; without it the detail says when it resets."""
    r8.script.extend([Fail(429, retry_after_s=2), Fail(429)])
    call = replicate.chat_request(r8_endpoint(r8), chat("meta/meta-llama-3-8b-instruct"), False)
    first = error_of(replicate, send(client, call))
    assert (first.kind, first.retry_after_s) == (ErrorKind.RATE_LIMITED, 2.0)
    response = send(client, call)
    assert "retry-after" not in response.headers
    assert "resets in ~1s" in response.json()["detail"]
    assert error_of(replicate, response).retry_after_s == 1.0


def test_replicate_rpm_limit_is_throttled(client):
    """Past the fake's rpm the answer is Replicate's 429, its wait read from the detail."""
    with FakeReplicate(keys={R8_TOKEN}, rpm=1) as fake:
        call = replicate.chat_request(
            r8_endpoint(fake), chat("meta/meta-llama-3-8b-instruct"), False
        )
        assert send(client, call).status_code == 201
        error = error_of(replicate, send(client, call))
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.retry_after_s is not None
    assert error.retry_after_s >= 1


def test_replicate_failed_predictions_are_server_or_bad_request(r8, client):
    """A failed prediction is SERVER, or BAD_REQUEST when its error is about the input."""
    r8.script.extend(
        [
            Fail(201, code="failed", message="CUDA out of memory"),
            Fail(201, code="failed", message="Prompt length exceeds the maximum input length"),
        ]
    )
    call = replicate.chat_request(r8_endpoint(r8), chat("meta/meta-llama-3-8b-instruct"), False)
    response = send(client, call)
    assert (response.status_code, response.json()["status"]) == (201, "failed")
    first = chat_error(replicate, response)
    assert first.kind is ErrorKind.SERVER
    assert "CUDA out of memory" in first.message
    assert chat_error(replicate, send(client, call)).kind is ErrorKind.BAD_REQUEST


def test_replicate_prediction_still_processing_is_a_timeout(r8, client):
    """Answer(finish="processing") is a prediction the wait did not see end: TIMEOUT."""
    r8.script.append(Answer(finish="processing"))
    response = send(
        client,
        replicate.chat_request(r8_endpoint(r8), chat("meta/meta-llama-3-8b-instruct"), False),
    )
    assert response.json()["completed_at"] is None
    error = chat_error(replicate, response)
    assert error.kind is ErrorKind.TIMEOUT
    assert "did not finish within Replicate's wait" in error.message


@pytest.mark.parametrize("code", ["canceled", "aborted"])
def test_replicate_canceled_and_aborted_predictions_are_timeouts(r8, client, code):
    """Predictions canceled or aborted by a deadline are TIMEOUT."""
    r8.script.append(Fail(201, code=code))
    response = send(
        client,
        replicate.chat_request(r8_endpoint(r8), chat("meta/meta-llama-3-8b-instruct"), False),
    )
    assert response.json()["status"] == code
    assert chat_error(replicate, response).kind is ErrorKind.TIMEOUT


def r8_stream(client, prediction):
    """Read a started prediction's urls.stream with the token: (status, [(event, data)])."""
    url = prediction["urls"]["stream"]
    headers = {"Authorization": f"Bearer {R8_TOKEN}", "Accept": "text/event-stream"}
    with connect_sse(client, "GET", url, headers=headers) as source:
        if source.response.status_code != 200:
            source.response.read()
            return source.response.status_code, []
        return 200, [(e.event, e.data) for e in source.iter_sse()]


def test_replicate_streamed_prediction_is_read_by_url_then_fetched_with_its_counts(r8, client):
    """A streamed create answers ``starting`` at once; its stream and result are on the fake."""
    r8.script.append(Answer("Hello there, streaming friend.", usage=Usage(21, 5)))
    create = replicate.chat_request(r8_endpoint(r8), chat(MODEL), True)
    response = send(client, create)
    assert response.status_code == 201
    prediction = response.json()
    assert prediction["status"] == "starting"
    assert prediction["urls"]["stream"].startswith(r8.base_url)
    assert replicate.stream_call(create, response.content) is not None
    status, events = r8_stream(client, prediction)
    assert status == 200
    assert [name for name, _ in events][-1] == "done"
    parser = replicate.stream_parser(httpx.Headers())
    text = "".join(piece for name, data in events for piece in parser.feed(name, data))
    assert text == "Hello there, streaming friend."
    assert parser.finish().text == text
    result = send(client, replicate.result_call(create, response.content))
    finished = parsed(replicate, result)
    assert (finished.text, finished.usage.input_tokens, finished.usage.output_tokens) == (
        text,
        21,
        5,
    )
    again, _ = r8_stream(client, prediction)
    assert again == 404, "a stream is read once"


def test_replicate_stream_broken_mid_way_sends_an_error_event(r8, client):
    """A StreamError after two pieces: two ``output`` events, then ``error`` with its detail."""
    r8.script.append(StreamError(after_chunks=2, message="worker crashed"))
    response = send(client, replicate.chat_request(r8_endpoint(r8), chat(MODEL), True))
    _, events = r8_stream(client, response.json())
    assert [name for name, _ in events] == ["output", "output", "error"]
    parser = replicate.stream_parser(httpx.Headers())
    for name, data in events[:2]:
        parser.feed(name, data)
    with pytest.raises(ProviderError) as caught:
        parser.feed(*events[2])
    assert "worker crashed" in caught.value.message
    create = replicate.chat_request(r8_endpoint(r8), chat(MODEL), True)
    result = send(client, replicate.result_call(create, response.content))
    assert result.status_code == 404, "a broken stream leaves no finished prediction"


def test_replicate_stream_url_needs_the_token(r8, client):
    """The stream of a prediction is refused without the token, as every Replicate call is."""
    response = send(client, replicate.chat_request(r8_endpoint(r8), chat(MODEL), True))
    url = response.json()["urls"]["stream"]
    refused = client.get(url, headers={"Accept": "text/event-stream"})
    assert refused.status_code == 401


def test_replicate_stream_error_on_a_sync_call_is_a_failed_prediction(r8, client):
    """A StreamError meets a sync call as a failed prediction."""
    r8.script.append(StreamError(message="worker crashed"))
    response = send(
        client,
        replicate.chat_request(r8_endpoint(r8), chat("meta/meta-llama-3-8b-instruct"), False),
    )
    assert response.json()["status"] == "failed"
    assert "worker crashed" in chat_error(replicate, response).message


def test_replicate_malformed_and_proxy_answers_are_errors(r8, client):
    """A malformed body and a proxy's HTML page both parse to errors, not answers."""
    r8.script.extend([Malformed(), ProxyError()])
    call = replicate.chat_request(r8_endpoint(r8), chat("meta/meta-llama-3-8b-instruct"), False)
    assert chat_error(replicate, send(client, call)).kind is ErrorKind.MALFORMED_RESPONSE
    assert error_of(replicate, send(client, call)).kind is ErrorKind.SERVER


def test_replicate_max_tokens_and_stop_sequences_cut_the_output(r8, client):
    """max_tokens (as max_tokens/max_new_tokens) and stop_sequences cut the fake's output."""
    r8.script.extend([Answer("word " * 40), Answer("one two STOP three")])
    request = chat("meta/meta-llama-3-8b-instruct", tuning=Tuning(max_tokens=5))
    result = parsed(
        replicate, send(client, replicate.chat_request(r8_endpoint(r8), request, False))
    )
    assert len(result.text) <= 20
    request = chat("meta/meta-llama-3-8b-instruct", tuning=Tuning(stop=("STOP",)))
    result = parsed(
        replicate, send(client, replicate.chat_request(r8_endpoint(r8), request, False))
    )
    assert result.text == "one two "


def test_replicate_model_check_and_list_agree_with_the_fake(r8, client):
    """The start-up check passes for official and pinned models; the list folds versions."""
    for model in ("meta/meta-llama-3-8b-instruct", PINNED):
        endpoint = r8_endpoint(r8, model)
        response = send(client, replicate.models_request(endpoint))
        assert (
            replicate.check_models(
                endpoint, response.status_code, response.headers, response.content
            )
            is None
        )
    missing = r8_endpoint(r8, "nobody/nothing")
    response = send(client, replicate.models_request(missing))
    error = replicate.check_models(
        missing, response.status_code, response.headers, response.content
    )
    assert error is not None
    assert error.kind is ErrorKind.NOT_FOUND
    listing = replicate.PROTOCOL.list_models
    assert listing is not None
    response = send(client, listing.request(r8_endpoint(r8)))
    assert listing.parse(response.status_code, response.headers, response.content) == [
        "meta/meta-llama-3-8b-instruct",
        "replicate/hello-llm",
    ]


def test_replicate_bad_token_fails_the_model_check(r8, client):
    """A wrong token fails the start-up check with AUTH."""
    endpoint = r8_endpoint(r8, key="r8_wrong")
    response = send(client, replicate.models_request(endpoint))
    error = replicate.check_models(
        endpoint, response.status_code, response.headers, response.content
    )
    assert error is not None
    assert error.kind is ErrorKind.AUTH
