"""The PostgreSQL metrics store: one database for a fleet of callboard processes.

Each process's metrics actor writes its batches over its own connection; the rows,
rollups and reports are those of the SQLite store (`MetricsStore`). Concurrent batches
add to the same rollup rows safely: each is one transaction, its upserts take their row
locks in key order, and the schema is created under an advisory lock, so processes that
start together do not trip over each other. Needs the ``postgres`` extra (psycopg 3).

A URL names the database the usual libpq way, e.g.
``postgresql://user:secret@db.example:5432/callboard``; a schema other than ``public``
is chosen with ``?options=-csearch_path%3Dname``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from runtime._errors import MissingExtraError, StoreError
from runtime._metrics.store import Dialect, MetricsStore

CONNECT_TIMEOUT_S = 5
"""How long opening a connection waits for the server (libpq's connect_timeout)."""
SCHEMA_LOCK = 0x63616C6C
"""The advisory lock held while a process creates the tables ("call")."""
POSTGRES = Dialect(mark="%s", period_of_ts="CAST(FLOOR(ts / {period}) AS BIGINT)")
SCHEMES = ("postgresql", "postgres")


def is_postgres_url(where: object) -> bool:
    """Return whether ``where`` is a PostgreSQL URL (rather than a SQLite file)."""
    return isinstance(where, str) and urlsplit(where).scheme in SCHEMES


def safe_url(url: str) -> str:
    """Return ``url`` without its password, as messages and the audit log show it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _psycopg() -> Any:
    try:
        import psycopg  # noqa: PLC0415 - optional extra
    except ImportError:
        raise MissingExtraError(
            "a PostgreSQL metrics store ([metrics] url) needs psycopg: "
            "pip install 'callboard[postgres]'"
        ) from None
    return psycopg


class PostgresStore(MetricsStore):
    """The metrics store in a PostgreSQL database."""

    dialect = POSTGRES

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        """Connect to the database at ``url`` and (unless ``readonly``) create the tables.

        Raises:
            StoreError: the server cannot be reached or refuses the connection, the
                store is missing (read-only) or from a newer callboard.
            MissingExtraError: psycopg (the ``postgres`` extra) is not installed.
        """
        psycopg = _psycopg()
        self.url = url
        self.label = safe_url(url)
        self._errors = (psycopg.Error, OSError)
        self._db = _connect(psycopg, url, self.label)
        try:
            with self._failures():
                if readonly:
                    self._require_tables()
                else:
                    self._create_schema()
                self._check_version()
        except StoreError:
            self._db.close()
            raise

    def _create_schema(self) -> None:
        with self._transaction():
            self._execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
            super()._create_schema()

    def _require_tables(self) -> None:
        found = self._execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]
        if not found:
            raise StoreError(
                f"no metrics store in {self.label}: nothing has been recorded there yet, or "
                "[metrics] url points elsewhere"
            )

    def _error(self, exc: BaseException) -> StoreError:
        return postgres_error(self.label, exc)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._db.transaction():
            yield

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def moved(self) -> str | None:
        """Say that the connection was lost (the server restarted...): open a new one."""
        return "the connection to the database was lost" if self._db.closed else None


def _connect(psycopg: Any, url: str, label: str) -> Any:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except (psycopg.Error, OSError) as exc:
        raise postgres_error(label, exc) from None


def postgres_error(label: str, exc: BaseException) -> StoreError:
    """Return the actionable `StoreError` for a failure of the database at ``label``."""
    text = " ".join(str(exc).split())
    if "version" in text:
        return StoreError(
            f"the metrics store in {label} is not a usable callboard database ({text}); point "
            "[metrics] url at another database or schema, then rebuild it with "
            "`callboard metrics rebuild --from-audit AUDIT_FILE`"
        )
    return StoreError(
        f"the metrics store {label} cannot be used: {text}; check that the server runs "
        "and that [metrics] url names it, its user and its database"
    )


@dataclass(frozen=True, slots=True)
class ServerProbe:
    """What `probe` found: the server's version and one round trip's time."""

    version: str
    latency_ms: float


def probe(url: str) -> ServerProbe:
    """Connect to ``url``, ask the server's version and time a round trip.

    Raises:
        StoreError: the server cannot be reached or refuses the connection.
        MissingExtraError: psycopg is not installed.
    """
    psycopg = _psycopg()
    label = safe_url(url)
    with _connect(psycopg, url, label) as db:
        try:
            version = db.execute("SHOW server_version").fetchone()[0]
            started = time.perf_counter()
            db.execute("SELECT 1").fetchone()
            latency_ms = (time.perf_counter() - started) * 1000
        except (psycopg.Error, OSError) as exc:
            raise postgres_error(label, exc) from None
    return ServerProbe(str(version).split()[0], latency_ms)  # "15.20 (Debian ...)": 15.20
