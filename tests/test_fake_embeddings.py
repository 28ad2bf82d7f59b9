"""The fakes serve embeddings and model lists in each API's documented shape."""

import base64
import math
import struct

import httpx
import pytest

from runtime._chat import EmbedRequest
from runtime.protocols import PROTOCOLS, Endpoint
from runtime.testing import FakeAnthropic, FakeGemini, FakeOpenAI
from runtime.testing._provider import EMBED_DIMENSIONS

pytestmark = pytest.mark.timeout(10)

OPENAI_MODEL = "text-embedding-3-small"
GEMINI_MODEL = "gemini-embedding-001"
BATCH = f"/models/{GEMINI_MODEL}:batchEmbedContents"


@pytest.fixture
def openai():
    with FakeOpenAI() as fake, httpx.Client(base_url=fake.base_url) as client:
        yield fake, client


@pytest.fixture
def gemini():
    with FakeGemini() as fake, httpx.Client(base_url=fake.base_url) as client:
        yield fake, client


def _batch(*texts, model=GEMINI_MODEL, **extra):
    item = {"model": f"models/{model}", **extra}
    return {"requests": [item | {"content": {"parts": [{"text": t}]}} for t in texts]}


def _norm(vector):
    return math.sqrt(sum(v * v for v in vector))


def _endpoint(fake):
    return Endpoint(base_url=fake.base_url, model=fake.models[0])


def _send(call):
    response = httpx.request(call.method, call.url, headers=dict(call.headers), json=call.json)
    return response.status_code, response.headers, response.content


# OpenAI


