"""What calls cost: a price table per model, and the cost of one call.

Prices are US dollars per million tokens: input, output, cached input (prompt-cache
reads) and cache writes (Anthropic's, also through Bedrock). A model's price comes from, in
order: `[prices."<model>"]` in the config; zero for a local provider type (Ollama, vLLM,
LM Studio); the maintained catalogue (`price_source`, by provider type); callboard's own
table below. A model with no known price has an unknown cost (``None``), never zero.
A price the catalogue sets by time (DeepSeek's off-peak hours) is read for the moment asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from runtime._config.price_source import LOCAL_TYPES, catalogue_entry, catalogue_version


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


FREE = Price(0.0, 0.0)


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """A model's price and where the figure comes from."""

    price: Price
    source: str
    """``config [prices."m"]``, ``local provider``, ``genai-prices 0.2.5 (aws: m)``,
    or ``callboard's table``."""


def _utc_now() -> datetime:
    return datetime.now(tz=UTC)


class PriceTable:
    """Looks up a model's price: the config's overrides, then by provider type.

    ``clock`` gives the moment a price is asked for (the wall clock in UTC); it matters
    only for the catalogue's prices set by time.
    """

    def __init__(
        self,
        overrides: Mapping[str, Price] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._overrides = dict(overrides or {})
        self._clock = clock
        self._quotes: dict[tuple[str, str | None], PriceQuote | None] = {}
        """Answers already found: a call's price is looked up once per model and type,
        except a price set by time, which is looked up for each call."""

    def price(self, model: str, provider_type: str | None = None) -> Price | None:
        """Return the price of ``model`` served by ``provider_type``; ``None``: unknown."""
        quote = self.quote(model, provider_type)
        return None if quote is None else quote.price

    def quote(self, model: str, provider_type: str | None = None) -> PriceQuote | None:
        """Return the price of ``model`` and its source, or ``None`` when it is not known.

        ``models/`` prefixes (Gemini) are ignored, and a snapshot suffix falls back to its
        base model in the overrides and callboard's table (``gpt-4o-2024-08-06`` is priced
        as ``gpt-4o``); other suffixes do not (``gpt-4o-audio`` is not ``gpt-4o``).
        """
        key = (model, provider_type)
        if key in self._quotes:
            return self._quotes[key]
        quote, varies = self._find(model, provider_type)
        if not varies:
            self._quotes[key] = quote
        return quote

    def _find(self, model: str, provider_type: str | None) -> tuple[PriceQuote | None, bool]:
        """Return the quote, and whether it changes with time (then it is not kept)."""
        found = _by_name(self._overrides, model)
        if found is not None:
            return PriceQuote(found[1], f'config [prices."{found[0]}"]'), False
        if provider_type in LOCAL_TYPES:
            return PriceQuote(FREE, f"local provider ({provider_type}): free"), False
        entry = catalogue_entry(model, provider_type, self._clock())
        if entry is not None:
            price = Price(entry.input, entry.output, entry.cached_input, entry.cache_write)
            by_time = ", by time of day or date" if entry.varies else ""
            source = (
                f"genai-prices {catalogue_version()} ({entry.provider}: {entry.model}{by_time})"
            )
            return PriceQuote(price, source), entry.varies
        found = _by_name(DEFAULT_PRICES, model)
        if found is not None:
            return PriceQuote(found[1], f"callboard's table ({found[0]})"), False
        return None, False

    def cost(
        self,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        *,
        provider_type: str | None = None,
    ) -> float | None:
        """Return the cost in US dollars of one call, or ``None`` when the price is unknown.

        ``cached_tokens`` (cache reads) and ``cache_write_tokens`` are part of
        ``input_tokens``, billed at the cached and cache-write rates.
        """
        price = self.price(model, provider_type)
        if price is None:
            return None
        cached = min(cached_tokens, input_tokens)
        written = min(cache_write_tokens, input_tokens - cached)
        cached_rate = price.input if price.cached_input is None else price.cached_input
        write_rate = price.input if price.cache_write is None else price.cache_write
        total = (input_tokens - cached - written) * price.input
        total += cached * cached_rate + written * write_rate + output_tokens * price.output
        return total / 1_000_000


def _by_name(prices: Mapping[str, Price], model: str) -> tuple[str, Price] | None:
    """Return the entry of ``prices`` for ``model`` or the base of its snapshot name."""
    if model in prices:
        return model, prices[model]
    name = model.removeprefix("models/")
    while True:
        if name in prices:
            return name, prices[name]
        base = _SNAPSHOT.sub("", name)
        if base == name:
            return None
        name = base
