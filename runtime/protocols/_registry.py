"""Every wire protocol, keyed by its name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from runtime.protocols import (
    _anthropic,
    _azure,
    _bedrock,
    _cohere,
    _gemini,
    _ollama,
    _openai,
    _replicate,
)
from runtime.protocols._base import WireProtocol

PROTOCOLS: Mapping[str, WireProtocol] = MappingProxyType(
    {
        protocol.name: protocol
        for protocol in (
            _openai.PROTOCOL,
            _anthropic.PROTOCOL,
            _gemini.PROTOCOL,
            _azure.PROTOCOL,
            _bedrock.PROTOCOL,
            _ollama.PROTOCOL,
            _cohere.PROTOCOL,
            _replicate.PROTOCOL,
        )
    }
)
"""Every wire protocol, keyed by its name."""
