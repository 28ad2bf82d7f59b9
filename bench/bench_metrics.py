"""Benchmark: the metrics store at a million calls.

Run it with ``python bench/bench_metrics.py`` (``--calls N`` to change the size). It
writes N generated calls spread over 30 days (3 providers, 4 roles, 5% failures, one
task in ten needing a second attempt) through the metrics actor, then times each report
a user can ask for, as the median of several runs. It prints the write throughput of the
store alone and of the actor (batches told, until the store has them all), and what
storing a task costs as the store grows (``--growth N`` tasks, default 300,000) with the
board's task ids (UUIDv7, time-ordered) against random ones (UUIDv4): CPU and wall time
per task for each successive 50,000, in the same run.

``--url postgresql://...`` runs the same on a PostgreSQL store instead of a temporary
SQLite file, in a schema of its own that it drops at the end (`[metrics] url`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pykka

from actors import MetricsActor
from actors._messages import SyncStore, TaskEvents
from actors._metrics import MetricsActorSettings
from runtime._metrics.store import Filters
from runtime._metrics.store_open import StoreAddress, open_store
from runtime._rows import AttemptRow, TaskEvent, TaskRow
from runtime._task_spec import new_task_id

PROVIDERS = (("claude", "claude-sonnet-4-5"), ("gpt", "gpt-4o"), ("gemini", "gemini-2.5-flash"))
ROLES = ("coder", "reviewer", "planner", "clarifier")
DAY = 86400.0


def generate(calls: int, now: float, seed: int = 7) -> list[TaskEvent]:
    """Make tasks whose attempts add up to ``calls``, spread over the last 30 days."""
    rng = random.Random(seed)
    events: list[TaskEvent] = []
    made = 0
    while made < calls:
        ts = now - rng.random() * 30 * DAY
        role = rng.choice(ROLES)
        chain = rng.sample(PROVIDERS, 2)
        task_id = f"{len(events):012x}"
        workflow = f"wf-{len(events) // 50}"
        attempts = []
        if rng.random() < 0.1:
            attempts.append(
                _attempt(
                    rng, task_id, workflow, role, chain[0], ts - 1, 1, "server", fallback=False
                )
            )
        ok_provider = chain[1] if attempts else chain[0]
        outcome = "ok" if rng.random() > 0.05 else "timeout"
        attempts.append(
            _attempt(
                rng,
                task_id,
                workflow,
                role,
                ok_provider,
                ts,
                len(attempts) + 1,
                outcome,
                fallback=bool(attempts),
            )
        )
        last = attempts[-1]
        task = TaskRow(
            ts=ts, task_id=task_id, workflow_id=workflow, role=role,
            outcome="ok" if outcome == "ok" else "failed",
            provider=last.provider if outcome == "ok" else None,
            model=last.model if outcome == "ok" else None, attempts=len(attempts),
            input_tokens=last.input_tokens, output_tokens=last.output_tokens, cached_tokens=0,
            latency_ms=sum(a.latency_ms for a in attempts), fallback=len(attempts) > 1,
        )  # fmt: skip
        events.append(TaskEvent(task, tuple(attempts)))
        made += len(attempts)
    return events


def _attempt(rng, task_id, workflow, role, provider, ts, n, outcome, *, fallback) -> AttemptRow:  # type: ignore[no-untyped-def]  # noqa: PLR0917
    ok = outcome == "ok"
    return AttemptRow(
        ts=round(ts, 6), task_id=task_id, workflow_id=workflow, role=role, attempt=n,
        provider=provider[0], model=provider[1], outcome=outcome, status=200 if ok else 500,
        latency_ms=rng.lognormvariate(7, 0.6), ttft_ms=rng.lognormvariate(6, 0.5) if ok else None,
        input_tokens=rng.randint(200, 4000) if ok else 0,
        output_tokens=rng.randint(50, 1500) if ok else 0, cached_tokens=0, fallback=fallback,
    )  # fmt: skip


def time_ms(run: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples)


def write_through_actor(path: StoreAddress, events: list[TaskEvent], batch: int) -> float:
    """Tell the actor batches as the router would; return seconds until all are stored."""
    settings = MetricsActorSettings(store_path=path, retain_days=3650)
    actor = MetricsActor.start(None, settings=settings)
    start = time.perf_counter()
    for i in range(0, len(events), batch):
        actor.tell(TaskEvents(i // batch + 1, tuple(events[i : i + batch])))
    done: concurrent.futures.Future[StoreAddress | None] = concurrent.futures.Future()
    actor.tell(SyncStore(done))
    done.result(timeout=3600)
    elapsed = time.perf_counter() - start
    actor.stop()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", help="a PostgreSQL server to use instead of SQLite")
    parser.add_argument("--growth", type=int, default=300_000, help="tasks per id kind")
    args = parser.parse_args()
    if args.growth:
        with tempfile.TemporaryDirectory() as tmp, _stores(args.url, Path(tmp)) as stores:
            bench_growth(stores, args.growth)
    now = time.time()
    events = generate(args.calls, now)
    attempts = sum(len(e.attempts) for e in events)
    print(f"metrics benchmark: {attempts:,} attempts in {len(events):,} tasks over 30 days")
    with tempfile.TemporaryDirectory() as tmp, _stores(args.url, Path(tmp)) as (first, second):
        alone = open_store(first)
        sample = events[:100_000]
        start = time.perf_counter()
        for i in range(0, len(sample), 256):
            chunk = sample[i : i + 256]
            alone.write([e.task for e in chunk], [a for e in chunk for a in e.attempts])
        rate = sum(1 + len(e.attempts) for e in sample) / (time.perf_counter() - start)
        alone.close()
        print(f"\n## Writes\n  store alone, batches of 256 tasks   {rate:,.0f} rows/s")
        seconds = write_through_actor(second, events, 256)
        rows = len(events) + attempts
        print(
            f"  metrics actor, 256-task batches     {rows / seconds:,.0f} rows/s "
            f"({seconds:.1f} s for {rows:,} rows)"
        )
        if isinstance(second, Path):
            size_mb = second.stat().st_size / 1e6
            print(f"  store size                          {size_mb:.0f} MB")
        store = open_store(second, readonly=True)
        everything = (now - 31 * DAY, now + 1)
        cases: list[tuple[str, Callable[[], object]]] = [
            ("report, last 24h", lambda: store.report(now - DAY, now)),
            ("report, last 7 days", lambda: store.report(now - 7 * DAY, now)),
            ("report, 30 days (every row)", lambda: store.report(*everything)),
            ("report, 30 days, by model", lambda: store.report(*everything, "model")),
            ("report, 30 days, one role",
             lambda: store.report(*everything, filters=Filters("coder"))),
            ("report, one workflow (raw rows)",
             lambda: store.report(*everything, filters=Filters(workflow="wf-1234"))),
            ("trend, hourly over 7 days", lambda: store.trend(now - 7 * DAY, now, "hour")),
            ("trend, daily over 30 days", lambda: store.trend(now - 30 * DAY, now, "day")),
        ]  # fmt: skip
        print(f"\n## Reports over {attempts:,} attempts (median and worst of {args.runs} runs)")
        for name, run in cases:
            median, worst = time_ms(run, args.runs)
            print(f"  {name:<34} {median:7.1f} ms  (worst {worst:.1f} ms)")
        store.close()
    pykka.ActorRegistry.stop_all()


GROWTH_STEP = 50_000
GROWTH_BATCH = 256


def bench_growth(stores: tuple[StoreAddress, StoreAddress], tasks: int) -> None:
    """Write ``tasks`` one-attempt tasks into each store, ids time-ordered then random.

    The batches are the size the metrics actor writes under load; the rows are alike but
    for their ids, so the difference is the ids' order in the store's indexes.
    """
    kinds: dict[str, Callable[[], str]] = {
        "time-ordered (board)": new_task_id,
        "random (uuid4)": lambda: uuid.uuid4().hex,
    }
    per_step: dict[str, list[tuple[float, float]]] = {}
    for (name, make_id), address in zip(kinds.items(), stores, strict=True):
        store = open_store(address)
        steps = per_step[name] = []
        start = time.time()
        for step_start in range(0, tasks, GROWTH_STEP):
            cpu, wall = time.thread_time(), time.perf_counter()
            for offset in range(step_start, min(step_start + GROWTH_STEP, tasks), GROWTH_BATCH):
                ts = start + offset / 1000
                ids = [make_id() for _ in range(GROWTH_BATCH)]
                attempts = [_growth_attempt(task_id, ts) for task_id in ids]
                rows = [_growth_task(task_id, ts) for task_id in ids]
                store.write(rows, attempts)
            done = min(GROWTH_STEP, tasks - step_start)
            cpu_us = (time.thread_time() - cpu) / done * 1e6
            steps.append((cpu_us, (time.perf_counter() - wall) / done * 1e6))
        store.close()
    print(f"\n## Writes as the store grows (us per task, CPU / wall, batches of {GROWTH_BATCH})")
    print(f"  {'tasks stored':>14}  " + "  ".join(f"{name:>24}" for name in per_step))
    for index in range(len(next(iter(per_step.values())))):
        upto = min((index + 1) * GROWTH_STEP, tasks)
        cells = [f"{cpu:9.1f} / {wall:6.1f}" for cpu, wall in (v[index] for v in per_step.values())]
        print(f"  {upto:>14,}  " + "  ".join(f"{cell:>24}" for cell in cells))


def _growth_attempt(task_id: str, ts: float) -> AttemptRow:
    return AttemptRow(
        ts=round(ts, 6), task_id=task_id, workflow_id=None, role="coder", attempt=1,
        provider="gpt", model="gpt-4o", outcome="ok", status=200, latency_ms=850.0,
        ttft_ms=None, input_tokens=1200, output_tokens=300, cached_tokens=0, fallback=False,
    )  # fmt: skip


def _growth_task(task_id: str, ts: float) -> TaskRow:
    return TaskRow(
        ts=round(ts, 6), task_id=task_id, workflow_id=None, role="coder", outcome="ok",
        provider="gpt", model="gpt-4o", attempts=1, input_tokens=1200, output_tokens=300,
        cached_tokens=0, latency_ms=850.0, fallback=False,
    )  # fmt: skip


@contextlib.contextmanager
def _stores(url: str | None, tmp: Path) -> Iterator[tuple[StoreAddress, StoreAddress]]:
    """Two empty stores: SQLite files in ``tmp``, or two schemas on the server at ``url``."""
    if url is None:
        yield tmp / "alone.db", tmp / "metrics.db"
        return
    import psycopg  # noqa: PLC0415 - only for --url

    names = [f"bench_{os.getpid()}_{n}" for n in ("alone", "actor")]
    with psycopg.connect(url, autocommit=True) as db:
        for name in names:
            db.execute(f"CREATE SCHEMA {name}")
    separator = "&" if "?" in url else "?"
    try:
        first, second = (f"{url}{separator}options=-csearch_path%3D{n}" for n in names)
        yield first, second
    finally:
        with psycopg.connect(url, autocommit=True) as db:
            for name in names:
                db.execute(f"DROP SCHEMA {name} CASCADE")


if __name__ == "__main__":
    main()
