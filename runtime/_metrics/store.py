"""The persistent metrics store: SQLite rows per attempt and task, with rollups.

Written by the metrics actor only (one connection, one thread), read by reports from
anywhere (WAL mode lets readers work while it writes). Every batch is one transaction:
the raw rows, plus rollups per hour and per day (counts, tokens, cost and latency
histograms per provider, role, model and outcome) that let a report over a million calls
read a few thousand rows. A window reads whole days from the daily rollups, the hours at
its edges from the hourly ones and the minutes at its very edges from the raw rows, so a
report is exact for any window. Writes are idempotent: a row the store already holds (a
batch sent again after the metrics actor restarted) is neither stored nor counted twice.
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime._errors import StoreError
from runtime._metrics.histogram import LatencyHistogram, bucket_of
from runtime._metrics.report import (
    PERIOD_S,
    Every,
    GroupAccumulator,
    GroupBy,
    Report,
    Trend,
    build_report,
    key_fields,
)
from runtime._rows import AttemptRow, TaskRow

SCHEMA_VERSION = 1
HOUR_S = 3600
DAY_S = 86400
LEVELS = (DAY_S, HOUR_S)
"""Rollup levels, coarsest first: a level's unit is its length in seconds."""
WRITE_BUSY_S = 1.0
"""How long a write waits for another process's lock before it fails (and is retried)."""
LATENCY, TTFT = 0, 1
LOOKUP_CHUNK = 512
"""Task ids per query when looking for rows a batch repeats (under SQLite's 999 variables)."""
_LOOKUPS = {
    size: f"SELECT task_id, attempt FROM attempts WHERE task_id IN ({','.join('?' * size)})"  # noqa: S608 - placeholders only
    for size in (2**n for n in range(3, LOOKUP_CHUNK.bit_length()))
}
"""The lookup, for 8, 16... `LOOKUP_CHUNK` task ids: a chunk is padded to the next size.

One statement per batch size would do, but each SQL text is a statement SQLite prepares
and `sqlite3` keeps (128 of them, up to 110 KB each with 500 ids): batches of every size
made a long-running board's memory creep by a dozen MB. These few stay (about 220 KB).
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (
    task_id TEXT NOT NULL, attempt INTEGER NOT NULL, ts REAL NOT NULL, workflow_id TEXT,
    role TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, outcome TEXT NOT NULL,
    status INTEGER, latency_ms REAL NOT NULL, ttft_ms REAL, input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, cost_usd REAL,
    fallback INTEGER NOT NULL, PRIMARY KEY (task_id, attempt)
);
CREATE INDEX IF NOT EXISTS attempts_ts ON attempts (ts);
CREATE INDEX IF NOT EXISTS attempts_workflow ON attempts (workflow_id, ts)
    WHERE workflow_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY, ts REAL NOT NULL, workflow_id TEXT, role TEXT NOT NULL,
    outcome TEXT NOT NULL, provider TEXT, model TEXT, attempts INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL, cost_usd REAL, latency_ms REAL NOT NULL,
    fallback INTEGER NOT NULL, error TEXT
);
CREATE INDEX IF NOT EXISTS tasks_ts ON tasks (ts);
CREATE INDEX IF NOT EXISTS tasks_workflow ON tasks (workflow_id) WHERE workflow_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS rollups (
    level INTEGER NOT NULL, unit INTEGER NOT NULL, provider TEXT NOT NULL,
    role TEXT NOT NULL, model TEXT NOT NULL, outcome TEXT NOT NULL, calls INTEGER NOT NULL,
    fallback_calls INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL,
    priced_calls INTEGER NOT NULL,
    PRIMARY KEY (level, unit, provider, role, model, outcome)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_histograms (
    level INTEGER NOT NULL, unit INTEGER NOT NULL, provider TEXT NOT NULL,
    role TEXT NOT NULL, model TEXT NOT NULL, metric INTEGER NOT NULL, bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (level, unit, provider, role, model, metric, bucket)
) WITHOUT ROWID;
"""

_UPSERT_ROLLUP = """
INSERT INTO rollups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (level, unit, provider, role, model, outcome) DO UPDATE SET
    calls = calls + excluded.calls, fallback_calls = fallback_calls + excluded.fallback_calls,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cached_tokens = cached_tokens + excluded.cached_tokens,
    cost_usd = cost_usd + excluded.cost_usd, priced_calls = priced_calls + excluded.priced_calls
"""
_UPSERT_HISTOGRAM = """
INSERT INTO rollup_histograms VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (level, unit, provider, role, model, metric, bucket) DO UPDATE SET
    count = count + excluded.count
"""


