"""Every provider ``type`` a config may name, as rows of data.

A type is a wire protocol plus defaults: its base URL, how the key is sent, the
environment variable its key usually lives in, the config keys only it takes (Azure's
``deployment`` and ``api_version``, Bedrock's ``region``), whether it signs its requests,
and quirks. OpenAI-compatible services need no code of their own: each is a row on the
``openai`` protocol, and ``type = "openai"`` with a ``base_url`` serves any other. A new
wire API is one protocol module, one fake module, one row here, and their tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

TYPE_KEYS = ("deployment", "api_version", "region")
"""Provider keys that some types take and others do not (see `ProviderKind.keys`)."""
COMMON_AUTHS = ("default", "bearer", "api-key", "none")
"""``auth`` values every type accepts (see `ProviderKind.auths` for the others)."""
_VERSION_AT_END = re.compile(r"/v\d+(?:alpha|beta)?\d*$")
"""A URL path ending in an API version: ``/v1``, ``/v1beta``, ``/v1alpha``, ``/v2``."""


@dataclass(frozen=True, slots=True)
class ProviderKind:
    """One provider type: which protocol it speaks and its defaults."""

    name: str
    protocol: str
    """The wire protocol (a key of `runtime.protocols.PROTOCOLS`)."""
    base_url: str | None
    """The API root with its version path, maybe a template over the type's keys
    (``https://bedrock-runtime.{region}.amazonaws.com``); ``None``: the config must give one."""
    key_env: str | None = None
    """The environment variable the provider's own tools read the key from."""
    needs_key: bool = True
    """Whether a key is required (for the default ``auth``)."""
    keyless_own_server: bool = False
    """A provider of this type with its own ``base_url`` may take no key (any server that
    speaks OpenAI's API)."""
    keyed_auths: tuple[str, ...] = ()
    """``auth`` values that need a key even when the type needs none by default."""
    auth: str = "default"
    """How the key is sent (see `Endpoint.auth`)."""
    auths: tuple[str, ...] = ()
    """``auth`` values this type takes besides `COMMON_AUTHS` (Azure ``entra``)."""
    keys: tuple[str, ...] = ()
    """Which of `TYPE_KEYS` this type takes; each becomes an `Endpoint` option when set."""
    option_defaults: tuple[tuple[str, str], ...] = ()
    """Options used when the config sets none; ``{model}`` is the provider's model."""
    url_defaults: tuple[tuple[str, str], ...] = ()
    """Values for the base URL's template when the config sets none."""
    base_url_example: str | None = None
    """An example for the error that asks for a ``base_url`` this type needs."""
    signing: str | None = None
    """The request signing scheme (``"sigv4"``), used with the `signed_auths`."""
    signed_auths: tuple[str, ...] = ()
    """``auth`` values under which requests are signed instead of carrying a key."""
    credentials_hint: str | None = None
    """Where signing credentials come from, for error advice."""
    options: tuple[tuple[str, str], ...] = ()
    """Quirks passed to the protocol (see `Endpoint.options`)."""
    extra: str | None = None
    """The optional extra of callboard this type needs (``pip install 'callboard[...]'``)."""
    version_path: str | None = None
    """The version path that this type's own SDK adds to the base URL it is given
    (Anthropic's ``/v1``, Gemini's ``/v1beta``): a ``base_url`` that ends in no version
    gets it, so that the SDK's convention (``https://api.anthropic.com``) works as well as
    callboard's (``https://api.anthropic.com/v1``)."""

    def resolved_auth(self, auth: str) -> str:
        """Return how the key is sent under a config's ``auth``."""
        return self.auth if auth == "default" else auth

    def signs(self, auth: str) -> bool:
        """Whether requests are signed (not keyed) under a config's ``auth``."""
        return self.signing is not None and auth in self.signed_auths

    def needs_key_for(self, auth: str, *, own_base_url: bool) -> bool:
        """Whether a provider of this type with this ``auth`` must give an ``api_key``."""
        if auth in self.keyed_auths:
            return True
        if auth == "none" or self.signs(auth):
            return False
        return self.needs_key and not (self.keyless_own_server and own_base_url)

    def versioned(self, base_url: str) -> str:
        """Return a configured ``base_url`` with the `version_path` its SDK would add."""
        trimmed = base_url.rstrip("/")
        if self.version_path is None or _VERSION_AT_END.search(trimmed):
            return trimmed
        return trimmed + self.version_path

    def default_base_url(self, keys: Mapping[str, str]) -> str | None:
        """Return the type's base URL for a provider whose type keys are ``keys``."""
        if self.base_url is None:
            return None
        return self.base_url.format_map({**dict(self.url_defaults), **keys})

    def endpoint_options(self, keys: Mapping[str, str], model: str) -> dict[str, str]:
        """Return the protocol options for a provider whose type keys are ``keys``."""
        options = dict(self.options)
        options.update({name: value.format(model=model) for name, value in self.option_defaults})
        options.update(keys)
        return options


AZURE_API_VERSION = "2024-10-21"
"""The Azure OpenAI data-plane API version used when a provider sets none."""
AWS_CREDENTIALS = "the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)"

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
            ProviderKind(
                "openai",
                "openai",
                "https://api.openai.com/v1",
                "OPENAI_API_KEY",
                keyless_own_server=True,
            ),
            ProviderKind(
                "anthropic",
                "anthropic",
                "https://api.anthropic.com/v1",
                "ANTHROPIC_API_KEY",
                version_path="/v1",
            ),
            ProviderKind(
                "gemini",
                "gemini",
                "https://generativelanguage.googleapis.com/v1beta",
                "GEMINI_API_KEY",
                version_path="/v1beta",
            ),
            ProviderKind(
                "azure_openai",
                "azure_openai",
                None,
                "AZURE_OPENAI_API_KEY",
                auths=("entra",),
                keys=("deployment", "api_version"),
                option_defaults=(("deployment", "{model}"), ("api_version", AZURE_API_VERSION)),
                base_url_example="https://<resource>.openai.azure.com",
            ),
            ProviderKind(
                "bedrock",
                "bedrock",
                "https://bedrock-runtime.{region}.amazonaws.com",
                needs_key=False,
                keyed_auths=("api-key", "bearer"),
                auths=("sigv4",),
                keys=("region",),
                url_defaults=(("region", "us-east-1"),),
                signing="sigv4",
                signed_auths=("default", "sigv4"),
                credentials_hint=AWS_CREDENTIALS,
                extra="bedrock",
            ),
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


def types_taking(key: str) -> tuple[str, ...]:
    """Return the types that take the type key ``key`` (one of `TYPE_KEYS`)."""
    return tuple(kind.name for kind in KINDS.values() if key in kind.keys)


def types_with_auth(auth: str) -> tuple[str, ...]:
    """Return the types that take ``auth`` as one of their own `ProviderKind.auths`."""
    return tuple(kind.name for kind in KINDS.values() if auth in kind.auths)
