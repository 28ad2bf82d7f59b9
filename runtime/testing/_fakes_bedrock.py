"""The fake AWS Bedrock: the shared loopback server bound to the Bedrock wire module."""

from __future__ import annotations

from typing import ClassVar

from runtime.testing import _bedrock
from runtime.testing._provider import FakeProvider
from runtime.testing._wire import Wire


class FakeBedrock(FakeProvider):
    """A fake Bedrock runtime and control plane on one port.

    Serves ``POST /model/{modelId}/converse`` and ``/converse-stream`` (answers as binary
    AWS event-stream messages), ``/invoke`` for Cohere embed models, and
    ``GET /foundation-models[/{modelId}]``; ``base_url``
    has no version path, as ``https://bedrock-runtime.{region}.amazonaws.com`` has none.
    Every request needs an ``Authorization`` header: a SigV4 signature scoped to
    ``bedrock``, whose access key id is checked against ``keys``, or a Bedrock API key as
    ``Bearer``; signatures are not verified. An inference profile id (``us.<model>``)
    reaches ``<model>``. There are no rate-limit headers, and errors carry their exception
    name in ``x-amzn-ErrorType``.
    """

    wire: ClassVar[Wire] = _bedrock
