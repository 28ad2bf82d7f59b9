import json

import httpx
import pytest

from runtime._chat import ChatRequest, EmbedRequest, ImagePart, Message, TextPart, Tuning, Usage
from runtime._errors import ErrorKind, ProviderError
from runtime._structured import Schema
from runtime._tools import Tool
from runtime._transport.aws import sigv4_signer
from runtime.protocols import Endpoint, HttpCall
from runtime.protocols import _bedrock as bedrock
from runtime.protocols._bedrock_tools import OUTPUT_TOOL
from runtime.testing import Answer, Fail, FakeBedrock, Malformed, StreamError
from runtime.testing._bedrock import EVENT_STREAM
from runtime.testing._script import ToolUse

pytestmark = pytest.mark.timeout(10)

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
API_KEY = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl"
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
CONVERSE = f"/model/{MODEL}/converse"
STREAM = f"/model/{MODEL}/converse-stream"
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5Er"
    "kJggg=="
)
WORDS = " ".join(f"word{i}" for i in range(12))
S3_SCOPED = (
    f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20261123/us-east-1/s3/aws4_request, "
    f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
)


@pytest.fixture
def fake():
    with FakeBedrock(keys={ACCESS_KEY, API_KEY}) as fake:
        yield fake


@pytest.fixture
def client(fake):
    with httpx.Client(base_url=fake.base_url, headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        yield c


@pytest.fixture
def signing_env(monkeypatch, tmp_path):
    """Fixed AWS credentials in the environment, and nothing else to find."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def ask(text="Hello", **config):
    body = {"messages": [{"role": "user", "content": [{"text": text}]}]}
    return {**body, "inferenceConfig": config} if config else body


def endpoint(fake, **fields):
    return Endpoint(base_url=fake.base_url, model=MODEL, api_key=API_KEY, auth="api-key", **fields)


def send(client, call: HttpCall) -> httpx.Response:
    """Send a protocol's call as the I/O layer would, body as JSON."""
    content = json.dumps(call.json).encode() if call.json is not None else None
    return client.request(call.method, call.url, headers=dict(call.headers), content=content)


def streamed(client, body, chunk_size=7):
    """Stream a chat; decode the frames as they arrive, in small chunks, with the protocol."""
    with client.stream("POST", STREAM, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == EVENT_STREAM
        return list(bedrock.decode_event_stream(response.iter_bytes(chunk_size)))


def parsed(frames):
    """Feed decoded frames to the protocol's parser; return the deltas and the result."""
    parser = bedrock.stream_parser(httpx.Headers())
    deltas = [text for name, payload in frames for text in parser.feed(name, payload)]
    return deltas, parser.finish()


def raised(response: httpx.Response) -> ProviderError:
    return bedrock.parse_error(response.status_code, response.headers, response.content)


def test_base_url_has_no_version_path(fake):
    """The base URL is the bare loopback root, as Bedrock's runtime host has no version."""
    assert fake.base_url == f"http://127.0.0.1:{fake.port}"
    assert fake.protocol == "bedrock"


def test_answer_is_a_converse_response_the_protocol_reads(fake, client):
    """A Converse answer has the documented shape, and the protocol parses it whole."""
    fake.script.append(Answer("Hello from the fake."))
    response = client.post(CONVERSE, json=ask("x" * 40))
    body = response.json()
    assert body["output"]["message"]["role"] == "assistant"
    assert body["stopReason"] == "end_turn"
    assert body["usage"] == {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}
    assert set(body["metrics"]) == {"latencyMs"}
    assert response.headers["x-amzn-requestid"]
    result = bedrock.parse_chat(200, response.headers, response.content)
    assert (result.text, result.usage, result.finish_reason) == (
        "Hello from the fake.",
        Usage(input_tokens=10, output_tokens=5),
        "stop",
    )


def test_stream_is_event_stream_frames_in_the_documented_order(fake, client):
    """The stream's frames decode (CRCs checked) into the documented event sequence."""
    fake.script.append(Answer(WORDS))
    names = [name for name, _ in streamed(client, ask())]
    deltas = ["contentBlockDelta"] * 12
    assert names == ["messageStart", *deltas, "contentBlockStop", "messageStop", "metadata"]


def test_stream_frames_feed_the_protocol_to_the_whole_answer(fake, client):
    """Decoded frames fed to the parser give every word as a delta, then the result."""
    fake.script.append(Answer(WORDS, usage=Usage(input_tokens=120, output_tokens=12)))
    deltas, result = parsed(streamed(client, ask(), chunk_size=1))
    assert "".join(deltas) == WORDS
    assert len(deltas) == 12
    assert (result.text, result.finish_reason) == (WORDS, "stop")
    assert result.usage == Usage(input_tokens=120, output_tokens=12)


def test_cached_tokens_round_trip_through_fake_and_protocol(fake, client):
    """Cache reads the fake reports apart from inputTokens come back as cached input."""
    usage = Usage(input_tokens=1000, output_tokens=20, cached_tokens=800)
    fake.script.extend([Answer("ok", usage=usage), Answer("ok", usage=usage)])
    body = client.post(CONVERSE, json=ask()).json()
    assert body["usage"]["inputTokens"] == 200
    assert body["usage"]["cacheReadInputTokens"] == 800
    assert bedrock.parse_chat(200, httpx.Headers(), json.dumps(body).encode()).usage == usage
    assert parsed(streamed(client, ask()))[1].usage == usage


def test_max_tokens_and_stop_sequences_end_the_answer(fake, client):
    """``maxTokens`` cuts with ``max_tokens``; a stop sequence with ``stop_sequence``."""
    fake.script.extend([Answer(WORDS), Answer("one two STOP three")])
    cut = client.post(CONVERSE, json=ask(maxTokens=2)).json()
    assert cut["stopReason"] == "max_tokens"
    stopped = client.post(CONVERSE, json=ask(stopSequences=["STOP"])).json()
    assert stopped["stopReason"] == "stop_sequence"
    assert stopped["output"]["message"]["content"][0]["text"] == "one two "


def test_a_guardrail_with_no_text_is_a_content_filter_failure(fake, client):
    """A scripted ``guardrail_intervened`` without text fails as ``content_filter``."""
    fake.script.extend([Answer("", finish="guardrail_intervened")] * 2)
    response = client.post(CONVERSE, json=ask())
    with pytest.raises(ProviderError) as whole:
        bedrock.parse_chat(200, response.headers, response.content)
    with pytest.raises(ProviderError) as stream:
        parsed(streamed(client, ask()))
    assert whole.value.kind is stream.value.kind is ErrorKind.CONTENT_FILTER


def test_a_mid_stream_throttling_exception_breaks_the_stream(fake, client):
    """A StreamError sends text, then a ``throttlingException`` message: ``rate_limited``."""
    fake.script.append(StreamError(after_chunks=2))
    frames = streamed(client, ask())
    assert [name for name, _ in frames] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "throttlingException",
    ]
    parser = bedrock.stream_parser(httpx.Headers())
    texts = [t for name, payload in frames[:-1] for t in parser.feed(name, payload)]
    assert len(texts) == 2
    with pytest.raises(ProviderError) as caught:
        parser.feed(*frames[-1])
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert caught.value.message == "Too many requests, please wait before trying again."


def test_a_stream_error_may_name_another_exception(fake, client):
    """``StreamError(code="modelStreamErrorException")`` sends that exception: ``server``."""
    fake.script.append(StreamError(after_chunks=0, code="modelStreamErrorException"))
    with pytest.raises(ProviderError) as caught:
        parsed(streamed(client, ask()))
    assert caught.value.kind is ErrorKind.SERVER
    assert caught.value.code == "ModelStreamErrorException"


def test_a_stream_error_asked_without_streaming_is_a_throttling_response(fake, client):
    """Asked for a whole answer, a StreamError is a 429 ``ThrottlingException``."""
    fake.script.append(StreamError())
    response = client.post(CONVERSE, json=ask())
    assert response.status_code == 429
    assert response.headers["x-amzn-errortype"].startswith("ThrottlingException:")
    assert raised(response).kind is ErrorKind.RATE_LIMITED


@pytest.mark.parametrize(
    ("fail", "name", "kind"),
    [
        (Fail(400), "ValidationException", ErrorKind.BAD_REQUEST),
        (
            Fail(400, code="ServiceQuotaExceededException"),
            "ServiceQuotaExceededException",
            ErrorKind.RATE_LIMITED,
        ),
        (Fail(403), "AccessDeniedException", ErrorKind.PERMISSION),
        (Fail(403, code="ExpiredTokenException"), "ExpiredTokenException", ErrorKind.AUTH),
        (Fail(404), "ResourceNotFoundException", ErrorKind.NOT_FOUND),
        (Fail(408), "ModelTimeoutException", ErrorKind.TIMEOUT),
        (Fail(424), "ModelErrorException", ErrorKind.SERVER),
        (Fail(429), "ThrottlingException", ErrorKind.RATE_LIMITED),
        (Fail(429, code="ModelNotReadyException"), "ModelNotReadyException", ErrorKind.OVERLOADED),
        (Fail(500), "InternalServerException", ErrorKind.SERVER),
        (Fail(503), "ServiceUnavailableException", ErrorKind.OVERLOADED),
    ],
)
def test_failures_are_named_exceptions_the_protocol_maps(fake, client, fail, name, kind):
    """Each scripted failure is Bedrock's exception for it, mapped to the expected kind."""
    fake.script.append(fail)
    response = client.post(CONVERSE, json=ask())
    assert response.status_code == fail.status
    assert response.headers["x-amzn-errortype"].partition(":")[0] == name
    assert set(response.json()) == {"message"}
    error = raised(response)
    assert (error.kind, error.code) == (kind, name)


def test_a_failure_with_a_wait_sends_retry_after(fake, client):
    """A scripted ``retry_after_s`` is sent as ``retry-after`` and read by the protocol."""
    fake.script.append(Fail(429, retry_after_s=3))
    assert raised(client.post(CONVERSE, json=ask())).retry_after_s == 3.0


def test_a_missing_authorization_header_is_refused(fake):
    """Without any ``Authorization`` the fake answers AWS's 403, read as ``auth``."""
    response = httpx.post(fake.base_url + CONVERSE, json=ask())
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}
    assert raised(response).kind is ErrorKind.AUTH


