"""Prices from a maintained catalogue: the ``genai-prices`` package (Pydantic's), by type.

Hugging Face's router is priced at the backend a model names (``org/model:novita``) or the
first backend the catalogue knows for it.
A callboard provider type maps to the catalogue's provider (``gemini`` is its ``google``,
``azure_openai`` its ``azure``, ``bedrock`` its ``aws``); model names are matched by the
catalogue's own rules (snapshots, aliases, Bedrock inference profiles such as
``us.anthropic.claude-sonnet-4-5-20250929-v1:0``). Types the catalogue has no provider for
(Replicate) are looked up by model name alone, and a name with an
owner or path (``meta/meta-llama-3-70b-instruct``, ``accounts/fireworks/models/X``) is tried
by its last part too. The catalogue is
imported on the first look-up (it is large: most of a second), never refreshed over the
network. Rates are the base tier's: a provider's higher rate past a long prompt is not applied.
Some rates change with time (DeepSeek's off-peak hours, a price cut from a date): those are
read for the moment asked, so a board that runs for weeks prices each call at its own hour.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CATALOGUE_PROVIDER = {
    "gemini": "google",
    "azure_openai": "azure",
    "bedrock": "aws",
    "replicate": None,
    "huggingface": None,
}
"""The catalogue's provider for callboard types whose name differs (``None``: by model alone)."""

LOCAL_TYPES = frozenset({"ollama", "vllm", "lmstudio"})
"""Types that run on the user's own machines: free unless ``[prices]`` says otherwise."""


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """A model's rates in the catalogue, US dollars per million tokens."""

    input: float
    output: float
    cached_input: float | None
    cache_write: float | None
    provider: str
    """The catalogue's provider id."""
    model: str
    """The catalogue's model id the name matched."""
    varies: bool = False
    """The catalogue prices this model by time (of day, or from a date): ask again per call."""


@dataclass(frozen=True, slots=True)
class _Found:
    """A model found in the catalogue: its rates, fixed or by time."""

    provider: str
    model: str
    info: Any
    """The catalogue's `ModelInfo`."""
    fixed: CatalogueEntry | None
    """The rates when they never change; ``None``: read them for the moment asked."""

    def at(self, when: datetime | None) -> CatalogueEntry | None:
        """Return the rates in force at ``when`` (now when ``None``)."""
        if self.fixed is not None:
            return self.fixed
        prices = self.info.get_prices(when or datetime.now(tz=UTC))
        return _entry(prices, self.provider, self.model, varies=True)


def load_catalogue() -> None:
    """Load the catalogue now (``from runtime import Callboard`` does)."""
    _lookup("gpt-4o", "openai")


_loader: threading.Thread | None = None
_loader_lock = threading.Lock()


def load_catalogue_in_background() -> None:
    """Start loading the catalogue on a thread of its own, once per process, unless loaded.

    ``from runtime import Callboard`` has loaded it already; a board imported on its own
    (the command line, the gateway) loads it in the background as it starts. A load still
    running as the board makes its first call holds the GIL against that call and keeps
    it waiting for its price (tens of milliseconds).
    """
    global _loader  # noqa: PLW0603 - one loader per process
    with _loader_lock:
        if _loader is None and not _lookup.cache_info().currsize:
            _loader = threading.Thread(target=load_catalogue, name="callboard-prices", daemon=True)
            _loader.start()


def wait_for_catalogue(timeout_s: float) -> None:
    """Let a background load finish before an interrupt leaves the caller's code.

    Loading defines dataclasses and evaluates annotations, which run ``exec``/``eval`` on
    strings; one run after an unhandled KeyboardInterrupt has left ``__main__`` makes the
    interpreter forget that it should exit as killed by SIGINT (status 130), so the load
    must be over before the interrupt leaves the program's code.
    """
    loader = _loader
    if loader is not None:
        loader.join(timeout_s)


def catalogue_version() -> str:
    """Return the version of the installed catalogue (``genai-prices``)."""
    import genai_prices  # noqa: PLC0415 - large; imported on first use

    return str(genai_prices.__version__)


def catalogue_entry(
    model: str, provider_type: str | None, when: datetime | None = None
) -> CatalogueEntry | None:
    """Return the catalogue's rates for ``model`` served by ``provider_type`` at ``when``.

    ``when`` defaults to now; ``None`` comes back for a model the catalogue does not price
    in tokens.
    """
    found = _find(model, provider_type)
    return None if found is None else found.at(when)


def _find(model: str, provider_type: str | None) -> _Found | None:
    provider_id = CATALOGUE_PROVIDER.get(provider_type, provider_type) if provider_type else None
    name = _bare(model)
    if provider_type == "huggingface":
        return _hugging_face(name)
    short = name.rsplit("/", 1)[-1].split(":", 1)[0]
    for ref, provider in ((name, provider_id), (short, provider_id), (short, None)):
        entry = _lookup(ref, provider)
        if entry is not None:
            return entry
    return None


def _hugging_face(model: str) -> _Found | None:
    """Return the price on Hugging Face's router: the named backend's, or the first one's.

    ``org/model:backend`` is that backend's price; ``org/model`` the first backend the
    catalogue prices it at.
    """
    from genai_prices.data_snapshot import get_snapshot  # noqa: PLC0415 - large

    name, _, backend = model.partition(":")
    if backend:
        return _lookup(name, f"huggingface_{backend}")
    for provider in get_snapshot().providers:
        if provider.id.startswith("huggingface_"):
            entry = _lookup(name, provider.id)
            if entry is not None:
                return entry
    return None


def _bare(model: str) -> str:
    """Strip what the catalogue does not match on: Gemini's ``models/``, a Bedrock ARN."""
    name = model.removeprefix("models/")
    if name.startswith("arn:"):
        name = name.rsplit("/", 1)[-1]
    return name


@functools.lru_cache(maxsize=1024)
def _lookup(model: str, provider_id: str | None) -> _Found | None:
    from genai_prices.data_snapshot import get_snapshot  # noqa: PLC0415 - large

    try:
        provider, info = get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    schedule = info.prices if isinstance(info.prices, list) else None
    varies = schedule is not None and (
        len(schedule) > 1 or any(p.constraint is not None for p in schedule)
    )
    fixed = None if varies else _entry(info.get_prices(datetime.now(tz=UTC)), provider.id, info.id)
    if not varies and fixed is None:
        return None  # priced per request or per second: not in tokens
    return _Found(str(provider.id), str(info.id), info, fixed)


def _entry(
    prices: Any, provider: str, model: str, *, varies: bool = False
) -> CatalogueEntry | None:
    """Return a catalogue price as rates per million tokens (``None``: not priced in tokens)."""
    rates = [_rate(getattr(prices, key, None)) for key in _KEYS]
    if rates[0] is None and rates[1] is None:
        return None
    return CatalogueEntry(
        rates[0] or 0.0, rates[1] or 0.0, rates[2], rates[3], str(provider), str(model), varies
    )


_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")


def _rate(value: Any) -> float | None:
    """A catalogue rate as a float: the base of tiered prices."""
    if value is None:
        return None
    return float(getattr(value, "base", value))