@dataclass(frozen=True, slots=True)
class Filters:
    """Which calls a report covers (``None``: all)."""

    role: str | None = None
    provider: str | None = None
    workflow: str | None = None

    def as_dict(self) -> dict[str, str]:
        """Return the filters that are set."""
        values = {"role": self.role, "provider": self.provider, "workflow": self.workflow}
        return {k: v for k, v in values.items() if v is not None}


_Accumulators = dict[tuple[Any, ...], GroupAccumulator]
"""Accumulators keyed by (period index, *group key)."""


@dataclass(frozen=True, slots=True)
class _Query:
    dims: tuple[str, ...]
    filters: Filters
    period_s: int | None


class MetricsStore:
    """One SQLite metrics file: write batches, prune, and answer reports."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (and, unless ``readonly``, create) the store at ``path``.

        Raises:
            StoreError: the file is missing (read-only), not a SQLite database, from a
                newer callboard, or cannot be created.
        """
        self.path = path
        self._db = _connect(path, readonly=readonly)
        try:
            self._prepare(readonly=readonly)
            self._files = {f: _identity(f) for f in _files_of(path)} if not readonly else {}
        except (sqlite3.Error, OSError) as exc:
            self._db.close()
            raise store_error(path, exc) from None

    def _prepare(self, *, readonly: bool) -> None:
        if readonly:
            self._check_version()
            return
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        with self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        self._check_version()

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or int(row[0]) > SCHEMA_VERSION:
            found = "no version" if row is None else f"version {row[0]}"
            msg = f"it has {found}; this callboard reads version {SCHEMA_VERSION}"
            raise sqlite3.DatabaseError(msg)

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

    # -- writing -------------------------------------------------------------------------

    def write(self, tasks: Sequence[TaskRow], attempts: Sequence[AttemptRow]) -> None:
        """Store a batch in one transaction, with its rollups; skip the rows already stored.

        Raises:
            sqlite3.Error: the write failed (disk full, locked, read-only...); nothing of
                the batch was stored, so the caller may retry it whole.
        """
        with self._db:
            fresh = self._new_attempts(attempts)
            self._db.executemany(
                "INSERT INTO attempts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [_attempt_values(a) for a in fresh],
            )
            self._db.executemany(
                "INSERT INTO tasks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (task_id) DO NOTHING",
                [_task_values(t) for t in tasks],
            )
            rollups, histogram = _rollups(fresh)
            self._db.executemany(_UPSERT_ROLLUP, rollups)
            self._db.executemany(_UPSERT_HISTOGRAM, histogram)

    def _new_attempts(self, attempts: Sequence[AttemptRow]) -> list[AttemptRow]:
        """Return the attempts the store does not hold yet, each once (rollups count these)."""
        task_ids = sorted({a.task_id for a in attempts})
        seen: set[tuple[str, int]] = set()
        for start in range(0, len(task_ids), LOOKUP_CHUNK):
            chunk: list[str | None] = list(task_ids[start : start + LOOKUP_CHUNK])
            size = lookup_size(len(chunk))
            chunk += [None] * (size - len(chunk))  # NULL matches no task id
            seen.update(self._db.execute(_LOOKUPS[size], chunk))
        fresh = []
        for attempt in attempts:
            key = (attempt.task_id, attempt.attempt)
            if key not in seen:
                seen.add(key)
                fresh.append(attempt)
        return fresh

    def prune(self, older_than: float) -> int:
        """Delete rows and rollups older than ``older_than`` (Unix seconds); return rows deleted."""
        with self._db:
            deleted = self._db.execute("DELETE FROM attempts WHERE ts < ?", (older_than,)).rowcount
            deleted += self._db.execute("DELETE FROM tasks WHERE ts < ?", (older_than,)).rowcount
            for level in LEVELS:
                unit = math.floor(older_than / level)
                for table in ("rollups", "rollup_histograms"):
                    self._db.execute(
                        f"DELETE FROM {table} WHERE level = ? AND unit < ?",  # noqa: S608 - fixed names
                        (level, unit),
                    )
        return deleted

    def counts(self) -> tuple[int, int]:
        """Return how many task and attempt rows the store holds."""
        tasks = self._db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        attempts = self._db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        return int(tasks), int(attempts)

    # -- reading -------------------------------------------------------------------------

    def report(
        self,
        since: float,
        until: float,
        by: GroupBy = "provider,role",
        filters: Filters = Filters(),
    ) -> Report:
        """Aggregate the attempts in ``[since, until)`` per group, with flags."""
        accumulators = self._accumulate(since, until, by, filters, period_s=None)
        grouped = {key[1:]: acc for key, acc in accumulators.items()}
        return build_report(grouped, since=since, until=until, by=by, filters=filters.as_dict())

    def trend(
        self,
        since: float,
        until: float,
        every: Every = "hour",
        by: GroupBy = "provider,role",
        filters: Filters = Filters(),
    ) -> Trend:
        """Aggregate the attempts in ``[since, until)`` per group and per hour or day."""
        period = PERIOD_S[every]
        accumulators = self._accumulate(since, until, by, filters, period_s=period)
        first, last = math.floor(since / period), math.ceil(until / period)
        starts = tuple(float(p * period) for p in range(first, last))
        names = key_fields(by)
        series: dict[str, list[Any]] = {}
        for (period_index, *key), acc in sorted(accumulators.items()):
            label = "/".join(key)
            points = series.setdefault(label, [None] * len(starts))
            points[int(period_index) - first] = acc.stats(dict(zip(names, key, strict=True)))
        return Trend(
            every,
            since,
            until,
            by,
            filters.as_dict(),
            starts,
            {k: tuple(v) for k, v in series.items()},
        )

    def _accumulate(
        self, since: float, until: float, by: GroupBy, filters: Filters, period_s: int | None
    ) -> _Accumulators:
        """Fold whole hours from the rollups and the edges from raw rows, per period and key."""
        accumulators: _Accumulators = defaultdict(GroupAccumulator)
        query = _Query(key_fields(by), filters, period_s)
        levels = () if filters.workflow is not None else _levels_for(period_s)
        for source, start, end in _segments(since, until, levels):
            if source:
                self._fold_rollups(accumulators, query, source, start, end)
            else:
                self._fold_raw(accumulators, query, start, end)
        return accumulators

    def _fold_rollups(
        self, accumulators: _Accumulators, query: _Query, level: int, first: float, end: float
    ) -> None:
        period = f"(unit * {level}) / {query.period_s}" if query.period_s else "0"
        bounds = [level, int(first), int(end)]
        where, params = _where("level = ? AND unit >= ? AND unit < ?", bounds, query.filters)
        columns = ", ".join(query.dims)
        rows = self._db.execute(
            f"SELECT {period}, {columns}, outcome, SUM(calls), SUM(fallback_calls), "  # noqa: S608 - fixed names
            "SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), SUM(cost_usd), "
            f"SUM(priced_calls) FROM rollups WHERE {where} GROUP BY 1, {columns}, outcome",
            params,
        )
        width = len(query.dims) + 1
        for row in rows:
            accumulators[tuple(row[:width])].add_counts(
                outcome=row[width],
                calls=row[width + 1],
                fallback_calls=row[width + 2],
                input_tokens=row[width + 3],
                output_tokens=row[width + 4],
                cached_tokens=row[width + 5],
                cost_usd=row[width + 6],
                priced_calls=row[width + 7],
            )
        self._fold_histograms(accumulators, query, level, where, params)

    def _fold_histograms(
        self,
        accumulators: _Accumulators,
        query: _Query,
        level: int,
        where: str,
        params: list[Any],
    ) -> None:
        """Add the rollups' latency and time-to-first-token buckets to each group.

        Where a period holds many units (a report, a daily trend from hours), SQLite sums
        them; where a period is one unit (an hourly trend from hours) there is nothing to
        sum, and the rows are read as stored: a GROUP BY would only sort them all first.
        Consecutive rows share their period, group and metric, so the histogram to add to
        is looked up once per run of rows.
        """
        columns = ", ".join(query.dims)
        if query.period_s == level:
            sql = (
                f"SELECT unit, {columns}, metric, bucket, count FROM rollup_histograms "  # noqa: S608
                f"WHERE {where}"
            )
        else:
            period = f"(unit * {level}) / {query.period_s}" if query.period_s else "0"
            sql = (
                f"SELECT {period}, {columns}, metric, bucket, SUM(count) "  # noqa: S608
                f"FROM rollup_histograms WHERE {where} GROUP BY 1, {columns}, metric, bucket"
            )
        width = len(query.dims) + 2  # period, the group's fields, metric
        run: tuple[Any, ...] = ()
        histogram = LatencyHistogram()
        added = 0
        for row in self._db.execute(sql, params):
            if row[:width] != run:
                histogram.total += added
                run, added = row[:width], 0
                acc = accumulators[run[:-1]]
                histogram = acc.latency if run[-1] == LATENCY else acc.ttft
            histogram.counts[row[width]] += row[width + 1]
            added += row[width + 1]
        histogram.total += added

    def _fold_raw(
        self, accumulators: _Accumulators, query: _Query, start: float, end: float
    ) -> None:
        period = f"CAST(ts / {query.period_s} AS INTEGER)" if query.period_s else "0"
        where, params = _where("ts >= ? AND ts < ?", [start, end], query.filters)
        columns = ", ".join(query.dims)
        rows = self._db.execute(
            f"SELECT {period}, {columns}, outcome, fallback, input_tokens, output_tokens, "  # noqa: S608
            f"cached_tokens, cost_usd, latency_ms, ttft_ms FROM attempts WHERE {where}",
            params,
        )
        width = len(query.dims) + 1
        for row in rows:
            acc = accumulators[tuple(row[:width])]
            outcome, fallback, inp, out, cached, cost, latency, ttft = row[width:]
            acc.add_counts(
                outcome=outcome,
                calls=1,
                fallback_calls=fallback,
                input_tokens=inp,
                output_tokens=out,
                cached_tokens=cached,
                cost_usd=cost or 0.0,
                priced_calls=cost is not None,
            )
            if outcome == "ok":
                acc.latency.add(latency)
                if ttft is not None:
                    acc.ttft.add(ttft)


