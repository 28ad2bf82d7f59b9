"""`HeaderMap`: response headers read once answer every lookup as ``httpx.Headers`` does."""

from __future__ import annotations

import httpx
import pytest

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
