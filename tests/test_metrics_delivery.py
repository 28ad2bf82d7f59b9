"""Every task's rows reach the metrics store, or their loss is in the audit log.

Each test crashes a real actor (a message no handler takes), or moves the store's file,
and reads the row count back from the SQLite file itself.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import signal
import socket
import sqlite3

import httpx
import pykka
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import (
    FAST_SECTIONS,
    attempt_row,
    callboard,
    config_toml,
    eventually,
    run_script,
    task_row,
)

from actors import MetricsActor, RouterActor
from actors._messages import GetStats, TaskEvents
from actors._metrics import MetricsActorSettings
from runtime._metrics.store_sqlite import SqliteStore
from runtime._rows import TaskEvent

pytestmark = pytest.mark.timeout(30)

SLOW_RESTARTS = (
    FAST_SECTIONS
    + """
[supervision]
max_restarts = 3
window_s = 60
backoff_initial_s = 1.0
backoff_max_s = 1.0
"""
)
"""Restarts that wait 0.5 to 1 s: long enough for the router to tell a dead actor."""


class Garbage:
    """A message no actor handles: telling it crashes the actor, as a bug would."""


def only_ref(actor_class: type[pykka.Actor]) -> pykka.ActorRef:
    (ref,) = pykka.ActorRegistry.get_by_class(actor_class)
    return ref


class ManualTimers:
    """Stands in for the I/O loop's timers: they fire when the test says."""

    def __init__(self) -> None:
        self.waiting: list[tuple[object, tuple[object, ...]]] = []

    def call_later(self, _delay_s: float, callback, *args: object) -> None:
        """Keep the timer until `fire_all`."""
        self.waiting.append((callback, args))

    def fire_all(self, actor: pykka.ActorRef) -> None:
        """Fire every timer ``actor`` has set so far, then wait until it has handled them."""
        settle(actor)
        waiting, self.waiting = self.waiting, []
        for callback, args in waiting:
            callback(*args)
        settle(actor)


def settle(actor: pykka.ActorRef) -> None:
    """Wait until ``actor`` has handled every message told to it before."""
    handled: concurrent.futures.Future = concurrent.futures.Future()
    actor.tell(GetStats(handled))
    handled.result(timeout=5)


def stored_tasks(path) -> set[str]:
    """Read the task ids in the store through a connection of the test's own."""
    if not path.exists():
        return set()
    with contextlib.closing(sqlite3.connect(path)) as db:
        try:
            return {row[0] for row in db.execute("SELECT task_id FROM tasks")}
        except sqlite3.OperationalError as exc:  # the board made the file, not yet its tables
            if "no such table" in str(exc):
                return set()
            raise


def start(fakes, deployment, sections: str = SLOW_RESTARTS):
    only = fakes("openai")
    deployment.write(
        config_toml(deployment, {"only": only}, {"coder": ["only"]}, sections=sections)
    )
    return deployment.board()


def test_a_router_crash_keeps_the_rows_it_was_holding(fakes, deployment):
    """The rows a router held for its next batch reach the store although it crashed."""
    board = start(fakes, deployment)
    answered = {board.ask("coder", f"task {i}").task_id for i in range(5)}
    router = only_ref(RouterActor)
    router.tell(Garbage())
    board._await_child("router", replacing=router)
    board.close()
    assert stored_tasks(deployment.metrics_path) == answered
    assert deployment.events("metrics_rows_lost") == []


def test_rows_told_to_a_crashed_metrics_actor_are_sent_again_to_its_successor(fakes, deployment):
    """Batches the router told a dead metrics actor go to the restarted one, stored once."""
    board = start(fakes, deployment)
    before = {board.ask("coder", f"before {i}").task_id for i in range(3)}
    metrics = only_ref(MetricsActor)
    metrics.tell(Garbage())
    assert metrics.actor_stopped.wait(5)
    during = {board.ask("coder", f"during {i}").task_id for i in range(3)}
    board.metrics(since="1h")  # the router passes its batch on, to a dead actor
    board._await_child("metrics", replacing=metrics)
    (group,) = board.metrics(since="1h").groups
    assert group.calls == 6
    board.close()
    assert stored_tasks(deployment.metrics_path) == before | during
    (resent,) = deployment.events("metrics_rows_resent")
    assert resent["tasks"] == 6


def test_rows_are_lost_only_with_a_record_when_the_metrics_actor_fails_for_good(fakes, deployment):
    """Past its restarts the metrics actor is given up; the rows it never had are counted."""
    sections = SLOW_RESTARTS.replace("max_restarts = 3", "max_restarts = 0")
    board = start(fakes, deployment, sections)
    metrics = only_ref(MetricsActor)
    board.ask("coder", "before")
    metrics.tell(Garbage())
    assert metrics.actor_stopped.wait(5)
    board.ask("coder", "after")
    board.close()
    lost = sum(e["tasks"] for e in deployment.events("metrics_rows_lost"))
    assert lost == 2 - len(stored_tasks(deployment.metrics_path))
    assert lost >= 1


def test_a_store_that_comes_back_while_the_board_is_idle_gets_its_rows(tmp_path):
    """An unopenable store is retried on a timer after every new batch, not only once."""
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the store's folder should be")
    timers = ManualTimers()
    settings = MetricsActorSettings(blocker / "metrics.db", 90.0)
    actor = MetricsActor.start(None, settings=settings, io=timers)
    timers.fire_all(actor)  # the first retry finds no rows: the board is idle
    blocker.unlink()
    actor.tell(TaskEvents(1, (TaskEvent(task_row(), (attempt_row(),)),)))
    timers.fire_all(actor)
    assert stored_tasks(blocker / "metrics.db") == {"t1"}
    actor.stop()


