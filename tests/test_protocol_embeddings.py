"""Embeddings on the wire: OpenAI's ``/embeddings`` and Gemini's ``batchEmbedContents``."""

import json

import httpx
import pytest

from runtime._chat import EmbedRequest
from runtime._errors import ErrorKind, ProviderError
from runtime.protocols import PROTOCOLS, Endpoint
from runtime.protocols import _gemini as gemini
from runtime.protocols import _openai as openai

pytestmark = pytest.mark.timeout(10)

OPENAI = Endpoint(base_url="https://api.openai.com/v1", model="gpt-4o", api_key="sk-test")
GEMINI = Endpoint(
    base_url="https://generativelanguage.googleapis.com/v1beta",
    model="gemini-2.5-flash",
    api_key="AIza-test",
)
NO_HEADERS = httpx.Headers()


def _body(value) -> bytes:
    return json.dumps(value).encode()


def _openai_list(*items, usage=None):
    return {
        "object": "list",
        "data": list(items),
        "model": "text-embedding-3-small",
        "usage": usage or {"prompt_tokens": 8, "total_tokens": 8},
    }


def _item(index, vector):
    return {"object": "embedding", "index": index, "embedding": vector}


def test_anthropic_has_no_embeddings():
    """Anthropic offers no embeddings API, so its protocol has none."""
    assert PROTOCOLS["anthropic"].embed is None


def test_openai_and_gemini_protocols_offer_embeddings():
    """The OpenAI and Gemini protocols carry their embeddings functions."""
    assert PROTOCOLS["openai"].embed is not None
    assert PROTOCOLS["openai"].embed.request is openai.embed_request
    assert PROTOCOLS["gemini"].embed is not None
    assert PROTOCOLS["gemini"].embed.parse is gemini.parse_embeddings


# OpenAI


def test_openai_embed_request_posts_every_text_to_embeddings():
    """The request is a POST to {base}/embeddings with the model and every text as ``input``."""
    call = openai.embed_request(OPENAI, EmbedRequest(("a", "b"), "text-embedding-3-small"))
    assert (call.method, call.url) == ("POST", "https://api.openai.com/v1/embeddings")
    assert call.json == {"model": "text-embedding-3-small", "input": ["a", "b"]}
    assert ("authorization", "Bearer sk-test") in call.headers
    assert ("content-type", "application/json") in call.headers
    assert not call.stream


def test_openai_embed_request_asks_for_dimensions_when_given():
    """``dimensions`` is sent only when the request sets it."""
    request = EmbedRequest(("a",), "text-embedding-3-large", dimensions=256)
    assert openai.embed_request(OPENAI, request).json["dimensions"] == 256


def test_openai_parse_embeddings_orders_vectors_by_index():
    """Vectors come back in input order, whatever order ``data`` lists them in."""
    body = _openai_list(_item(2, [0.3]), _item(0, [0.1, -1]), _item(1, [0.2]))
    result = openai.parse_embeddings(200, NO_HEADERS, _body(body))
    assert result.vectors == ((0.1, -1.0), (0.2,), (0.3,))
    assert result.model == "text-embedding-3-small"
    assert result.usage.to_dict() == {"input_tokens": 8, "output_tokens": 0, "cached_tokens": 0}


def test_openai_parse_embeddings_raises_the_parsed_error_for_error_statuses():
    """An error status is mapped through ``parse_error``: an unknown model is not_found."""
    error = {
        "message": "The model `nope` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
    with pytest.raises(ProviderError) as caught:
        openai.parse_embeddings(404, NO_HEADERS, _body({"error": error}))
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert caught.value.status == 404


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        _body({"object": "list"}),
        _body(_openai_list(_item(0, "AAAA"))),
        _body(_openai_list(_item(0, [0.1, True]))),
        _body(_openai_list(_item("0", [0.1]))),
    ],
)
def test_openai_parse_embeddings_raises_malformed_without_the_documented_shape(body):
    """A body that is not a list of float vectors with whole-number indexes is malformed."""
    with pytest.raises(ProviderError) as caught:
        openai.parse_embeddings(200, NO_HEADERS, body)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


# Gemini


def test_gemini_embed_request_batches_one_request_per_text():
    """The request posts to ``:batchEmbedContents`` with one ``models/``-named request per text."""
    call = gemini.embed_request(GEMINI, EmbedRequest(("a", "b"), "gemini-embedding-001"))
    assert call.method == "POST"
    assert call.url == f"{GEMINI.base_url}/models/gemini-embedding-001:batchEmbedContents"
    assert call.json == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}},
        ]
    }
    assert ("x-goog-api-key", "AIza-test") in call.headers


def test_gemini_embed_request_accepts_a_model_named_with_its_prefix():
    """A model given as ``models/<id>`` is not prefixed twice, in the URL or the body."""
    call = gemini.embed_request(GEMINI, EmbedRequest(("a",), "models/gemini-embedding-001"))
    assert call.url.endswith("/models/gemini-embedding-001:batchEmbedContents")
    assert call.json["requests"][0]["model"] == "models/gemini-embedding-001"


@pytest.mark.parametrize(
    ("input_type", "task_type"),
    [("document", "RETRIEVAL_DOCUMENT"), ("query", "RETRIEVAL_QUERY"), ("other", None)],
)
def test_gemini_embed_request_maps_the_input_type_to_a_task_type(input_type, task_type):
    """``document`` and ``query`` become retrieval task types; other input types are not sent."""
    request = EmbedRequest(("a",), "gemini-embedding-001", input_type=input_type)
    (item,) = gemini.embed_request(GEMINI, request).json["requests"]
    assert item.get("taskType") == task_type


def test_gemini_embed_request_asks_for_output_dimensionality_when_given():
    """``dimensions`` becomes every request's ``outputDimensionality``."""
    request = EmbedRequest(("a", "b"), "gemini-embedding-001", dimensions=768)
    items = gemini.embed_request(GEMINI, request).json["requests"]
    assert [item["outputDimensionality"] for item in items] == [768, 768]


def test_gemini_parse_embeddings_reads_values_in_order():
    """``embeddings[].values`` are the vectors, in request order, with no token count."""
    body = _body({"embeddings": [{"values": [0.1, 2]}, {"values": [-0.5]}]})
    result = gemini.parse_embeddings(200, NO_HEADERS, body)
    assert result.vectors == ((0.1, 2.0), (-0.5,))
    assert result.usage.total_tokens == 0


def test_gemini_parse_embeddings_raises_the_parsed_error_for_error_statuses():
    """An error status is mapped through ``parse_error``: ``NOT_FOUND`` is not_found."""
    error = {"code": 404, "message": "models/nope is not found", "status": "NOT_FOUND"}
    with pytest.raises(ProviderError) as caught:
        gemini.parse_embeddings(404, NO_HEADERS, _body({"error": error}))
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert caught.value.code == "NOT_FOUND"


@pytest.mark.parametrize(
    "body",
    [
        b"<html>",
        _body({"embedding": {"values": [0.1]}}),
        _body({"embeddings": [{"values": None}]}),
        _body({"embeddings": [{"values": ["0.1"]}]}),
    ],
)
def test_gemini_parse_embeddings_raises_malformed_without_the_documented_shape(body):
    """A body without ``embeddings[].values`` arrays of numbers is malformed."""
    with pytest.raises(ProviderError) as caught:
        gemini.parse_embeddings(200, NO_HEADERS, body)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE
