"""Every wire protocol, keyed by its name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from runtime.protocols import _anthropic, _gemini, _openai
from runtime.protocols._base import WireProtocol

PROTOCOLS: Mapping[str, WireProtocol] = MappingProxyType(
    {p.name: p for p in (_openai.PROTOCOL, _anthropic.PROTOCOL, _gemini.PROTOCOL)}
)
"""Every wire protocol, keyed by its name."""