def test_a_deleted_store_is_created_again_and_the_audit_log_says_so(fakes, deployment):
    """Rows written after the file was deleted land in a new file, not in the dead one."""
    board = start(fakes, deployment)
    board.ask("coder", "first")
    board.metrics(since="1h")
    deployment.metrics_path.unlink()  # its WAL and shared-memory files stay behind
    later = {board.ask("coder", f"later {i}").task_id for i in range(2)}
    (group,) = board.metrics(since="1h").groups
    assert group.calls == 2
    board.close()
    assert stored_tasks(deployment.metrics_path) == later
    (reopened,) = deployment.events("metrics_store_reopened")
    assert "deleted" in reopened["reason"]
    assert not deployment.metrics_path.with_name("metrics.db-wal").exists()


def test_a_replaced_store_is_reopened_and_written(fakes, deployment, tmp_path):
    """A store file swapped under the board (a restore) gets the rows from then on."""
    board = start(fakes, deployment)
    board.ask("coder", "into the old file")
    board.metrics(since="1h")
    restored = SqliteStore(tmp_path / "restored.db")
    restored.write([task_row(task_id="restored")], [attempt_row(task_id="restored")])
    restored.close()
    (tmp_path / "restored.db").replace(deployment.metrics_path)
    later = {board.ask("coder", f"later {i}").task_id for i in range(2)}
    board.close()
    assert stored_tasks(deployment.metrics_path) == {"restored"} | later
    (reopened,) = deployment.events("metrics_store_reopened")
    assert "replaced" in reopened["reason"]


def test_a_store_moved_aside_with_its_wal_spares_the_new_stores_files(tmp_path):
    """Letting go of a moved store never removes the WAL of the store now at its name."""
    path = tmp_path / "metrics.db"
    old = SqliteStore(path)
    old.write([task_row(task_id="old")], [attempt_row(task_id="old")])
    for suffix in ("", "-wal", "-shm"):  # as `callboard metrics rebuild --replace` does
        (tmp_path / f"metrics.db{suffix}").rename(tmp_path / f"aside.db{suffix}")
    new = SqliteStore(path)
    new.write([task_row(task_id="new")], [])
    assert "moved aside" in (old.moved() or "")
    assert not old.let_go()
    new.write([task_row(task_id="newer")], [])
    assert (tmp_path / "metrics.db-wal").exists()
    new.close()
    old.close()
    assert stored_tasks(path) == {"new", "newer"}
    assert stored_tasks(tmp_path / "aside.db") == {"old"}


def test_a_batch_written_twice_is_counted_once(tmp_path):
    """Rows and hourly and daily rollups ignore a batch the store already holds."""
    store = SqliteStore(tmp_path / "m.db")
    tasks = [task_row(task_id="a"), task_row(task_id="b")]
    attempts = [
        attempt_row(task_id="a"),
        attempt_row(task_id="b"),
        attempt_row(task_id="b", attempt=2),
    ]
    store.write(tasks, attempts)
    once = store.report(0, 4e9).to_dict()
    store.write(tasks, attempts)
    store.write([task_row(task_id="c")], [attempt_row(task_id="b"), attempt_row(task_id="c")])
    assert store.counts() == (3, 4)
    (group,) = store.report(0, 4e9).groups
    assert group.calls == 4
    store.write([], [attempt_row(task_id="c")])
    assert store.report(0, 4e9).to_dict()["groups"][0]["calls"] == 4
    assert once["groups"][0]["calls"] == 3
    store.close()


def test_rows_reach_the_store_within_a_second_while_the_board_is_idle(fakes, deployment):
    """Another reader sees every task soon after it ends, with no further call to the board."""
    board = start(fakes, deployment, FAST_SECTIONS)
    answered = {board.ask("coder", f"task {i}").task_id for i in range(2)}
    eventually(lambda: stored_tasks(deployment.metrics_path) == answered, timeout_s=5)
    report = callboard("metrics", "--config", str(deployment.path), "--json")
    (group,) = json.loads(report.stdout)["groups"]
    assert group["calls"] == 2


def test_prometheus_shows_a_call_while_the_board_is_idle(fakes, deployment):
    """A scrape soon after a call counts it, with no further call to the board."""
    only = fakes("openai")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = config_toml(deployment, {"only": only}, {"coder": ["only"]})
    deployment.write(text.replace("[metrics]\n", f"[metrics]\nprometheus_port = {port}\n"))
    board = deployment.board()
    board.ask("coder", "one call")

    def calls() -> float:
        exposition = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(exposition)
            for sample in family.samples
            if sample.name == "callboard_calls_total"
        )

    eventually(lambda: calls() == 1, timeout_s=5)


IDLE_DAEMON = """
import sys, threading
from runtime import Callboard

board = Callboard.from_config(sys.argv[1], check=False)
for i in range(2):
    print(board.ask("coder", f"task {i}").task_id, flush=True)
threading.Event().wait()  # idle until killed
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_a_process_killed_after_an_idle_second_keeps_its_rows(fakes, deployment, tmp_path):
    """Rows stored during the idle second survive a SIGKILL, for readers in other processes."""
    only = fakes("openai")
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    script = tmp_path / "daemon.py"
    script.write_text(IDLE_DAEMON)
    child = run_script(script, deployment.path)
    assert child.stdout is not None
    answered = {child.stdout.readline().strip() for _ in range(2)}
    try:
        eventually(lambda: stored_tasks(deployment.metrics_path) == answered, timeout_s=5)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert stored_tasks(deployment.metrics_path) == answered
