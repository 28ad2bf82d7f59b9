"""The metrics actor: the only writer of statistics, live and persistent.

It folds every task that ends into live aggregates (`StatsBook`), writes the rows in
batches to the SQLite store (`MetricsStore`), and feeds the optional Prometheus
exporter. A store that cannot be opened or written (disk full, locked, corrupt) is
logged once per failure streak and retried on a timer; rows wait in memory meanwhile
(up to `MAX_PENDING_ROWS`), and no task ever fails for it: the audit log keeps every
task's record, and `callboard metrics rebuild --from-audit` restores the store from it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka

from actors._child import SupervisedActor, tell_quietly
from actors._messages import GetStats, SyncStore, TaskEvents, Wake
from runtime._audit import AuditLog
from runtime._config.schema import Config
from runtime._errors import CallboardError, StoreError
from runtime._metrics.stats import StatsBook
from runtime._metrics.store import MetricsStore, store_error
from runtime._rows import TaskEvent
from runtime._transport.io_loop import IoLoop

RETRY_S = 5.0
"""How long after a failed write the store is tried again."""
PRUNE_EVERY_S = 3600.0
MAX_PENDING_ROWS = 200_000
"""Rows kept in memory while the store cannot be written; past this the oldest go."""


@dataclass(frozen=True, slots=True)
class MetricsActorSettings:
    """What the metrics actor needs from the config."""

    store_path: Path | None
    retain_days: float
    prometheus: tuple[str, int] | None = None

    @classmethod
    def of(cls, config: Config) -> MetricsActorSettings:
        """Take the settings from a config."""
        metrics = config.metrics
        prometheus = None
        if metrics.prometheus_port is not None:
            prometheus = (metrics.prometheus_host, metrics.prometheus_port)
        return cls(config.metrics_path(), metrics.retain_days, prometheus)


class MetricsActor(SupervisedActor):
    """Keeps live aggregates, writes the store, feeds Prometheus; answers `GetStats`."""

    def __init__(
        self,
        supervisor: pykka.ActorRef[Any] | None = None,
        *,
        settings: MetricsActorSettings | None = None,
        io: IoLoop | None = None,
        audit: AuditLog | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("metrics", supervisor)
        self._settings = settings or MetricsActorSettings(None, 90.0)
        self._io = io
        self._audit = audit
        self._wall = wall
        self._book = StatsBook()
        self._store: MetricsStore | None = None
        self._pending: deque[TaskEvent] = deque()
        self._pending_rows = 0
        self._failing = False
        self._retry_scheduled = False
        self._exporter: Any = None
        self.handlers = {
            TaskEvents: self._take,
            GetStats: self._stats,
            SyncStore: self._sync,
            Wake: self._wake,
            MetricsActorSettings: self._reconfigure,
        }

    def on_start(self) -> None:
        """Open the store and the exporter; prune old rows."""
        self._open_store()
        self._start_exporter()
        self._prune()

    def _stats(self, message: GetStats) -> None:
        _resolve(message.reply, self._book.snapshot())

    def _sync(self, message: SyncStore) -> None:
        self._write()
        _resolve(message.reply, self._settings.store_path if not self._failing else None)

    def _reconfigure(self, settings: MetricsActorSettings) -> None:
        """Take a new retention; the store and the exporter stay until a restart."""
        kept = self._settings
        if (settings.store_path, settings.prometheus) != (kept.store_path, kept.prometheus):
            self._event(
                "metrics_settings_kept",
                reason="[metrics] path and prometheus_port apply when the board restarts",
            )
        self._settings = MetricsActorSettings(
            kept.store_path, settings.retain_days, kept.prometheus
        )

    def _take(self, message: TaskEvents) -> None:
        events = message.events
        for event in events:
            self._book.add_task(event)
            self._observe(event)
        if self._settings.store_path is None:
            return
        self._pending.extend(events)
        self._pending_rows += sum(1 + len(e.attempts) for e in events)
        self._trim()
        if not self._failing:
            self._write()

    def _observe(self, event: TaskEvent) -> None:
        if self._exporter is None:
            return
        costs = [a.cost_usd for a in event.attempts]
        self._exporter.observe(event.task, event.attempts, costs)

    def _write(self) -> None:
        if not self._pending or self._settings.store_path is None:
            return
        if self._store is None and not self._open_store():
            self._schedule_retry()
            return
        assert self._store is not None  # noqa: S101 - opened just above
        tasks = [e.task for e in self._pending]
        attempts = [a for e in self._pending for a in e.attempts]
        try:
            self._store.write(tasks, attempts)
        except (sqlite3.Error, OSError) as exc:
            self._failed("metrics_write_failed", store_error(self._store.path, exc))
            return
        self._pending.clear()
        self._pending_rows = 0
        if self._failing:
            self._failing = False
            self._event("metrics_store_recovered", path=str(self._store.path))

    def _open_store(self) -> bool:
        path = self._settings.store_path
        if path is None or self._store is not None:
            return self._store is not None
        try:
            self._store = MetricsStore(path)
        except StoreError as exc:
            self._failed("metrics_store_unavailable", exc)
            return False
        return True

    def _failed(self, event: str, error: CallboardError) -> None:
        if not self._failing:
            self._event(event, error=str(error), pending_rows=self._pending_rows)
        self._failing = True
        self._schedule_retry()

    def _trim(self) -> None:
        dropped = 0
        while self._pending_rows > MAX_PENDING_ROWS and self._pending:
            event = self._pending.popleft()
            self._pending_rows -= 1 + len(event.attempts)
            dropped += 1
        if dropped:
            self._event("metrics_rows_dropped", tasks=dropped, reason="the store is unwritable")

    def _schedule_retry(self) -> None:
        if self._retry_scheduled or self._io is None:
            return
        self._retry_scheduled = True
        self._io.call_later(RETRY_S, tell_quietly, self.actor_ref, Wake("retry", 0))

    def _wake(self, wake: Wake) -> None:
        if wake.key == "retry":
            self._retry_scheduled = False
            self._write()
        elif wake.key == "prune":
            self._prune()

    def _prune(self) -> None:
        if self._store is not None:
            cutoff = self._wall() - self._settings.retain_days * 86400
            try:
                self._store.prune(cutoff)
            except (sqlite3.Error, OSError) as exc:
                self._event("metrics_prune_failed", error=str(store_error(self._store.path, exc)))
        if self._io is not None:
            self._io.call_later(PRUNE_EVERY_S, tell_quietly, self.actor_ref, Wake("prune", 0))

    def _start_exporter(self) -> None:
        if self._settings.prometheus is None:
            return
        from runtime._metrics.prometheus import PrometheusExporter  # noqa: PLC0415 - optional

        host, port = self._settings.prometheus
        try:
            self._exporter = PrometheusExporter(port, host)
            self._exporter.start()
        except (CallboardError, OSError) as exc:
            self._exporter = None
            self._event("prometheus_unavailable", error=str(exc), port=port)

    def _event(self, name: str, **fields: Any) -> None:
        if self._audit is not None:
            self._audit.event(name, **fields)

    def release(self, reason: str) -> None:  # noqa: ARG002 - the store is closed either way
        """Write what is pending, then close the store and the exporter."""
        self._write()
        if self._pending_rows:
            self._event("metrics_rows_unwritten", tasks=len(self._pending))
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._exporter is not None:
            self._exporter.close()
            self._exporter = None


def _resolve(reply: concurrent.futures.Future[Any], value: object) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        reply.set_result(value)
