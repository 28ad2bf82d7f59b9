"""The persistent metrics store: rows per attempt and task, with rollups, on SQL.

Two backends hold the same rows and answer the same reports: SQLite (`SqliteStore`, the
default, one file) and PostgreSQL (`PostgresStore`, one store for a fleet). This module is
what they share: the schema, batch writes, pruning, and the report and trend queries;
each backend supplies its connection and the few expressions its SQL writes differently
(`Dialect`). Written by the metrics actor only (one connection, one thread), read by
reports from anywhere. Every batch is one transaction: the raw rows, plus rollups per
hour and per day (counts, tokens, cost and latency histograms per provider, role, model
and outcome) that let a report over a million calls read a few thousand rows. A window
reads whole days from the daily rollups, the hours at its edges from the hourly ones and
the minutes at its very edges from the raw rows, so a report is exact for any window.
Writes are idempotent: a row the store already holds (a batch sent again after the
metrics actor restarted) is neither stored nor counted twice.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from runtime._errors import StoreError
from runtime._metrics.histogram import LatencyHistogram, bucket_of
from runtime._metrics.report import (
    NO_TENANT,
    PERIOD_S,
    RAW_ONLY,
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
LATENCY, TTFT = 0, 1
LOOKUP_CHUNK = 512
"""Task ids per query when looking for rows a batch repeats (under SQLite's 999 variables)."""
_LOOKUPS = {
    size: f"SELECT task_id, attempt FROM attempts WHERE task_id IN ({','.join('?' * size)})"  # noqa: S608 - placeholders only
    for size in (2**n for n in range(3, LOOKUP_CHUNK.bit_length()))
}
"""The lookup, for 8, 16... `LOOKUP_CHUNK` task ids: a chunk is padded to the next size.

One statement per batch size would do, but each SQL text is a statement the driver prepares
and keeps (`sqlite3` keeps 128 of them, up to 110 KB each with 500 ids): batches of every
size made a long-running board's memory creep by a dozen MB. These few stay (about 220 KB).
"""
TABLES = ("attempts", "tasks", "rollups", "rollup_histograms")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL){table_options};
CREATE TABLE IF NOT EXISTS attempts (
    task_id TEXT NOT NULL, attempt BIGINT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    workflow_id TEXT, role TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
    outcome TEXT NOT NULL, status BIGINT, latency_ms DOUBLE PRECISION NOT NULL,
    ttft_ms DOUBLE PRECISION, input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL, cost_usd DOUBLE PRECISION, fallback BIGINT NOT NULL,
    tenant TEXT, PRIMARY KEY (task_id, attempt)
);
CREATE INDEX IF NOT EXISTS attempts_ts ON attempts (ts);
CREATE INDEX IF NOT EXISTS attempts_workflow ON attempts (workflow_id, ts)
    WHERE workflow_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, workflow_id TEXT,
    role TEXT NOT NULL, outcome TEXT NOT NULL, provider TEXT, model TEXT,
    attempts BIGINT NOT NULL, input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL, cost_usd DOUBLE PRECISION,
    latency_ms DOUBLE PRECISION NOT NULL, fallback BIGINT NOT NULL, error TEXT
);
CREATE INDEX IF NOT EXISTS tasks_ts ON tasks (ts);
CREATE INDEX IF NOT EXISTS tasks_workflow ON tasks (workflow_id) WHERE workflow_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS rollups (
    level BIGINT NOT NULL, unit BIGINT NOT NULL, provider TEXT NOT NULL,
    role TEXT NOT NULL, model TEXT NOT NULL, outcome TEXT NOT NULL, calls BIGINT NOT NULL,
    fallback_calls BIGINT NOT NULL, input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL, cached_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL, priced_calls BIGINT NOT NULL,
    PRIMARY KEY (level, unit, provider, role, model, outcome)
){table_options};
CREATE TABLE IF NOT EXISTS rollup_histograms (
    level BIGINT NOT NULL, unit BIGINT NOT NULL, provider TEXT NOT NULL,
    role TEXT NOT NULL, model TEXT NOT NULL, metric BIGINT NOT NULL, bucket BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (level, unit, provider, role, model, metric, bucket)
){table_options}
"""
"""One schema for both backends: BIGINT and DOUBLE PRECISION are SQLite's INTEGER and REAL
(``{table_options}``: the backend's `Dialect.table_options`)."""

_UPSERT_ROLLUP = """
INSERT INTO rollups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (level, unit, provider, role, model, outcome) DO UPDATE SET
    calls = rollups.calls + excluded.calls,
    fallback_calls = rollups.fallback_calls + excluded.fallback_calls,
    input_tokens = rollups.input_tokens + excluded.input_tokens,
    output_tokens = rollups.output_tokens + excluded.output_tokens,
    cached_tokens = rollups.cached_tokens + excluded.cached_tokens,
    cost_usd = rollups.cost_usd + excluded.cost_usd,
    priced_calls = rollups.priced_calls + excluded.priced_calls
"""
_UPSERT_HISTOGRAM = """
INSERT INTO rollup_histograms VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (level, unit, provider, role, model, metric, bucket) DO UPDATE SET
    count = rollup_histograms.count + excluded.count
"""


@dataclass(frozen=True, slots=True)
class Dialect:
    """What a backend's SQL writes its own way; every query is written with ``?`` marks."""

    mark: str
    """The driver's parameter mark, put in place of each ``?``."""
    period_of_ts: str
    """The whole period (``{period}`` seconds) a raw row's ``ts`` falls in, as an integer."""
    table_options: str = ""
    """Appended to the tables keyed by their primary key alone (SQLite: WITHOUT ROWID)."""

    def sql(self, text: str) -> str:
        """Return ``text`` with the driver's parameter marks."""
        return text if self.mark == "?" else text.replace("?", self.mark)


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


class MetricsStore(ABC):
    """A metrics database: write batches, prune, and answer reports.

    A backend opens its connection (`_db`, a DB-API connection), says how its SQL differs
    (`dialect`) and which of its driver's exceptions mean a failed operation (`_errors`),
    and turns one into an actionable `StoreError` (`_error`).
    """

    dialect: Dialect
    label: str
    """Where the store is, as messages name it (never with a password)."""
    _db: Any
    _errors: tuple[type[BaseException], ...]

    @abstractmethod
    def _error(self, exc: BaseException) -> StoreError:
        """Return the actionable `StoreError` for a driver's failure."""

    @abstractmethod
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Commit what runs inside, or roll it all back when it raises."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    def moved(self) -> str | None:
        """Say why the store open is no longer the one configured, or ``None`` if it is."""
        return None

    def let_go(self) -> bool:
        """Close a store that has `moved`; ``False``: it must stay open until the end."""
        self.close()
        return True

    def _create_schema(self) -> None:
        """Create the tables the store lacks and record the schema version (one transaction)."""
        schema = SCHEMA.format(table_options=self.dialect.table_options)
        with self._transaction():
            for statement in schema.split(";"):
                self._execute(statement)
            self._execute(
                "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )

    def _check_version(self) -> None:
        """Raise `StoreError` unless the store has a schema version this callboard reads."""
        row = self._execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or int(row[0]) > SCHEMA_VERSION:
            found = "no version" if row is None else f"version {row[0]}"
            msg = f"it has {found}; this callboard reads version {SCHEMA_VERSION}"
            raise self._error(ValueError(msg))

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._db.execute(self.dialect.sql(sql), params)

    def _execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            cursor = self._db.cursor()
            try:
                cursor.executemany(self.dialect.sql(sql), rows)
            finally:
                cursor.close()

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """Turn the driver's failures inside into actionable `StoreError`s."""
        try:
            yield
        except self._errors as exc:
            raise self._error(exc) from exc

    # -- writing -------------------------------------------------------------------------

    def write(self, tasks: Sequence[TaskRow], attempts: Sequence[AttemptRow]) -> None:
        """Store a batch in one transaction, with its rollups; skip the rows already stored.

        Rollups are upserted in key order, so that writers in several processes take
        their row locks in one order and never deadlock.

        Raises:
            StoreError: the write failed (disk full, locked, read-only, unreachable...);
                nothing of the batch was stored, so the caller may retry it whole.
        """
        with self._failures(), self._transaction():
            fresh = self._new_attempts(attempts)
            self._execute_many(
                "INSERT INTO attempts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [_attempt_values(a) for a in fresh],
            )
            self._execute_many(
                "INSERT INTO tasks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (task_id) DO NOTHING",
                [_task_values(t) for t in tasks],
            )
            rollups, histogram = _rollups(fresh)
            self._execute_many(_UPSERT_ROLLUP, rollups)
            self._execute_many(_UPSERT_HISTOGRAM, histogram)

    def _new_attempts(self, attempts: Sequence[AttemptRow]) -> list[AttemptRow]:
        """Return the attempts the store does not hold yet, each once (rollups count these)."""
        task_ids = sorted({a.task_id for a in attempts})
        seen: set[tuple[str, int]] = set()
        for start in range(0, len(task_ids), LOOKUP_CHUNK):
            chunk: list[str | None] = list(task_ids[start : start + LOOKUP_CHUNK])
            size = lookup_size(len(chunk))
            chunk += [None] * (size - len(chunk))  # NULL matches no task id
            seen.update(
                (task_id, attempt) for task_id, attempt in self._execute(_LOOKUPS[size], chunk)
            )
        fresh = []
        for attempt in attempts:
            key = (attempt.task_id, attempt.attempt)
            if key not in seen:
                seen.add(key)
                fresh.append(attempt)
        return fresh

    def prune(self, older_than: float) -> int:
        """Delete rows and rollups older than ``older_than`` (Unix seconds); return rows deleted.

        Raises:
            StoreError: the store could not be written.
        """
        with self._failures(), self._transaction():
            deleted = self._execute("DELETE FROM attempts WHERE ts < ?", (older_than,)).rowcount
            deleted += self._execute("DELETE FROM tasks WHERE ts < ?", (older_than,)).rowcount
            for level in LEVELS:
                unit = math.floor(older_than / level)
                for table in ("rollups", "rollup_histograms"):
                    self._execute(
                        f"DELETE FROM {table} WHERE level = ? AND unit < ?",  # noqa: S608 - fixed names
                        (level, unit),
                    )
        return int(deleted)

    def clear(self) -> None:
        """Delete every row and rollup (before a rebuild replaces them), in one transaction."""
        with self._failures(), self._transaction():
            for table in TABLES:
                self._execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names

    def spend_since(self, since: float) -> list[tuple[str, str, str | None, str | None, float]]:
        """Return the known cost of the attempts since ``since`` (Unix seconds), grouped.

        One ``(role, provider, tenant, workflow_id, cost)`` per group: what budgets read
        back when a board starts.

        Raises:
            StoreError: the store cannot be read.
        """
        with self._failures():
            rows = self._execute(
                "SELECT role, provider, tenant, workflow_id, SUM(cost_usd) FROM attempts "
                "WHERE ts >= ? AND cost_usd IS NOT NULL GROUP BY 1, 2, 3, 4",
                (since,),
            ).fetchall()
        return [(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]

    def counts(self) -> tuple[int, int]:
        """Return how many task and attempt rows the store holds."""
        with self._failures():
            tasks = self._execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
            attempts = self._execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
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
        raw_only = filters.workflow is not None or any(d in RAW_ONLY for d in query.dims)
        levels = () if raw_only else _levels_for(period_s)
        with self._failures():
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
        sums = ", ".join(
            f"CAST(SUM({c}) AS BIGINT)"
            for c in ("calls", "fallback_calls", "input_tokens", "output_tokens", "cached_tokens")
        )
        rows = self._execute(
            f"SELECT {period}, {columns}, outcome, {sums}, SUM(cost_usd), "  # noqa: S608 - fixed names
            f"CAST(SUM(priced_calls) AS BIGINT) FROM rollups WHERE {where} "
            f"GROUP BY 1, {columns}, outcome",
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

        Where a period holds many units (a report, a daily trend from hours), the database
        sums them; where a period is one unit (an hourly trend from hours) there is nothing
        to sum, and the rows are read as stored: a GROUP BY would only sort them all first.
        Consecutive rows mostly share their period, group and metric, so the histogram to
        add to is looked up once per run of rows.
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
                f"SELECT {period}, {columns}, metric, bucket, CAST(SUM(count) AS BIGINT) "  # noqa: S608
                f"FROM rollup_histograms WHERE {where} GROUP BY 1, {columns}, metric, bucket"
            )
        width = len(query.dims) + 2  # period, the group's fields, metric
        run: tuple[Any, ...] = ()
        histogram = LatencyHistogram()
        added = 0
        for row in self._execute(sql, params):
            if row[:width] != run:
                histogram.total += added
                run, added = tuple(row[:width]), 0
                acc = accumulators[run[:-1]]
                histogram = acc.latency if run[-1] == LATENCY else acc.ttft
            histogram.counts[row[width]] += row[width + 1]
            added += row[width + 1]
        histogram.total += added

    def _fold_raw(
        self, accumulators: _Accumulators, query: _Query, start: float, end: float
    ) -> None:
        period = self.dialect.period_of_ts.format(period=query.period_s) if query.period_s else "0"
        where, params = _where("ts >= ? AND ts < ?", [start, end], query.filters)
        columns = ", ".join(
            f"COALESCE(tenant, '{NO_TENANT}')" if d == "tenant" else d for d in query.dims
        )
        rows = self._execute(
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
        a.cost_usd, int(a.fallback), a.tenant,
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
    rollups = [(*key, *values) for key, values in sorted(sums.items())]
    histogram = [(*key, count) for key, count in sorted(buckets.items())]
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


def lookup_size(count: int) -> int:
    """Return the size of the lookup that holds ``count`` task ids (at most `LOOKUP_CHUNK`)."""
    smallest: int = min(_LOOKUPS)
    return max(smallest, 1 << (count - 1).bit_length())
