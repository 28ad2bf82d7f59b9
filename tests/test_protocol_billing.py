"""Billing errors of every provider are ``quota``: the account, not the moment, is at fault."""

from __future__ import annotations

import json

import httpx
import pytest

from runtime._errors import ErrorKind
from runtime.protocols import PROTOCOLS
from runtime.testing import FAKES, Fail

pytestmark = pytest.mark.timeout(5)


@pytest.mark.parametrize(
    ("protocol", "fail"),
    [
        ("openai", Fail(429, code="insufficient_quota")),
        ("anthropic", Fail(402)),
        ("cohere", Fail(402)),
        ("replicate", Fail(402)),
    ],
)
def test_each_fakes_billing_error_is_quota(protocol, fail):
    """The billing error each fake sends, as its provider documents it, parses as quota."""
    reply = FAKES[protocol].wire.failure(fail, "some-model")
    body = json.dumps(reply.body).encode()
    error = PROTOCOLS[protocol].parse_error(reply.status, httpx.Headers(reply.headers), body)
    assert error.kind is ErrorKind.QUOTA
    assert not error.retryable
    assert not error.kind.counts_against_health


@pytest.mark.parametrize(
    ("protocol", "status", "headers", "body"),
    [
        (  # OpenRouter, DeepSeek and others: 402 for an empty balance
            "openai",
            402,
            {},
            {"error": {"message": "Insufficient credits", "code": 402}},
        ),
        (
            "openai",
            429,
            {},
            {
                "error": {
                    "message": "Billing hard limit has been reached",
                    "type": "invalid_request_error",
                    "code": "billing_hard_limit_reached",
                }
            },
        ),
        (
            "gemini",
            400,
            {},
            {
                "error": {
                    "code": 400,
                    "status": "FAILED_PRECONDITION",
                    "message": "Gemini API free tier is not available in your country. "
                    "Please enable billing on your project in Google AI Studio.",
                }
            },
        ),
        (
            "bedrock",
            403,
            {"x-amzn-errortype": "AccessDeniedException:http://internal.amazon.com/coral/"},
            {
                "message": "Model access is denied due to INVALID_PAYMENT_INSTRUMENT:"
                "A valid payment instrument must be provided."
            },
        ),
    ],
)
def test_documented_billing_errors_are_quota(protocol, status, headers, body):
    """Balances, hard limits, billing not enabled and no payment method: all quota."""
    raw = json.dumps(body).encode()
    error = PROTOCOLS[protocol].parse_error(status, httpx.Headers(headers), raw)
    assert error.kind is ErrorKind.QUOTA


def test_other_permission_errors_stay_permission():
    """A model the account may not use is permission, not quota."""
    body = {"message": "You don't have access to the model with the specified model ID."}
    headers = httpx.Headers({"x-amzn-errortype": "AccessDeniedException"})
    error = PROTOCOLS["bedrock"].parse_error(403, headers, json.dumps(body).encode())
    assert error.kind is ErrorKind.PERMISSION
