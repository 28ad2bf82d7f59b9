"""The design's floor: callboard's thread hand-offs with none of its work.

A caller tells a router actor, the router tells a provider actor, the provider starts the
HTTP attempt on the I/O loop, the attempt's end tells the provider, the provider tells
the router, and the router settles the caller's future: the six hand-offs of a task, on
the same actor base class (`DispatchingActor`, pykka threads with `SimpleQueue` inboxes),
the same I/O loop, HTTP client and protocol code as the board, and no routing, limits,
breaker, budgets, records or metrics. `bench_runtime.py --only floor` runs it beside the
board: what the skeleton costs is what the design costs before callboard does anything.

``Skeleton(..., records=folder)`` adds the least a task must leave behind, written the
cheapest way: its three audit lines (``task_started``, ``attempt``, ``task_finished``, with
the fields the board writes) as JSON from one ``orjson.dumps`` each, written in one
``os.write`` before the caller hears; and its two metrics rows (the attempt and the
task), told in batches as the board tells them (256 tasks, or a second after the first)
to a metrics actor that inserts them into SQLite with the store's
schema and keys. No routing, limits, budgets, redaction or live statistics: what the
skeleton with records costs is the floor of a board that writes every record.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pykka
from uuid_utils import uuid7

from actors._child import DispatchingActor, tell_quietly
from runtime._metrics.outbox import EVENT_BATCH_S, MAX_EVENT_BATCH
from runtime._metrics.store import SCHEMA
from runtime._metrics.store_sqlite import SQLITE
from runtime._transport.attempt import AttemptLimits, run_attempt
from runtime._transport.http import ProviderClient
from runtime._transport.io_loop import IoLoop
from runtime.protocols import HttpCall, WireProtocol


@dataclass(frozen=True, slots=True)
class _Submit:
    reply: concurrent.futures.Future[Any]


@dataclass(frozen=True, slots=True)
class _Start:
    call_id: int


@dataclass(frozen=True, slots=True)
class _IoDone:
    call_id: int
    result: object


@dataclass(frozen=True, slots=True)
class _Done:
    call_id: int
    result: object


class _Provider(DispatchingActor):
    def __init__(self, router: pykka.ActorRef[Any], io: IoLoop, attempt: _Attempt) -> None:
        super().__init__()
        self.router, self.io, self.attempt = router, io, attempt
        self.handlers = {_Start: self._start, _IoDone: self._io_done}

    def _start(self, message: _Start) -> None:
        self.io.spawn(self.attempt.run(), _tell_done, self.actor_ref, message.call_id)

    def _io_done(self, message: _IoDone) -> None:
        self.router.tell(_Done(message.call_id, message.result))


def _tell_done(ref: pykka.ActorRef[Any], call_id: int, task: asyncio.Task[object]) -> None:
    ref.tell(_IoDone(call_id, task.result()))


class _Router(DispatchingActor):
    def __init__(self) -> None:
        super().__init__()
        self.provider: pykka.ActorRef[Any] | None = None
        self.waiting: dict[int, concurrent.futures.Future[Any]] = {}
        self.next_id = 0
        self.handlers = {_Submit: self._submit, _Done: self._done, pykka.ActorRef: self._wire}

    def _wire(self, provider: pykka.ActorRef[Any]) -> None:
        self.provider = provider

    def _submit(self, message: _Submit) -> None:
        self.next_id += 1
        self.waiting[self.next_id] = message.reply
        assert self.provider is not None
        self.provider.tell(_Start(self.next_id))

    def _done(self, message: _Done) -> None:
        self.waiting.pop(message.call_id).set_result(message.result)


@dataclass(frozen=True, slots=True)
class _Flush:
    pass


@dataclass(frozen=True, slots=True)
class _Rows:
    attempts: list[tuple[object, ...]]
    tasks: list[tuple[object, ...]]


_INSERT_ATTEMPT = "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_TASK = "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


class _Metrics(DispatchingActor):
    """Stores the rows it is told, a batch per transaction (the metrics store's schema)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.db: sqlite3.Connection | None = None
        self.handlers = {_Rows: self._store}

    def on_start(self) -> None:
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA.format(table_options=SQLITE.table_options))

    def _store(self, rows: _Rows) -> None:
        assert self.db is not None
        self.db.execute("BEGIN")
        self.db.executemany(_INSERT_ATTEMPT, rows.attempts)
        self.db.executemany(_INSERT_TASK, rows.tasks)
        self.db.execute("COMMIT")

    def on_stop(self) -> None:
        if self.db is not None:
            self.db.close()


