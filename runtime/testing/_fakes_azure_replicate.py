"""The fake Azure OpenAI and Replicate providers: the shared server bound to their modules."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, ClassVar

from aiohttp import web

from runtime.testing import _azure, _replicate
from runtime.testing._completion import ChatAsk
from runtime.testing._provider import FakeProvider
from runtime.testing._wire import EmbedWire, Wire


class FakeAzureOpenAI(FakeProvider):
    """A fake Azure OpenAI resource: ``/openai/deployments/{deployment}/chat/completions``.

    Also ``.../embeddings`` and ``GET /openai/models``, each wanting ``?api-version=``. The
    base URL is the resource endpoint, with no path; ``models`` are the deployment names
    (a chat for any other is ``DeploymentNotFound``). Keys go in ``api-key``, or as
    ``Authorization: Bearer`` for Microsoft Entra ID tokens; ``keys`` holds both kinds. A
    429 always tells its wait, in ``retry-after-ms``, ``retry-after`` and its message (1 s
    unless ``Fail.retry_after_s`` says); answers carry ``x-ratelimit-remaining-*``.
    """

    wire: ClassVar[EmbedWire] = _azure


class FakeReplicate(FakeProvider):
    """A fake Replicate API: predictions, sync or streamed, ``GET /v1/models[/{owner}/{name}]``.

    ``models`` are ``owner/name`` (run with ``POST /v1/models/{owner}/{name}/predictions``)
    or ``owner/name:version`` (run with ``POST /v1/predictions`` and that ``version``, the
    id alone or the full name); a pinned model also offers its ``owner/name``. Tokens go in
    ``Authorization: Bearer``. A create call answers HTTP 201 with the prediction as sync
    mode returns it; ``Answer(finish="processing")`` answers one still running when the
    wait ran out, ``Fail(201, code="failed", message=...)`` one that failed. With
    ``"stream": true`` it answers the prediction ``starting``, whose ``urls.stream`` and
    then ``urls.get`` are served by the fake (a `StreamError` breaks the stream with an
    ``error`` event; a `Stall` stalls it).
    """

    wire: ClassVar[Wire] = _replicate

    def __init__(self, *, models: str | Iterable[str] | None = None, **options: Any) -> None:
        super().__init__(models=models, **options)
        self.models = _replicate.with_model_names(self.models)

    def _read_ask(self, request: web.Request, model: str | None, *, stream: bool) -> ChatAsk:
        ask = super()._read_ask(request, model, stream=stream)
        return dataclasses.replace(ask, model=_replicate.pinned(ask.model, self.models))
