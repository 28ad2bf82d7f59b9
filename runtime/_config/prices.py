"""What calls cost: a price table per model, and the cost of one call.

Prices are US dollars per million tokens: input, output, cached input (prompt-cache
reads) and cache writes (Anthropic's, also through Bedrock). The defaults are list
prices as published in late 2026 for the common models of each provider;
`[prices."<model>"]` in the config overrides or adds any. A model with no known price
has an unknown cost (``None``), never zero.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cached_input: float | None = None
    """Cache reads; ``None``: billed as ordinary input."""
    cache_write: float | None = None
    """Cache writes; ``None``: billed as ordinary input."""


DEFAULT_PRICES: Mapping[str, Price] = {
    # OpenAI
    "gpt-5": Price(1.25, 10.0, 0.125),
    "gpt-5-mini": Price(0.25, 2.0, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.005),
    "gpt-4.1": Price(2.0, 8.0, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "gpt-4o": Price(2.50, 10.0, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "o3": Price(2.0, 8.0, 0.50),
    "o3-mini": Price(1.10, 4.40, 0.55),
    "o4-mini": Price(1.10, 4.40, 0.275),
    # Anthropic (cache reads are a tenth of input; writes to the 5-minute cache 1.25x)
    "claude-opus-4-1": Price(15.0, 75.0, 1.50, 18.75),
    "claude-opus-4": Price(15.0, 75.0, 1.50, 18.75),
    "claude-sonnet-4-5": Price(3.0, 15.0, 0.30, 3.75),
    "claude-sonnet-4": Price(3.0, 15.0, 0.30, 3.75),
    "claude-haiku-4-5": Price(1.0, 5.0, 0.10, 1.25),
    "claude-3-5-haiku": Price(0.80, 4.0, 0.08, 1.0),
    # Google Gemini (prompts up to 200k tokens)
    "gemini-2.5-pro": Price(1.25, 10.0, 0.31),
    "gemini-2.5-flash": Price(0.30, 2.50, 0.075),
    "gemini-2.5-flash-lite": Price(0.10, 0.40, 0.025),
    "gemini-2.0-flash": Price(0.10, 0.40, 0.025),
}

_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{3,4}|latest|preview(-\d{2}-\d{4})?)$")
"""A dated or versioned snapshot of a model: ``gpt-4o-2024-08-06``,
``claude-sonnet-4-5-20250929``, ``gemini-2.5-flash-preview-05-2025``, ``...-latest``."""


class PriceTable:
    """Looks up a model's price: exactly, or as a dated snapshot of a known model."""

    def __init__(self, overrides: Mapping[str, Price] | None = None) -> None:
        self._prices = {**DEFAULT_PRICES, **(overrides or {})}

    def price(self, model: str) -> Price | None:
        """Return the price of ``model``, or ``None`` when it is not known.

        ``models/`` prefixes (Gemini) are ignored, and a snapshot suffix falls back to its
        base model (``gpt-4o-2024-08-06`` is priced as ``gpt-4o``); other suffixes do
        not (``gpt-4o-audio`` is not ``gpt-4o``).
        """
        name = model.removeprefix("models/")
        while True:
            if name in self._prices:
                return self._prices[name]
            base = _SNAPSHOT.sub("", name)
            if base == name:
                return None
            name = base

    def cost(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float | None:
        """Return the cost in US dollars of one call, or ``None`` when the price is unknown.

        ``cached_tokens`` (cache reads) and ``cache_write_tokens`` are part of
        ``input_tokens``, billed at the cached and cache-write rates.
        """
        price = self.price(model)
        if price is None:
            return None
        cached = min(cached_tokens, input_tokens)
        written = min(cache_write_tokens, input_tokens - cached)
        cached_rate = price.input if price.cached_input is None else price.cached_input
        write_rate = price.input if price.cache_write is None else price.cache_write
        total = (input_tokens - cached - written) * price.input
        total += cached * cached_rate + written * write_rate + output_tokens * price.output
        return total / 1_000_000
