"""`FAKES`: every fake provider by the name of the wire protocol it speaks."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from runtime.testing._anthropic import FakeAnthropic
from runtime.testing._azure import FakeAzureOpenAI
from runtime.testing._bedrock import FakeBedrock
from runtime.testing._cohere import FakeCohere
from runtime.testing._gemini import FakeGemini
from runtime.testing._ollama import FakeOllama
from runtime.testing._openai import FakeOpenAI
from runtime.testing._provider import FakeProvider
from runtime.testing._replicate import FakeReplicate

FAKES: Mapping[str, type[FakeProvider]] = MappingProxyType(
    {
        "openai": FakeOpenAI,
        "anthropic": FakeAnthropic,
        "gemini": FakeGemini,
        "azure_openai": FakeAzureOpenAI,
        "bedrock": FakeBedrock,
        "ollama": FakeOllama,
        "cohere": FakeCohere,
        "replicate": FakeReplicate,
    }
)
"""Each fake by the name of its protocol (the ``type`` of a provider in the config)."""
