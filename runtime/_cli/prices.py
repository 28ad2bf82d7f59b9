"""``callboard prices [MODEL]``: what a model costs and where the figure comes from."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import orjson

from runtime._config.load import load_config
from runtime._config.prices import PriceQuote, PriceTable
from runtime._config.provider_types import KINDS
from runtime._errors import UsageError

EXIT_OK, EXIT_UNKNOWN = 0, 1


def prices_command(args: argparse.Namespace) -> int:
    """Print the price of ``MODEL`` (or of every configured provider's models) and its source.

    The config's ``[prices]`` apply when the config file exists; a model a configured
    provider serves is priced as that provider's type unless ``--type`` names another.
    """
    if args.type is not None and args.type not in KINDS:
        raise UsageError(f"--type {args.type}: not a provider type; one of {', '.join(KINDS)}")
    table, served = _table_and_models(args.config)
    if args.model is not None:
        types = [t for m, t in served if m == args.model] or [None]
        wanted = [(args.model, args.type or types[0])]
    else:
        wanted = [(m, args.type or t) for m, t in served]
    rows = [_row(model, kind, table.quote(model, kind)) for model, kind in wanted]
    if args.json:
        print(orjson.dumps(rows).decode())
    else:
        for row in rows:
            print(_line(row))
    return EXIT_OK if all(row["source"] is not None for row in rows) else EXIT_UNKNOWN


def _table_and_models(path: str) -> tuple[PriceTable, list[tuple[str, str | None]]]:
    """The config's price table and (model, type) of every configured provider's models."""
    if not Path(path).expanduser().exists():
        return PriceTable(), []
    config = load_config(path, environ=_AnyVariable())
    served: list[tuple[str, str | None]] = []
    for settings in config.providers.values():
        for model in (settings.model, settings.embedding_model):
            if model and (model, settings.type) not in served:
                served.append((model, settings.type))
    return config.price_table, served


class _AnyVariable(dict[str, str]):
    """Every environment variable set (to a placeholder): prices need no keys."""

    def __contains__(self, name: object) -> bool:
        return True

    def __missing__(self, name: str) -> str:
        return os.environ.get(name) or "unset"


def _row(model: str, kind: str | None, quote: PriceQuote | None) -> dict[str, object]:
    price = None if quote is None else quote.price
    return {
        "model": model,
        "type": kind,
        "input": None if price is None else price.input,
        "output": None if price is None else price.output,
        "cached_input": None if price is None else price.cached_input,
        "cache_write": None if price is None else price.cache_write,
        "source": None if quote is None else quote.source,
    }


def _line(row: dict[str, object]) -> str:
    name = f"{row['model']} ({row['type']})" if row["type"] else str(row["model"])
    if row["source"] is None:
        return f'{name}: no known price; add [prices."{row["model"]}"] to the config'
    extra = "".join(
        f", {label} ${row[key]}"
        for key, label in (("cached_input", "cache read"), ("cache_write", "cache write"))
        if row[key] is not None
    )
    return (
        f"{name}: ${row['input']} in, ${row['output']} out{extra} per million tokens"
        f"  [{row['source']}]"
    )
