"""The fake AWS Bedrock: the shared loopback server bound to the Bedrock wire module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web

from runtime.testing import _bedrock
from runtime.testing._provider import FakeProvider, _json
from runtime.testing._sigv4 import signature_matches
from runtime.testing._wire import Action, Wire


class FakeBedrock(FakeProvider):
    """A fake Bedrock runtime and control plane on one port.

    Serves ``POST /model/{modelId}/converse`` and ``/converse-stream`` (answers as binary
    AWS event-stream messages), ``/invoke`` for Cohere embed models, and
    ``GET /foundation-models[/{modelId}]``; ``base_url``
    has no version path, as ``https://bedrock-runtime.{region}.amazonaws.com`` has none.
    Every request needs an ``Authorization`` header: a SigV4 signature scoped to
    ``bedrock``, whose access key id is checked against ``keys``, or a Bedrock API key as
    ``Bearer``. ``secrets`` maps access key ids to their secret access keys: a request
    signed with one of them has its signature verified as AWS does (it needs botocore),
    and one that does not match is refused with 403 ``InvalidSignatureException``. An
    inference profile id (``us.<model>``) reaches ``<model>``. There are no rate-limit
    headers, and errors carry their exception name in ``x-amzn-ErrorType``.
    """

    wire: ClassVar[Wire] = _bedrock

    def __init__(self, *, secrets: Mapping[str, str] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.secrets: dict[str, str] = dict(secrets or {})

    async def _dispatch(self, action: Action, request: web.Request) -> web.StreamResponse:
        """Verify the signature of a request signed with a known secret, then answer it."""
        if self.secrets:
            body = await request.read()
            url = f"http://{request.headers.get('Host', request.host)}{request.raw_path}"
            matches = signature_matches(
                request.method, url, request.headers, body, secrets=self.secrets
            )
            if matches is False:
                return _json(_bedrock.signature_mismatch())
        return await super()._dispatch(action, request)
