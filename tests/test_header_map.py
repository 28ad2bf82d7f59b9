"""`HeaderMap`: response headers read once answer every lookup as ``httpx.Headers`` does."""

from __future__ import annotations

import httpx
import pytest

from runtime._transport.http import read_headers
from runtime.protocols._base import HeaderMap
from runtime.protocols._openai import rate_limits

pytestmark = pytest.mark.timeout(5)

RAW = [
    (b"Content-Type", b"application/json"),
    (b"x-ratelimit-remaining-requests", b"4999"),
    (b"x-ratelimit-reset-tokens", b"6m0s"),
    (b"X-Dup", b"a"),
    (b"x-dup", b"b"),
    (b"Authorization", b"Bearer sk-response-secret-123456"),
]


def test_lookups_match_httpx_in_any_case_and_join_repeats() -> None:
    headers = httpx.Headers(RAW)
    mapped = HeaderMap(headers.items())
    for name in ("content-type", "Content-Type", "X-DUP", "x-dup", "missing"):
        assert mapped.get(name) == headers.get(name)
        assert (name in mapped) == (name in headers)
    assert mapped["X-Ratelimit-Remaining-Requests"] == "4999"
    assert mapped.get("x-dup") == "a, b"
    assert len(mapped) == len(headers.keys())
    with pytest.raises(KeyError):
        mapped["missing"]


def test_protocols_read_the_same_rate_limits() -> None:
    headers = httpx.Headers(RAW)
    assert rate_limits(HeaderMap(headers.items())) == rate_limits(headers)


def test_repr_shows_names_never_values() -> None:
    text = repr(HeaderMap(httpx.Headers(RAW).items()))
    assert "authorization" in text
    assert "sk-response-secret" not in text
    assert "4999" not in text


def test_read_from_ascii_bytes_in_one_pass_answers_as_httpx() -> None:
    headers = httpx.Headers(RAW)
    fast = HeaderMap.from_ascii(headers.raw)
    assert dict(fast.items()) == dict(HeaderMap(headers.items()).items())
    assert fast.get("X-Dup") == headers.get("x-dup") == "a, b"
    assert fast["content-type"] == "application/json"
    with pytest.raises(UnicodeDecodeError):
        HeaderMap.from_ascii([(b"x-name", "café".encode())])


@pytest.mark.parametrize("encoding", ["utf-8", "iso-8859-1"])
def test_a_response_with_headers_beyond_ascii_is_decoded_as_httpx_decodes_it(
    encoding: str,
) -> None:
    raw = [*RAW, (b"X-Name", "café".encode(encoding))]
    response = httpx.Response(200, headers=raw)
    read = read_headers(response)
    assert read.get("x-name") == response.headers.get("x-name") == "café"
    assert read.get("x-dup") == "a, b"
    assert dict(read.items()) == dict(response.headers.items())