def test_a_fake_taking_any_key_still_wants_authorization():
    """Even with ``keys=None`` a request needs a signature or a Bearer key."""
    with FakeBedrock() as fake:
        assert httpx.post(fake.base_url + CONVERSE, json=ask()).status_code == 403
        headers = {"Authorization": "Bearer anything"}
        assert httpx.post(fake.base_url + CONVERSE, json=ask(), headers=headers).status_code == 200


def test_an_unknown_key_is_an_unrecognized_client(fake, client):
    """A key the fake does not accept (or a revoked one) gets ``UnrecognizedClientException``."""
    fake.revoke_key(API_KEY)
    response = client.post(CONVERSE, json=ask())
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"].startswith("UnrecognizedClientException:")
    assert response.json() == {"message": "The security token included in the request is invalid."}
    assert raised(response).kind is ErrorKind.AUTH


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("AWS4-HMAC-SHA256 SignedHeaders=host", "IncompleteSignatureException"),
        (S3_SCOPED, "InvalidSignatureException"),
    ],
)
def test_a_malformed_or_misscoped_signature_is_refused(fake, header, name):
    """A SigV4 header without its parts, or scoped to another service, is refused as ``auth``."""
    response = httpx.post(fake.base_url + CONVERSE, json=ask(), headers={"Authorization": header})
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"].partition(":")[0] == name
    assert raised(response).kind is ErrorKind.AUTH


