"""The fake Ollama and Cohere providers: the shared server bound to their protocol modules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from runtime.testing import _cohere, _ollama
from runtime.testing._provider import FakeProvider
from runtime.testing._wire import EmbedWire


class FakeOllama(FakeProvider):
    """A fake Ollama server: ``POST /api/chat`` (NDJSON streams), ``/api/tags``, ``/api/embed``.

    The base URL has no version path. ``keys=None`` (the default) takes requests without a
    key, as a local Ollama does; given keys, it wants ``Authorization: Bearer`` as Ollama
    behind a proxy does. Models are named with their tag (``llama3.2:latest``); a request
    for ``llama3.2`` means ``llama3.2:latest``.
    """

    wire: ClassVar[EmbedWire] = _ollama

    def __init__(self, *, models: str | Iterable[str] | None = None, **options: Any) -> None:
        super().__init__(models=models, **options)
        self.models = tuple(_ollama.tagged(model) for model in self.models)


class FakeCohere(FakeProvider):
    """A fake Cohere v2 API: ``POST /v2/chat``, ``/v2/embed``, ``GET /v1/models[/{model}]``.

    The base URL has no version path (Cohere's paths carry theirs). Keys go in
    ``Authorization: Bearer``; answers carry a trial key's ``x-trial-endpoint-call-*``
    headers.
    """

    wire: ClassVar[EmbedWire] = _cohere
