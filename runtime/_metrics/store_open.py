"""Opening the metrics store a config names: a SQLite file or a PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

from runtime._metrics.store import MetricsStore
from runtime._metrics.store_postgres import PostgresStore, is_postgres_url, safe_url
from runtime._metrics.store_sqlite import SqliteStore

StoreAddress = Path | str
"""A SQLite file, or a ``postgresql://`` URL."""


def open_store(where: StoreAddress, *, readonly: bool = False) -> MetricsStore:
    """Open the store at ``where`` (creating it unless ``readonly``).

    Raises:
        StoreError: it cannot be opened (the message says why and what to do).
        MissingExtraError: a PostgreSQL URL without psycopg installed.
    """
    if is_postgres_url(where):
        return PostgresStore(str(where), readonly=readonly)
    return SqliteStore(Path(where), readonly=readonly)


def store_label(where: StoreAddress) -> str:
    """Name the store as messages do: its file, or its URL without the password."""
    return safe_url(where) if isinstance(where, str) and is_postgres_url(where) else str(where)