def test_a_sigv4_signed_protocol_request_is_accepted(fake, signing_env):
    """A request the protocol builds and `sigv4_signer` signs passes the fake's check."""
    chat = ChatRequest((Message("user", "Hi"),), MODEL)
    call = bedrock.chat_request(Endpoint(base_url=fake.base_url, model=MODEL), chat, False)
    request = httpx.Request(
        call.method, call.url, headers=call.headers, content=json.dumps(call.json).encode()
    )
    sigv4_signer(bedrock.region_of(Endpoint(base_url=fake.base_url, model=MODEL)))(request)
    with httpx.Client() as plain:
        response = plain.send(request)
    assert response.status_code == 200
    (recorded,) = fake.requests
    assert recorded.path == CONVERSE
    assert recorded.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert ACCESS_KEY not in recorded.headers["authorization"]


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def signed_request(fake, body: bytes | None = None) -> httpx.Request:
    """A converse request the protocol builds, signed by `sigv4_signer` (signing_env's keys)."""
    where = Endpoint(base_url=fake.base_url, model=MODEL)
    call = bedrock.chat_request(where, ChatRequest((Message("user", "Hi"),), MODEL), False)
    content = body if body is not None else json.dumps(call.json).encode()
    request = httpx.Request(call.method, call.url, headers=call.headers, content=content)
    sigv4_signer(bedrock.region_of(where))(request)
    return request


