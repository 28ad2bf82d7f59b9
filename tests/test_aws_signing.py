import datetime as dt
import re
import sys

import httpx
import pytest

from runtime._errors import ErrorKind, MissingExtraError, ProviderError
from runtime._transport.aws import NO_CREDENTIALS, sigv4_signer

pytestmark = pytest.mark.timeout(10)

# The access key and secret of AWS's published SigV4 test suite.
ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CONVERSE = "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-pro-v1%3A0/converse"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)"
    r"/(?P<service>[a-z-]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


@pytest.fixture
def keys(no_aws, monkeypatch):
    """Fixed credentials in the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


@pytest.fixture
def clock(monkeypatch):
    """Set the time botocore signs at; returns the setter."""

    def at(*moment: int) -> None:
        when = dt.datetime(*moment)  # noqa: DTZ001 - botocore's clock is naive UTC
        monkeypatch.setattr("botocore.auth.get_current_datetime", lambda *_, **__: when)

    return at


def _converse(url=CONVERSE, body=b'{"messages":[]}') -> httpx.Request:
    return httpx.Request(
        "POST",
        url,
        headers={"content-type": "application/json", "user-agent": "callboard/0.1"},
        content=body,
    )


def _signature(request: httpx.Request) -> re.Match[str]:
    found = AUTHORIZATION.fullmatch(request.headers["authorization"])
    assert found is not None, "Authorization is not a SigV4 header"
    return found


def test_signing_matches_awss_published_get_vanilla_example(keys, clock):
    """The request of AWS's ``get-vanilla`` test gets AWS's published signature."""
    clock(2015, 8, 30, 12, 36, 0)
    request = httpx.Request("GET", "https://example.amazonaws.com/")
    sigv4_signer("us-east-1", "service")(request)
    assert request.headers["x-amz-date"] == "20150830T123600Z"
    assert request.headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


def test_a_bedrock_request_is_signed_for_bedrock_in_its_region(keys, clock):
    """The credential scope names the key, the date, the region and ``bedrock``."""
    clock(2026, 11, 23, 9, 30, 0)
    request = _converse()
    sigv4_signer("us-east-1")(request)
    found = _signature(request)
    assert (found["key"], found["date"], found["region"], found["service"]) == (
        ACCESS_KEY,
        "20261123",
        "us-east-1",
        "bedrock",
    )
    assert found["signed"] == "content-length;content-type;host;x-amz-date"
    assert request.headers["x-amz-date"] == "20261123T093000Z"
    assert "x-amz-security-token" not in request.headers


def test_a_second_signing_uses_its_own_timestamp(keys, clock):
    """Each signing stamps the request with its own time and signs with that date."""
    sign = sigv4_signer("eu-west-1")
    clock(2026, 11, 23, 23, 59, 59)
    first = _converse()
    sign(first)
    clock(2026, 11, 24, 0, 0, 5)
    second = _converse()
    sign(second)
    assert first.headers["x-amz-date"] == "20261123T235959Z"
    assert second.headers["x-amz-date"] == "20261124T000005Z"
    assert (_signature(first)["date"], _signature(second)["date"]) == ("20261123", "20261124")
    assert _signature(first)["signature"] != _signature(second)["signature"]


def test_signing_again_replaces_the_earlier_signature(keys, clock):
    """A request signed again (a retry) carries one fresh signature, not two."""
    sign = sigv4_signer("us-east-1")
    clock(2026, 11, 23, 9, 0, 0)
    request = _converse()
    sign(request)
    before = request.headers["authorization"]
    clock(2026, 11, 23, 9, 5, 0)
    sign(request)
    assert request.headers.get_list("authorization") == [request.headers["authorization"]]
    assert request.headers.get_list("x-amz-date") == ["20261123T090500Z"]
    assert request.headers["authorization"] != before


def test_the_path_is_signed_as_the_transport_sends_it(keys, clock):
    """``%3A`` in the model id is unescaped first, so signed and sent paths agree."""
    clock(2026, 11, 23, 9, 0, 0)
    sign = sigv4_signer("us-east-1")
    escaped = _converse()
    bare = _converse(CONVERSE.replace("%3A", ":"))
    sign(escaped)
    sign(bare)
    assert escaped.url.raw_path == b"/model/amazon.nova-pro-v1:0/converse"
    assert escaped.headers["authorization"] == bare.headers["authorization"]


def test_the_body_is_part_of_the_signature(keys, clock):
    """Two bodies of one length sign differently: the payload hash is in the signature."""
    clock(2026, 11, 23, 9, 0, 0)
    sign = sigv4_signer("us-east-1")
    one, other = _converse(), _converse(body=b'{"messages":{}}')
    sign(one)
    sign(other)
    assert _signature(one)["signature"] != _signature(other)["signature"]


def test_temporary_credentials_send_and_sign_their_session_token(keys, clock, monkeypatch):
    """With a session token, ``X-Amz-Security-Token`` is sent and signed."""
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FQoGZXIvYXdzEXAMPLETOKEN")
    clock(2026, 11, 23, 9, 0, 0)
    request = _converse()
    sigv4_signer("us-east-1")(request)
    assert request.headers["x-amz-security-token"] == "FQoGZXIvYXdzEXAMPLETOKEN"
    assert "x-amz-security-token" in _signature(request)["signed"].split(";")


def test_a_profile_from_the_shared_credentials_file_is_used(no_aws, clock):
    """A named profile of the shared credentials file supplies the key."""
    (no_aws / "credentials").write_text(
        "[bedrock-dev]\naws_access_key_id = AKIAPROFILEKEY\n"
        "aws_secret_access_key = profile/secret/EXAMPLEKEY\n"
    )
    clock(2026, 11, 23, 9, 0, 0)
    request = _converse()
    sigv4_signer("us-east-1", profile="bedrock-dev")(request)
    assert _signature(request)["key"] == "AKIAPROFILEKEY"


def test_no_secret_is_ever_shown(keys, clock):
    """Neither the signer's repr nor the signed headers hold the secret key."""
    clock(2026, 11, 23, 9, 0, 0)
    sign = sigv4_signer("us-east-1")
    request = _converse()
    sign(request)
    assert repr(sign) == "SigV4Signer(service='bedrock', region='us-east-1')"
    assert all(SECRET not in value for value in request.headers.values())


def test_no_credentials_is_an_auth_error_saying_what_to_set(no_aws):
    """Without credentials anywhere, making a signer fails with advice, as ``auth``."""
    with pytest.raises(ProviderError) as caught:
        sigv4_signer("us-east-1")
    assert caught.value.kind is ErrorKind.AUTH
    assert caught.value.message == NO_CREDENTIALS
    assert "AWS_ACCESS_KEY_ID" in NO_CREDENTIALS
    assert 'auth = "api-key"' in NO_CREDENTIALS


def test_an_unknown_profile_is_an_auth_error(no_aws):
    """A profile the config files do not define fails as ``auth``, naming it."""
    with pytest.raises(ProviderError) as caught:
        sigv4_signer("us-east-1", profile="nowhere")
    assert caught.value.kind is ErrorKind.AUTH
    assert "nowhere" in caught.value.message


def test_without_botocore_signing_asks_for_the_extra(monkeypatch):
    """Without botocore, making a signer fails with `MissingExtraError` naming the extra."""
    monkeypatch.setitem(sys.modules, "botocore.session", None)
    with pytest.raises(MissingExtraError, match=r"callboard\[bedrock\]"):
        sigv4_signer("us-east-1")