def test_openai_fake_answers_an_embeddings_list(openai):
    """An embeddings request gets a ``list`` of indexed unit vectors, the model and usage."""
    _, client = openai
    body = client.post("/embeddings", json={"model": OPENAI_MODEL, "input": ["abcd", "efgh"]})
    answer = body.json()
    assert body.status_code == 200
    assert (answer["object"], answer["model"]) == ("list", OPENAI_MODEL)
    assert [(d["object"], d["index"]) for d in answer["data"]] == [
        ("embedding", 0),
        ("embedding", 1),
    ]
    assert all(len(d["embedding"]) == EMBED_DIMENSIONS for d in answer["data"])
    assert all(_norm(d["embedding"]) == pytest.approx(1.0, abs=1e-4) for d in answer["data"])
    assert answer["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_openai_fake_vectors_are_deterministic_and_honour_dimensions(openai):
    """The same text gets the same vector, another text another, at the length asked for."""
    _, client = openai
    ask = {"model": OPENAI_MODEL, "input": ["same", "same", "other"], "dimensions": 5}
    first, again, other = (
        d["embedding"] for d in client.post("/embeddings", json=ask).json()["data"]
    )
    assert len(first) == 5
    assert first == again
    assert first != other


def test_openai_fake_takes_a_single_string_input(openai):
    """``input`` may be one string, which gets one vector."""
    _, client = openai
    answer = client.post("/embeddings", json={"model": OPENAI_MODEL, "input": "hi"}).json()
    assert len(answer["data"]) == 1


def test_openai_fake_encodes_vectors_as_base64_when_asked(openai):
    """With ``encoding_format: base64`` a vector is little-endian float32 bytes in base64."""
    _, client = openai
    ask = {"model": OPENAI_MODEL, "input": "hi", "dimensions": 4}
    floats = client.post("/embeddings", json=ask).json()["data"][0]["embedding"]
    encoded = client.post("/embeddings", json=ask | {"encoding_format": "base64"}).json()
    decoded = struct.unpack("<4f", base64.b64decode(encoded["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats, abs=1e-6)


def test_openai_fake_refuses_an_unknown_embedding_model(openai):
    """An embeddings request for a model not offered is a 404 ``model_not_found``."""
    _, client = openai
    response = client.post("/embeddings", json={"model": "text-embedding-9", "input": "hi"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("ask", "message"),
    [
        ({"model": OPENAI_MODEL, "input": []}, "'$.input' is invalid."),
        ({"model": OPENAI_MODEL, "input": [1, 2]}, "'$.input' is invalid."),
        ({"input": "hi"}, "you must provide a model parameter"),
        ({"model": OPENAI_MODEL, "input": "hi", "dimensions": 0}, "dimensions: must be"),
        ({"model": OPENAI_MODEL, "input": "hi", "encoding_format": "int8"}, "Invalid value"),
    ],
)
def test_openai_fake_refuses_a_malformed_embeddings_request(openai, ask, message):
    """A malformed embeddings request is a 400 ``invalid_request_error``."""
    _, client = openai
    response = client.post("/embeddings", json=ask)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(message)


def test_openai_fake_records_embeddings_requests(openai):
    """Embeddings requests are recorded as ``embed``, not as chats."""
    fake, client = openai
    client.post("/embeddings", json={"model": OPENAI_MODEL, "input": "hi"})
    (entry,) = fake.wait_for_requests(1)
    assert (entry.path, entry.action, entry.is_chat) == ("/v1/embeddings", "embed", False)
    assert entry.json["input"] == "hi"


def test_openai_protocol_embeddings_roundtrip_through_the_fake(openai):
    """The OpenAI protocol's embeddings request is answered and parsed into ordered vectors."""
    fake, _ = openai
    request = EmbedRequest(("alpha", "beta", "alpha"), OPENAI_MODEL, dimensions=3)
    embed = PROTOCOLS["openai"].embed
    result = embed.parse(*_send(embed.request(_endpoint(fake), request)))
    assert [len(v) for v in result.vectors] == [3, 3, 3]
    assert result.vectors[0] == result.vectors[2] != result.vectors[1]
    assert result.model == OPENAI_MODEL
    assert result.usage.input_tokens == 3


# Gemini


def test_gemini_fake_answers_batch_embed_contents(gemini):
    """A ``batchEmbedContents`` request gets ``embeddings[].values``, one per request."""
    _, client = gemini
    response = client.post(BATCH, json=_batch("a", "b", taskType="RETRIEVAL_DOCUMENT"))
    assert response.status_code == 200
    embeddings = response.json()["embeddings"]
    assert len(embeddings) == 2
    assert all(len(e["values"]) == EMBED_DIMENSIONS for e in embeddings)
    assert embeddings[0]["values"] != embeddings[1]["values"]


@pytest.mark.parametrize("name", ["outputDimensionality", "output_dimensionality"])
def test_gemini_fake_honours_output_dimensionality(gemini, name):
    """``outputDimensionality`` (either spelling) sets the vector length."""
    _, client = gemini
    response = client.post(BATCH, json=_batch("a", **{name: 3}))
    assert [len(e["values"]) for e in response.json()["embeddings"]] == [3]


def test_gemini_fake_refuses_an_unknown_embedding_model(gemini):
    """An embeddings request for a model not offered is a 404 ``NOT_FOUND``."""
    _, client = gemini
    response = client.post(
        "/models/text-embedding-9:batchEmbedContents", json=_batch("a", model="text-embedding-9")
    )
    assert response.status_code == 404
    assert response.json()["error"]["status"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"requests": []}, None),
        ({"requests": [{"model": "x"}]}, "model"),
        ({"requests": [{"model": f"models/{GEMINI_MODEL}", "content": {"parts": []}}]}, "content"),
        (_batch("a", taskType="SUMMARY"), "task_type"),
    ],
)
def test_gemini_fake_refuses_a_malformed_batch(gemini, body, field):
    """A malformed batch is a 400 ``INVALID_ARGUMENT``, naming the request's field if it has one."""
    _, client = gemini
    response = client.post(BATCH, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    if field is not None:
        assert error["details"][0]["fieldViolations"][0]["field"] == f"requests[0].{field}"


def test_gemini_protocol_embeddings_roundtrip_through_the_fake(gemini):
    """The Gemini protocol's batch request is answered and parsed into vectors in order."""
    fake, _ = gemini
    request = EmbedRequest(("q1", "q2"), GEMINI_MODEL, dimensions=4, input_type="query")
    embed = PROTOCOLS["gemini"].embed
    result = embed.parse(*_send(embed.request(_endpoint(fake), request)))
    assert [len(v) for v in result.vectors] == [4, 4]
    assert fake.requests[-1].json["requests"][0]["taskType"] == "RETRIEVAL_QUERY"


def test_anthropic_fake_has_no_embeddings_endpoint():
    """Anthropic serves no embeddings: the path is a 404 ``not_found_error``."""
    with FakeAnthropic() as fake:
        response = httpx.post(f"{fake.base_url}/embeddings", json={"input": "hi"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


# Model lists


@pytest.mark.parametrize("fake_type", [FakeOpenAI, FakeAnthropic, FakeGemini])
def test_protocol_model_list_reads_the_fake_models(fake_type):
    """Each protocol's model list, sent to its fake, reads back exactly the fake's models."""
    with fake_type(models=["model-a", "model-b"]) as fake:
        lister = PROTOCOLS[fake.protocol].list_models
        assert lister is not None
        assert lister.parse(*_send(lister.request(_endpoint(fake)))) == ["model-a", "model-b"]


def test_fake_default_models_include_embedding_models():
    """The OpenAI and Gemini fakes offer embedding models by default, listed with the rest."""
    with FakeOpenAI() as openai, FakeGemini() as gemini:
        assert OPENAI_MODEL in httpx.get(f"{openai.base_url}/models").text
        listed = httpx.get(f"{gemini.base_url}/models").json()["models"]
    (model,) = (m for m in listed if m["name"] == f"models/{GEMINI_MODEL}")
    assert model["supportedGenerationMethods"] == ["embedContent"]
