"""Every provider ``type`` a config may name, as rows of data.

A type is a wire protocol plus defaults: its base URL, how the key is sent, the
environment variable its key usually lives in, and quirks. OpenAI-compatible services
need no code of their own: each is a row on the ``openai`` protocol, and
``type = "openai"`` with a ``base_url`` serves any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class ProviderKind:
    """One provider type: which protocol it speaks and its defaults."""

    name: str
    protocol: str
    """The wire protocol (a key of `runtime.protocols.PROTOCOLS`)."""
    base_url: str | None
    """The API root with its version path; ``None``: the config must give one."""
    key_env: str | None = None
    """The environment variable the provider's own tools read the key from."""
    needs_key: bool = True
    auth: str = "default"
    """How the key is sent (see `Endpoint.auth`)."""
    options: tuple[tuple[str, str], ...] = ()
    """Quirks passed to the protocol (see `Endpoint.options`)."""
    extra: str | None = None
    """The optional extra of callboard this type needs (``pip install 'callboard[...]'``)."""


_OPENAI_COMPATIBLE = (
    ProviderKind("groq", "openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    ProviderKind("deepseek", "openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    ProviderKind("together", "openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    ProviderKind("mistral", "openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    ProviderKind("openrouter", "openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    ProviderKind(
        "fireworks", "openai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"
    ),
    ProviderKind("huggingface", "openai", "https://router.huggingface.co/v1", "HF_TOKEN"),
    ProviderKind("vllm", "openai", "http://localhost:8000/v1", needs_key=False),
    ProviderKind("lmstudio", "openai", "http://localhost:1234/v1", needs_key=False),
)

KINDS: Mapping[str, ProviderKind] = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            ProviderKind("openai", "openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
            ProviderKind(
                "anthropic", "anthropic", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"
            ),
            ProviderKind(
                "gemini",
                "gemini",
                "https://generativelanguage.googleapis.com/v1beta",
                "GEMINI_API_KEY",
            ),
            ProviderKind("azure_openai", "azure_openai", None, "AZURE_OPENAI_API_KEY"),
            ProviderKind("bedrock", "bedrock", None, needs_key=False, extra="bedrock"),
            ProviderKind("ollama", "ollama", "http://localhost:11434", needs_key=False),
            ProviderKind("cohere", "cohere", "https://api.cohere.com", "CO_API_KEY"),
            ProviderKind(
                "replicate", "replicate", "https://api.replicate.com/v1", "REPLICATE_API_TOKEN"
            ),
            *_OPENAI_COMPATIBLE,
        )
    }
)
"""Every provider type, by the name a config gives in ``type``."""
