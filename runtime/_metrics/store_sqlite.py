"""The SQLite metrics store: one file, the default, nothing to set up.

WAL mode lets reports read while the metrics actor writes. SQLite keeps writing to the
file it opened even after it was deleted or replaced, so the store notices that (`moved`)
and lets go of its file without harming whatever took its name (`let_go`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runtime._errors import StoreError
from runtime._metrics.store import Dialect, MetricsStore

WRITE_BUSY_S = 1.0
"""How long a write waits for another process's lock before it fails (and is retried)."""
SQLITE = Dialect(
    mark="?",
    period_of_ts="CAST(ts / {period} AS INTEGER)",
    table_options=" WITHOUT ROWID",
)


class SqliteStore(MetricsStore):
    """One SQLite metrics file."""

    dialect = SQLITE
    _errors = (sqlite3.Error, OSError)

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (and, unless ``readonly``, create) the store at ``path``.

        Raises:
            StoreError: the file is missing (read-only), not a SQLite database, from a
                newer callboard, or cannot be created.
        """
        self.path = path
        self.label = str(path)
        self._db = _connect(path, readonly=readonly)
        try:
            with self._failures():
                if not readonly:
                    self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.execute("PRAGMA synchronous=NORMAL")
                    self._create_schema()
                    self._add_tenant_column()
                self._check_version()
                self._files = {f: _identity(f) for f in _files_of(path)} if not readonly else {}
        except StoreError:
            self._db.close()
            raise

    def _error(self, exc: BaseException) -> StoreError:
        return store_error(self.path, exc)

    def _add_tenant_column(self) -> None:
        """Give a store written before tenants were recorded its ``tenant`` column."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(attempts)")}
        if "tenant" not in columns:
            self._db.execute("ALTER TABLE attempts ADD COLUMN tenant TEXT")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._db:
            yield

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def moved(self) -> str | None:
        """Say why the file at `path` is no longer the one open, or ``None`` if it is.

        SQLite keeps writing to the file it opened even after it was deleted or another
        file took its name, so what it writes then is lost with the old file.
        """
        try:
            now = _identity(self.path)
        except FileNotFoundError:
            return "the file was deleted or moved away"
        except OSError as exc:
            return f"the file cannot be looked at ({exc.strerror or exc})"
        if now == self._files[self.path]:
            return None
        return "another file took its name (it was replaced, or moved aside)"

    def let_go(self) -> bool:
        """Close a store whose file has `moved`, sparing the files of whatever took its name.

        SQLite names its WAL and shared-memory files after the database, and on closing
        removes them by name, or leaves them behind when the database was deleted; a
        database opened under that name later would take a stale WAL for its own. So the
        files still named after this store that are its own go once it is closed; while
        another database's files hold those names, the connection stays open (``False``:
        close it later, after that database).
        """
        sidecars = [f for f in self._files if f != self.path]
        found = {f: _identity_or_none(f) for f in sidecars}
        if any(found[f] not in (None, self._files[f]) for f in sidecars):
            return False
        self._db.close()
        for file in sidecars:
            if found[file] is not None and _identity_or_none(file) == found[file]:
                file.unlink(missing_ok=True)
        return True


def _files_of(path: Path) -> tuple[Path, Path, Path]:
    """Return the database file and the WAL and shared-memory files SQLite keeps beside it."""
    return path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")


def _identity(path: Path) -> tuple[int, int]:
    """Return what tells one file from another that takes its name: device and inode."""
    found = path.stat()
    return found.st_dev, found.st_ino


def _identity_or_none(path: Path) -> tuple[int, int] | None:
    try:
        return _identity(path)
    except OSError:
        return None


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    try:
        if readonly:
            if not path.exists():
                raise StoreError(
                    f"no metrics store at {path}: nothing has been recorded yet, or [metrics] "
                    "path points elsewhere"
                )
            return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(path, timeout=WRITE_BUSY_S, check_same_thread=False)
    except (sqlite3.Error, OSError) as exc:
        raise store_error(path, exc) from None


def store_error(path: Path, exc: BaseException) -> StoreError:
    """Return the actionable `StoreError` for a failure of the store at ``path``."""
    text = str(exc)
    if "not a database" in text or "malformed" in text or "version" in text:
        return StoreError(
            f"the metrics store {path} is not a usable callboard database ({text}); move it "
            "aside, then rebuild it with `callboard metrics rebuild --from-audit AUDIT_FILE`"
        )
    if "locked" in text:
        return StoreError(
            f"the metrics store {path} is locked by another process ({text}); try again"
        )
    return StoreError(f"the metrics store {path} cannot be used: {text}")
