"""Checking a request's AWS SigV4 signature as AWS does, for the fake Bedrock.

The fake knows the secret of each access key it was given. It rebuilds the canonical
request from what arrived (method, raw path and query, the headers named in
``SignedHeaders``, the body) at the time in ``X-Amz-Date``, and signs it again with
botocore's own SigV4 code (the ``bedrock`` extra): a request whose path, headers or body
changed after it was signed, or that was signed with another secret, does not match.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s,]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)"
    r"/(?P<service>[\w-]+)/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def signature_matches(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Mapping[str, str],
) -> bool | None:
    """Whether the request's signature is the one its access key's secret makes.

    ``url`` is the URL as it arrived: the host, and the path and query exactly as sent.

    ``None`` when it cannot be told: no SigV4 ``Authorization``, or an access key whose
    secret is not in ``secrets`` (only its id is checked then).
    """
    found = _AUTHORIZATION.fullmatch(headers.get("Authorization", "").strip())
    if found is None or found["key"] not in secrets:
        return None
    from botocore.auth import SigV4Auth  # noqa: PLC0415 - the bedrock extra, for fakes that check
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415
    from botocore.credentials import Credentials  # noqa: PLC0415

    names = found["signed"].split(";")
    lowered = {name.lower(): value for name, value in headers.items()}
    signed = {name: lowered[name] for name in names if name in lowered}
    request = AWSRequest(method=method, url=url, headers=signed, data=body)
    request.context["timestamp"] = lowered.get("x-amz-date", "")
    auth = SigV4Auth(
        Credentials(found["key"], secrets[found["key"]]), found["service"], found["region"]
    )
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    return hmac.compare_digest(expected, found["signature"])