def test_a_fake_given_the_secret_verifies_signatures(signing_env):
    """With the key's secret, a correct signature passes and a wrong one is refused as AWS does."""
    with (
        FakeBedrock(keys={ACCESS_KEY}, secrets={ACCESS_KEY: SECRET}) as right,
        FakeBedrock(keys={ACCESS_KEY}, secrets={ACCESS_KEY: SECRET + "-other"}) as wrong,
        httpx.Client() as plain,
    ):
        assert plain.send(signed_request(right)).status_code == 200
        refused = plain.send(signed_request(wrong))
    assert refused.status_code == 403
    assert refused.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")
    assert "does not match" in refused.json()["message"]
    error = bedrock.parse_error(refused.status_code, refused.headers, refused.content)
    assert error.kind is ErrorKind.AUTH


def test_a_request_changed_after_signing_no_longer_matches(signing_env):
    """A body or path that differs from what was signed fails verification."""
    with FakeBedrock(keys={ACCESS_KEY}, secrets={ACCESS_KEY: SECRET}) as fake, httpx.Client() as c:
        changed_body = signed_request(fake)
        changed_body.stream = httpx.ByteStream(b'{"messages":[]}')
        changed_body.headers["content-length"] = str(len(b'{"messages":[]}'))
        assert c.send(changed_body).status_code == 403
        changed_path = signed_request(fake)
        escaped = str(changed_path.url).replace(MODEL, MODEL.replace(":", "%3A"))
        changed_path.url = httpx.URL(escaped)
        assert c.send(changed_path).status_code == 403
        assert c.send(signed_request(fake)).status_code == 200


READ = Tool("read_file", "Read a file", {"type": "object", "properties": {"path": {}}})


def signed_chat(fake, chat: ChatRequest, *, stream: bool = False) -> httpx.Request:
    """The protocol's request for ``chat``, signed by `sigv4_signer` (signing_env's keys)."""
    where = Endpoint(base_url=fake.base_url, model=MODEL)
    call = bedrock.chat_request(where, chat, stream)
    content = json.dumps(call.json).encode()
    request = httpx.Request(call.method, call.url, headers=call.headers, content=content)
    sigv4_signer(bedrock.region_of(where))(request)
    return request


def test_a_signed_tool_conversation_round_trips_through_the_fake(signing_env):
    """A signed request with tools gets a call; the signed next turn with its result is taken."""
    with FakeBedrock(keys={ACCESS_KEY}, secrets={ACCESS_KEY: SECRET}) as fake, httpx.Client() as c:
        fake.script.extend(
            [Answer("", tool_calls=(ToolUse("read_file", {"path": "a"}),)), Answer("Done.")]
        )
        first = (Message("user", "read a"),)
        response = c.send(signed_chat(fake, ChatRequest(first, MODEL, tools=(READ,))))
        assert response.status_code == 200, response.text
        result = bedrock.parse_chat(200, response.headers, response.content)
        (call,) = result.tool_calls
        assert call.id.startswith("tooluse_")
        assert (call.name, call.arguments, result.finish_reason) == (
            "read_file",
            {"path": "a"},
            "tool_calls",
        )
        history = (
            *first,
            Message("assistant", "", tool_calls=result.tool_calls),
            Message("tool", "A!", tool_call_id=call.id),
        )
        response = c.send(signed_chat(fake, ChatRequest(history, MODEL, tools=(READ,))))
        assert response.status_code == 200, response.text
        assert bedrock.parse_chat(200, response.headers, response.content).text == "Done."