def _where(base: str, params: list[Any], filters: Filters) -> tuple[str, list[Any]]:
    clauses = [base]
    for column, value in (
        ("role", filters.role),
        ("provider", filters.provider),
        ("workflow_id", filters.workflow),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses), params


def _attempt_values(a: AttemptRow) -> tuple[Any, ...]:
    return (
        a.task_id, a.attempt, a.ts, a.workflow_id, a.role, a.provider, a.model, a.outcome,
        a.status, a.latency_ms, a.ttft_ms, a.input_tokens, a.output_tokens, a.cached_tokens,
        a.cost_usd, int(a.fallback),
    )  # fmt: skip


def _task_values(t: TaskRow) -> tuple[Any, ...]:
    return (
        t.task_id, t.ts, t.workflow_id, t.role, t.outcome, t.provider, t.model, t.attempts,
        t.input_tokens, t.output_tokens, t.cached_tokens, t.cost_usd, t.latency_ms,
        int(t.fallback),
        t.error,
    )  # fmt: skip


def _rollups(attempts: Iterable[AttemptRow]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Sum a batch into rollup rows and histogram rows for every level, ready to upsert."""
    sums: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0.0, 0])
    buckets: Counter[tuple[Any, ...]] = Counter()
    for a in attempts:
        cost = a.cost_usd
        for level in LEVELS:
            where = (level, math.floor(a.ts / level), a.provider, a.role, a.model)
            row = sums[(*where, a.outcome)]
            row[0] += 1
            row[1] += a.fallback
            row[2] += a.input_tokens
            row[3] += a.output_tokens
            row[4] += a.cached_tokens
            if cost is not None:
                row[5] += cost
                row[6] += 1
            if a.outcome == "ok":
                buckets[(*where, LATENCY, bucket_of(a.latency_ms))] += 1
                if a.ttft_ms is not None:
                    buckets[(*where, TTFT, bucket_of(a.ttft_ms))] += 1
    rollups = [(*key, *values) for key, values in sums.items()]
    histogram = [(*key, count) for key, count in buckets.items()]
    return rollups, histogram


def _levels_for(period_s: int | None) -> tuple[int, ...]:
    """Return the rollup levels whose units fit whole in a trend's periods."""
    return tuple(level for level in LEVELS if period_s is None or period_s % level == 0)


def _segments(
    since: float, until: float, levels: tuple[int, ...]
) -> list[tuple[int, float, float]]:
    """Split a window into whole units of the coarsest level that fits, then finer ones.

    Returns ``(level, first_unit, end_unit)`` for rollups and ``(0, start, end)`` (Unix
    seconds) for the raw rows at the very edges.
    """
    if not levels:
        return [(0, since, until)] if since < until else []
    level, finer = levels[0], levels[1:]
    first, end = math.ceil(since / level), math.floor(until / level)
    if first >= end:
        return _segments(since, until, finer)
    return [
        *_segments(since, first * level, finer),
        (level, first, end),
        *_segments(end * level, until, finer),
    ]


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


def lookup_size(count: int) -> int:
    """Return the size of the lookup that holds ``count`` task ids (at most `LOOKUP_CHUNK`)."""
    smallest: int = min(_LOOKUPS)
    return max(smallest, 1 << (count - 1).bit_length())


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
