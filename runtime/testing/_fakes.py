"""The OpenAI, Anthropic and Gemini fakes, and `FAKES`: every fake by its protocol's name."""

from __future__ import annotations

from typing import ClassVar

from runtime.testing import _anthropic, _gemini, _openai
from runtime.testing._fakes_azure_replicate import FakeAzureOpenAI, FakeReplicate
from runtime.testing._fakes_bedrock import FakeBedrock
from runtime.testing._fakes_ollama_cohere import FakeCohere, FakeOllama
from runtime.testing._provider import FakeProvider
from runtime.testing._wire import Wire


class FakeOpenAI(FakeProvider):
    """A fake OpenAI Chat Completions API: ``POST /v1/chat/completions``, ``GET /v1/models``.

    Keys go in ``Authorization: Bearer``; answers carry ``x-ratelimit-*`` headers.
    """

    wire: ClassVar[Wire] = _openai


class FakeAnthropic(FakeProvider):
    """A fake Anthropic Messages API: ``POST /v1/messages``, ``GET /v1/models[/{model}]``.

    Keys go in ``x-api-key``, and ``anthropic-version`` is required; answers carry
    ``anthropic-ratelimit-*`` headers.
    """

    wire: ClassVar[Wire] = _anthropic


class FakeGemini(FakeProvider):
    """A fake Gemini API: ``models/{model}:generateContent``, ``:streamGenerateContent``.

    Keys go in ``x-goog-api-key`` or ``?key=``; there are no rate-limit headers, and a 429
    tells its wait in a ``RetryInfo`` detail.
    """

    wire: ClassVar[Wire] = _gemini


FAKES: dict[str, type[FakeProvider]] = {
    "openai": FakeOpenAI,
    "anthropic": FakeAnthropic,
    "gemini": FakeGemini,
    "azure_openai": FakeAzureOpenAI,
    "bedrock": FakeBedrock,
    "ollama": FakeOllama,
    "cohere": FakeCohere,
    "replicate": FakeReplicate,
}
"""Each fake by the name of its protocol (the ``type`` of a provider in the config)."""
