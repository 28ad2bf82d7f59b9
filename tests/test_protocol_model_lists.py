"""Model discovery on the wire: each protocol's model-list request and the ids it reads."""

import json

import httpx
import pytest

from runtime._errors import ErrorKind, ProviderError
from runtime.protocols import PROTOCOLS, Endpoint

pytestmark = pytest.mark.timeout(10)

NO_HEADERS = httpx.Headers()
ENDPOINTS = {
    "openai": Endpoint(base_url="https://api.openai.com/v1", model="gpt-4o", api_key="sk-1"),
    "anthropic": Endpoint(
        base_url="https://api.anthropic.com/v1", model="claude-sonnet-4-5", api_key="sk-ant-1"
    ),
    "gemini": Endpoint(
        base_url="https://generativelanguage.googleapis.com/v1beta",
        model="gemini-2.5-flash",
        api_key="AIza-1",
    ),
}
LISTS = {
    "openai": {
        "object": "list",
        "data": [
            {"id": "gpt-4o", "object": "model", "created": 1, "owned_by": "system"},
            {"id": "text-embedding-3-small", "object": "model", "created": 2, "owned_by": "system"},
        ],
    },
    "anthropic": {
        "data": [
            {"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5"},
            {"type": "model", "id": "claude-haiku-4-5", "display_name": "Claude Haiku 4.5"},
        ],
        "has_more": False,
        "first_id": "claude-sonnet-4-5",
        "last_id": "claude-haiku-4-5",
    },
    "gemini": {
        "models": [
            {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash"},
            {"name": "models/gemini-embedding-001", "displayName": "Gemini Embedding 001"},
        ],
        "nextPageToken": "next",
    },
}
IDS = {
    "openai": ["gpt-4o", "text-embedding-3-small"],
    "anthropic": ["claude-sonnet-4-5", "claude-haiku-4-5"],
    "gemini": ["gemini-2.5-flash", "gemini-embedding-001"],
}
URLS = {
    "openai": "https://api.openai.com/v1/models",
    "anthropic": "https://api.anthropic.com/v1/models?limit=1000",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1000",
}
ERRORS = {
    "openai": {
        "error": {
            "message": "Incorrect API key provided: sk-1.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    },
    "anthropic": {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    },
    "gemini": {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ],
        }
    },
}
PROTOCOL_NAMES = ["openai", "anthropic", "gemini"]


def _lister(name):
    lister = PROTOCOLS[name].list_models
    assert lister is not None
    return lister


@pytest.mark.parametrize("name", PROTOCOL_NAMES)
def test_list_models_request_gets_one_large_page(name):
    """The list is one GET of the models collection, as large a page as the API allows."""
    call = _lister(name).request(ENDPOINTS[name])
    assert (call.method, call.url) == ("GET", URLS[name])
    assert call.json is None
    assert "content-type" not in {header for header, _ in call.headers}


@pytest.mark.parametrize("name", PROTOCOL_NAMES)
def test_list_models_request_carries_the_key(name):
    """The list request is authenticated like a chat."""
    call = _lister(name).request(ENDPOINTS[name])
    assert ENDPOINTS[name].api_key in " ".join(value for _, value in call.headers)


@pytest.mark.parametrize("name", PROTOCOL_NAMES)
def test_list_models_parse_reads_the_model_ids(name):
    """The answer's ids come back in listed order (Gemini's without ``models/``)."""
    body = json.dumps(LISTS[name]).encode()
    assert _lister(name).parse(200, NO_HEADERS, body) == IDS[name]


@pytest.mark.parametrize("name", PROTOCOL_NAMES)
def test_list_models_parse_raises_the_parsed_error_for_a_rejected_key(name):
    """A rejected key comes back through ``parse_error`` as an auth error."""
    status = 400 if name == "gemini" else 401
    with pytest.raises(ProviderError) as caught:
        _lister(name).parse(status, NO_HEADERS, json.dumps(ERRORS[name]).encode())
    assert caught.value.kind is ErrorKind.AUTH
    assert caught.value.status == status


@pytest.mark.parametrize("name", PROTOCOL_NAMES)
@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[]", b'{"data": "x", "models": 3}'])
def test_list_models_parse_raises_malformed_for_other_shapes(name, body):
    """A body without the documented list is a malformed response."""
    with pytest.raises(ProviderError) as caught:
        _lister(name).parse(200, NO_HEADERS, body)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_gemini_empty_list_is_an_empty_object():
    """Gemini omits an empty ``models`` array, so ``{}`` lists no models."""
    assert _lister("gemini").parse(200, NO_HEADERS, b"{}") == []


def test_list_models_parse_skips_entries_without_an_id():
    """Entries with no id are skipped, not listed as empty names."""
    body = json.dumps({"data": [{"id": "gpt-4o"}, {"object": "model"}, "x"]}).encode()
    assert _lister("openai").parse(200, NO_HEADERS, body) == ["gpt-4o"]


def test_openai_check_models_still_names_close_matches():
    """The start-up check, now built on the list parser, still suggests close model names."""
    endpoint = Endpoint(base_url="https://api.openai.com/v1", model="gpt-4-o", api_key="sk-1")
    body = json.dumps(LISTS["openai"]).encode()
    error = PROTOCOLS["openai"].check_models(endpoint, 200, NO_HEADERS, body)
    assert error is not None
    assert error.kind is ErrorKind.NOT_FOUND
    assert "gpt-4o" in error.message