def test_a_streamed_call_arrives_in_pieces_through_the_fake(fake, client):
    """Over HTTP the call streams as its start and input fragments, then the whole call."""
    fake.script.append(Answer("", tool_calls=(ToolUse("read_file", {"path": "a/long/path.txt"}),)))
    chat = ChatRequest((Message("user", "read a"),), MODEL, tools=(READ,))
    call = bedrock.chat_request(endpoint(fake), chat, True)
    deltas, result = parsed(streamed(client, call.json))
    assert [d.name for d in deltas][:2] == ["read_file", None]
    assert len(deltas) > 2
    assert result.tool_calls[0].arguments == {"path": "a/long/path.txt"}


def test_structured_output_comes_back_as_text_through_the_forced_tool(fake, client):
    """A model without native structured output calls the output tool; its input is the text."""
    fake.script.append(Answer('{"steps": ["a"]}'))
    schema = Schema({"type": "object", "properties": {"steps": {"type": "array"}}})
    chat = ChatRequest((Message("user", "plan"),), MODEL, output=schema)
    response = send(client, bedrock.chat_request(endpoint(fake), chat, False))
    assert response.status_code == 200, response.text
    assert response.json()["output"]["message"]["content"][0]["toolUse"]["name"] == OUTPUT_TOOL
    result = bedrock.parse_chat(200, response.headers, response.content)
    assert (json.loads(result.text), result.tool_calls, result.finish_reason) == (
        {"steps": ["a"]},
        (),
        "stop",
    )


def test_the_protocols_request_with_images_and_cache_points_is_accepted(fake, client):
    """The protocol's body (system, images, cache points, tuning) passes the fake's checks."""
    chat = ChatRequest(
        (
            Message("system", (TextPart("Be brief.", cache=True),)),
            Message("user", (ImagePart(data=PNG, media_type="image/png"), TextPart("What?"))),
        ),
        f"us.{MODEL}",
        tuning=Tuning(max_tokens=50, temperature=0.1, stop=("END",)),
    )
    fake.script.append(Answer("A pixel."))
    response = send(client, bedrock.chat_request(endpoint(fake), chat, False))
    assert response.status_code == 200, response.text
    assert bedrock.parse_chat(200, response.headers, response.content).text == "A pixel."
    assert fake.requests[-1].json["system"] == [
        {"text": "Be brief."},
        {"cachePoint": {"type": "default"}},
    ]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"messages": []}, "Member must not be null"),
        (ask(" "), "is blank"),
        (
            {"messages": [{"role": "assistant", "content": [{"text": "Hi"}]}]},
            "must start with a user",
        ),
        ({"messages": [{"role": "system", "content": [{"text": "Hi"}]}]}, "[user, assistant]"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"image": {"format": "bmp", "source": {}}}]}
                ]
            },
            "[png, jpeg, gif, webp]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"image": {"format": "png", "source": {"bytes": "%%"}}}],
                    }
                ]
            },
            "base64",
        ),
        (
            {"messages": [{"role": "user", "content": [{"cachePoint": {"type": "forever"}}]}]},
            "[default]",
        ),
        (ask(maxTokens=0), "greater than or equal to 1"),
    ],
)
def test_invalid_requests_get_a_validation_exception(client, body, words):
    """Requests Bedrock would refuse get a 400 ``ValidationException`` saying why."""
    response = client.post(CONVERSE, json=body)
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"].startswith("ValidationException:")
    assert words in response.json()["message"]
    assert raised(response).kind is ErrorKind.BAD_REQUEST


def test_an_unknown_model_is_an_invalid_model_identifier(client):
    """An unknown model id gets Bedrock's 400, which the protocol reads as ``not_found``."""
    response = client.post("/model/acme.nothing-v1:0/converse", json=ask())
    assert response.status_code == 400
    assert response.json() == {"message": "The provided model identifier is invalid."}
    assert raised(response).kind is ErrorKind.NOT_FOUND


def test_inference_profiles_and_foundation_model_arns_reach_their_model(client):
    """``us.<model>`` and a foundation-model ARN (escaped in the path) answer as the model."""
    arn = f"arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2F{MODEL}"
    assert client.post(f"/model/us.{MODEL}/converse", json=ask()).status_code == 200
    assert client.post(f"/model/{arn}/converse", json=ask()).status_code == 200


def test_the_model_check_and_list_use_the_fakes_control_plane(fake, client):
    """The protocol's check passes for listed models and profiles, and lists every model."""
    call = bedrock.models_request(endpoint(fake))
    response = send(client, call)
    assert response.status_code == 200
    ok = [endpoint(fake), Endpoint(base_url=fake.base_url, model=f"us.{MODEL}")]
    for listed in ok:
        assert bedrock.check_models(listed, 200, response.headers, response.content) is None
    missing = Endpoint(base_url=fake.base_url, model="anthropic.claude-9-v1:0")
    error = bedrock.check_models(missing, 200, response.headers, response.content)
    assert error is not None
    assert error.kind is ErrorKind.NOT_FOUND
    ids = bedrock.parse_models(200, response.headers, response.content)
    assert tuple(ids) == fake.models


def test_one_foundation_model_can_be_fetched(client):
    """``GET /foundation-models/{id}`` answers its ``modelDetails``."""
    details = client.get(f"/foundation-models/{MODEL}").json()["modelDetails"]
    assert details["modelId"] == MODEL
    assert details["modelArn"].endswith(f":foundation-model/{MODEL}")
    assert details["responseStreamingSupported"] is True


def test_a_malformed_stream_answer_is_json_the_protocol_refuses(fake, client):
    """A Malformed behaviour on a stream is a JSON 200, not an event stream: malformed."""
    fake.script.append(Malformed())
    response = client.post(STREAM, json=ask())
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(ProviderError) as caught:
        bedrock.parse_chat(200, response.headers, response.content)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_the_requests_per_minute_limit_throttles():
    """With ``rpm`` spent, Bedrock's ``ThrottlingException`` comes without a wait hint."""
    with FakeBedrock(keys=API_KEY, rpm=1) as fake:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with httpx.Client(base_url=fake.base_url, headers=headers) as client:
            assert client.post(CONVERSE, json=ask()).status_code == 200
            response = client.post(CONVERSE, json=ask())
    assert response.status_code == 429
    assert "retry-after" not in response.headers
    assert raised(response).kind is ErrorKind.RATE_LIMITED


def test_answers_carry_no_rate_limit_headers(client):
    """Bedrock sends no rate-limit headers, so the protocol reads none."""
    response = client.post(CONVERSE, json=ask())
    assert not [name for name in response.headers if "ratelimit" in name]
    assert bedrock.rate_limits(response.headers).exhausted_for_s() is None


def test_an_unknown_path_is_an_unknown_operation(client):
    """A path Bedrock does not serve gets a 404 ``UnknownOperationException``."""
    response = client.get("/model/x/invoke-agent")
    assert response.status_code == 404
    assert response.headers["x-amzn-errortype"].startswith("UnknownOperationException:")


def test_the_request_log_masks_the_key(fake, client):
    """Recorded requests keep the Bearer scheme but never the key."""
    client.post(CONVERSE, json=ask())
    (recorded,) = fake.wait_for_requests(1, chat_only=True)
    assert recorded.action == "chat"
    assert API_KEY not in recorded.headers["authorization"]


def test_cohere_embeddings_round_trip_through_fake_and_protocol(fake, client):
    """The protocol's embeddings request gets one vector per text, of the length asked."""
    request = EmbedRequest(
        texts=("alpha", "beta", "gamma"), model="cohere.embed-v4:0", dimensions=256
    )
    response = send(client, bedrock.embed_request(endpoint(fake), request))
    assert response.status_code == 200, response.text
    result = bedrock.parse_embeddings(200, response.headers, response.content)
    assert len(result.vectors) == 3
    assert {len(v) for v in result.vectors} == {256}
    assert fake.requests[-1].action == "embed"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"texts": ["a"], "input_type": "document"}, "input_type"),
        (
            {"texts": ["a"], "input_type": "search_query", "output_dimension": 100},
            "output_dimension",
        ),
        ({"texts": ["a"] * 97, "input_type": "search_query"}, "less than or equal to 96"),
    ],
)
def test_invalid_embeddings_requests_get_a_validation_exception(client, body, words):
    """An embeddings body Cohere on Bedrock refuses gets a 400 ``ValidationException``."""
    response = client.post("/model/cohere.embed-v4:0/invoke", json=body)
    assert response.status_code == 400
    assert words in response.json()["message"]
    assert raised(response).kind is ErrorKind.BAD_REQUEST
