"""The metrics actor: the only writer of statistics, live and persistent.

It folds every task that ends into live aggregates (`StatsBook`), writes the rows in
batches to the store (`MetricsStore`: a SQLite file or a PostgreSQL database), and feeds
the optional Prometheus exporter. Each batch is acknowledged to its sender
(`EventsStored`) once written, or once its loss is recorded, so that the batches a crash
took from it are sent again. A store that cannot be opened or written (disk full,
locked, corrupt, unreachable) is logged once per failure streak and retried on a timer;
rows wait in memory meanwhile (up to `MAX_PENDING_ROWS`), and no task ever fails for it:
the audit log keeps every task's record, and `callboard metrics rebuild --from-audit`
restores the store from it. A store file deleted or replaced under the board, or a
database connection lost, is noticed before the next write and opened anew.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pykka

from actors._child import SupervisedActor, tell_quietly
from actors._messages import (
    BudgetLevels,
    EventsStored,
    GetExposition,
    GetStats,
    SyncStore,
    TaskEvents,
    Wake,
)
from runtime._audit import AuditLog
from runtime._config.schema import Config
from runtime._errors import CallboardError, MissingExtraError, StoreError
from runtime._metrics.otel import OtelExporter, Server, install_sdk
from runtime._metrics.stats import StatsBook
from runtime._metrics.store import MetricsStore
from runtime._metrics.store_open import StoreAddress, open_store
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

    store_path: StoreAddress | None
    """The SQLite file or the PostgreSQL URL; ``None``: live statistics only."""
    retain_days: float
    prometheus: tuple[str, int | None] | None = None
    """Keep a Prometheus registry, served on (host, port), or on no port of its own
    (``None``: the gateway's ``/metrics`` serves it)."""
    otel: OtelTarget | None = None

    @classmethod
    def of(cls, config: Config) -> MetricsActorSettings:
        """Take the settings from a config."""
        metrics = config.metrics
        prometheus: tuple[str, int | None] | None = None
        if metrics.prometheus_port is not None:
            prometheus = (metrics.prometheus_host, metrics.prometheus_port)
        elif config.gateway.metrics:
            prometheus = (metrics.prometheus_host, None)
        otel = OtelTarget.of(config) if config.otel.enabled else None
        return cls(config.metrics_store(), metrics.retain_days, prometheus, otel)


@dataclass(frozen=True, slots=True)
class OtelTarget:
    """Where OpenTelemetry data goes, and the providers as spans name them."""

    endpoint: str | None
    service_name: str
    servers: tuple[tuple[str, Server], ...]

    @classmethod
    def of(cls, config: Config) -> OtelTarget:
        """Take the target from a config whose ``[otel]`` is on."""
        servers = tuple(
            (
                pid,
                Server(
                    p.type, p.model, urlsplit(p.base_url_or_default()).hostname, p.embedding_model
                ),
            )
            for pid, p in config.providers.items()
        )
        return cls(config.otel.endpoint, config.otel.service_name, servers)


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
        self._moved_stores: list[MetricsStore] = []
        """Stores whose file moved, left open until the end (see `MetricsStore.let_go`)."""
        self._pending: deque[TaskEvents] = deque()
        self._pending_rows = 0
        self._failing = False
        self._retry_scheduled = False
        self._exporter: Any = None
        self._otel: OtelExporter | None = None
        self.handlers = {
            TaskEvents: self._take,
            BudgetLevels: self._budget_levels,
            GetStats: self._stats,
            SyncStore: self._sync,
            GetExposition: self._exposition,
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

    def _exposition(self, message: GetExposition) -> None:
        _resolve(message.reply, self._exporter.exposition() if self._exporter else None)

    def _sync(self, message: SyncStore) -> None:
        self._write()
        _resolve(message.reply, self._settings.store_path if not self._failing else None)

    def _reconfigure(self, settings: MetricsActorSettings) -> None:
        """Take a new retention; the store and the exporter stay until a restart."""
        kept = self._settings
        if (settings.store_path, settings.prometheus) != (kept.store_path, kept.prometheus):
            self._event(
                "metrics_settings_kept",
                reason="[metrics] path, url and prometheus_port apply when the board restarts",
            )
        self._settings = MetricsActorSettings(
            kept.store_path, settings.retain_days, kept.prometheus, kept.otel
        )

    def _take(self, message: TaskEvents) -> None:
        for event in message.events:
            self._book.add_task(event)
            self._observe(event)
        if self._settings.store_path is None:
            _acknowledge([message])
            return
        self._pending.append(message)
        self._pending_rows += _rows(message)
        self._trim()
        if self._failing:
            self._schedule_retry()
        else:
            self._write()

    def _budget_levels(self, message: BudgetLevels) -> None:
        if self._exporter is not None:
            self._exporter.set_budgets(message.statuses)

    def _observe(self, event: TaskEvent) -> None:
        if self._otel is not None:
            self._otel.observe(event)
        if self._exporter is None:
            return
        costs = [a.cost_usd for a in event.attempts]
        self._exporter.observe(event.task, event.attempts, costs)

    def _write(self) -> None:
        if not self._pending or self._settings.store_path is None:
            return
        if not self._usable_store():
            self._schedule_retry()
            return
        assert self._store is not None  # noqa: S101 - opened just above
        batches = list(self._pending)
        tasks = [e.task for b in batches for e in b.events]
        attempts = [a for b in batches for e in b.events for a in e.attempts]
        try:
            self._store.write(tasks, attempts)
        except StoreError as exc:
            self._failed("metrics_write_failed", exc)
            return
        self._pending.clear()
        self._pending_rows = 0
        _acknowledge(batches)
        if self._failing:
            self._failing = False
            self._event("metrics_store_recovered", path=self._store.label)

    def _usable_store(self) -> bool:
        """Open the store if it is not open; open it anew if its file was deleted or replaced."""
        if self._store is not None:
            moved = self._store.moved()
            if moved is None:
                return True
            path = self._store.label
            if not self._store.let_go():  # before the new file is opened
                self._moved_stores.append(self._store)
            self._store = None
            self._event("metrics_store_reopened", path=path, reason=moved)
        return self._open_store()

    def _open_store(self) -> bool:
        path = self._settings.store_path
        if path is None or self._store is not None:
            return self._store is not None
        try:
            self._store = open_store(path)
        except (StoreError, MissingExtraError) as exc:
            self._failed("metrics_store_unavailable", exc)
            return False
        return True

    def _failed(self, event: str, error: CallboardError) -> None:
        if not self._failing:
            self._event(event, error=str(error), pending_rows=self._pending_rows)
        self._failing = True
        self._schedule_retry()

    def _trim(self) -> None:
        dropped: list[TaskEvents] = []
        while self._pending_rows > MAX_PENDING_ROWS and self._pending:
            batch = self._pending.popleft()
            self._pending_rows -= _rows(batch)
            dropped.append(batch)
        if dropped:
            tasks = sum(len(b.events) for b in dropped)
            self._event("metrics_rows_dropped", tasks=tasks, reason="the store is unwritable")
            _acknowledge(dropped)

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
            except StoreError as exc:
                self._event("metrics_prune_failed", error=str(exc))
        if self._io is not None:
            self._io.call_later(PRUNE_EVERY_S, tell_quietly, self.actor_ref, Wake("prune", 0))

    def _start_otel(self) -> None:
        target = self._settings.otel
        if target is None:
            return
        try:
            install_sdk(target.endpoint, target.service_name)
            self._otel = OtelExporter(dict(target.servers))
        except MissingExtraError as exc:
            self._event("otel_unavailable", error=str(exc))

    def _start_exporter(self) -> None:
        self._start_otel()
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

    def release(self, reason: str) -> None:
        """Write what is pending, then close the store and the exporter.

        After a crash, what could not be written stays unacknowledged: the router sends
        it again to the next metrics actor.
        """
        self._write()
        if self._pending and not reason.startswith("crashed"):
            tasks = sum(len(b.events) for b in self._pending)
            self._event("metrics_rows_unwritten", tasks=tasks)
        for store in [self._store, *self._moved_stores]:
            if store is not None:
                store.close()
        self._store, self._moved_stores = None, []
        if self._otel is not None:
            self._otel.flush()
            self._otel = None
        if self._exporter is not None:
            self._exporter.close()
            self._exporter = None


def _rows(batch: TaskEvents) -> int:
    """Return how many store rows a batch makes: one per task and one per attempt."""
    return sum(1 + len(e.attempts) for e in batch.events)


def _acknowledge(batches: Iterable[TaskEvents]) -> None:
    """Tell each sender which of its batches need not be kept any more."""
    numbers: dict[pykka.ActorRef[Any], list[int]] = {}
    for batch in batches:
        if batch.reply_to is not None:
            numbers.setdefault(batch.reply_to, []).append(batch.number)
    for ref, sent in numbers.items():
        tell_quietly(ref, EventsStored(tuple(sent)))


def _resolve(reply: concurrent.futures.Future[Any], value: object) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        reply.set_result(value)