class _RecordingRouter(_Router):
    """The skeleton's router, writing each task's audit lines and telling its rows."""

    def __init__(self, audit: Path, metrics: pykka.ActorRef[Any], io: IoLoop) -> None:
        super().__init__()
        self.audit_path, self.metrics, self.io = audit, metrics, io
        self.timer_set = False
        self.handlers[_Flush] = self._send_rows
        self.fd = -1
        self.started: dict[int, tuple[str, float, float]] = {}
        self.attempt_rows: list[tuple[object, ...]] = []
        self.task_rows: list[tuple[object, ...]] = []

    def on_start(self) -> None:
        self.fd = os.open(self.audit_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def on_stop(self) -> None:
        self._send_rows()
        os.close(self.fd)

    def _send_rows(self, _message: object = None) -> None:
        self.timer_set = False
        if self.task_rows:
            self.metrics.tell(_Rows(self.attempt_rows, self.task_rows))
            self.attempt_rows, self.task_rows = [], []

    def _batch(self) -> None:
        """Send the rows as the board does: 256 tasks at a time, or a second after the first."""
        if len(self.task_rows) >= MAX_EVENT_BATCH:
            self._send_rows()
        elif not self.timer_set:
            self.timer_set = True
            self.io.call_later(EVENT_BATCH_S, tell_quietly, self.actor_ref, _Flush())

    def _submit(self, message: _Submit) -> None:
        super()._submit(message)
        self.started[self.next_id] = (uuid7().hex, time.time(), time.perf_counter())

    def _done(self, message: _Done) -> None:
        task_id, wall, began = self.started.pop(message.call_id)
        latency_ms = (time.perf_counter() - began) * 1000
        usage = getattr(message.result, "usage", None)
        tokens = (usage.input_tokens, usage.output_tokens, 0) if usage else (0, 0, 0)
        now = time.time()
        started = {
            "ts": wall, "event": "task_started", "task_id": task_id, "workflow_id": None,
            "role": "bench", "tenant": None, "request_id": None, "chain": ["fast"],
            "deadline_s": 60.0, "strategy": "priority",
        }  # fmt: skip
        attempt = {
            "ts": now, "event": "attempt", "task_id": task_id, "workflow_id": None,
            "role": "bench", "attempt": 1, "provider": "fast", "model": "gpt-4o",
            "outcome": "ok", "error_kind": None, "status": 200, "latency_ms": latency_ms,
            "ttft_ms": None, "input_tokens": tokens[0], "output_tokens": tokens[1],
            "cached_tokens": tokens[2], "cost_usd": 0.0001, "fallback": False,
            "message": None, "tenant": None,
        }  # fmt: skip
        finished = {
            "ts": now, "event": "task_finished", "task_id": task_id, "workflow_id": None,
            "role": "bench", "outcome": "ok", "provider": "fast", "model": "gpt-4o",
            "attempts": 1, "trail": [{"provider": "fast", "outcome": "ok"}],
            "input_tokens": tokens[0], "output_tokens": tokens[1], "cached_tokens": tokens[2],
            "cost_usd": 0.0001, "latency_ms": latency_ms, "fallback": False, "error": None,
            "tenant": None, "request_id": None,
        }  # fmt: skip
        os.write(
            self.fd,
            b"".join((orjson.dumps(started), b"\n", orjson.dumps(attempt), b"\n",
                      orjson.dumps(finished), b"\n")),
        )  # fmt: skip
        self.attempt_rows.append(
            (task_id, 1, now, None, "bench", "fast", "gpt-4o", "ok", 200, latency_ms, None,
             *tokens, 0.0001, 0, None)
        )  # fmt: skip
        self.task_rows.append(
            (task_id, now, None, "bench", "ok", "fast", "gpt-4o", 1, *tokens, 0.0001,
             latency_ms, 0, None)
        )  # fmt: skip
        self._batch()
        super()._done(message)


@dataclass(frozen=True, slots=True)
class _Attempt:
    client: ProviderClient
    protocol: WireProtocol
    call: HttpCall
    limits: AttemptLimits

    def run(self) -> Any:
        return run_attempt(self.client, self.protocol, self.call, self.limits)


class Skeleton:
    """The hand-offs of a task through a router and a provider actor, and nothing else."""

    def __init__(self, protocol: WireProtocol, call: HttpCall, records: Path | None = None) -> None:
        self.io = IoLoop("skeleton-io")
        self.client = ProviderClient(1024, 5.0)
        attempt = _Attempt(self.client, protocol, call, AttemptLimits(4.0, 60.0))
        self.metrics: pykka.ActorRef[Any] | None = None
        if records is None:
            self.router = _Router.start()
        else:
            self.metrics = _Metrics.start(records / "skeleton-metrics.db")
            audit = records / "skeleton-audit.jsonl"
            self.router = _RecordingRouter.start(audit, self.metrics, self.io)
        self.provider = _Provider.start(self.router, self.io, attempt)
        self.router.tell(self.provider)

    def ask(self) -> object:
        """One call from a thread: wait for its answer."""
        reply: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.router.tell(_Submit(reply))
        return reply.result(60)

    async def aask(self) -> object:
        """One call from asyncio: await its answer."""
        reply: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.router.tell(_Submit(reply))
        return await asyncio.wrap_future(reply)

    def close(self) -> None:
        """Stop the actors, close the client and the loop."""
        self.provider.stop()
        self.router.stop()
        if self.metrics is not None:
            self.metrics.stop()
        self.io.run(self.client.aclose(), 5)
        self.io.close()
