"""Soak: one board's resident memory over many calls, with faults, streams, threads and asyncio.

Run it with ``nice -n 10 python bench/bench_soak.py`` (30,000 calls, a few minutes);
``--calls 1000000`` is the long run (at the 60-150 calls a second of a shared 2-core
machine, two hours or more). Two fake OpenAI servers run in
processes of their own (so their memory is not counted) and fail about ``--fault`` of their
requests (5 %: 500, 503, 429, a proxy page, a malformed body, a dropped or reset
connection, a stream cut after its first chunk); a role is cast to both, so most faults
fall back. Thread callers and asyncio callers on one event loop ask and stream (half
each), and every ``--every`` calls the resident set (``VmRSS`` from ``/proc/self/status``)
is sampled with what the C allocator holds (glibc's ``mallinfo2``: in use, free but kept,
and mapped apart), what SQLite holds (``sqlite3_memory_used``) and the number of threads.

It prints the samples, then the slope of the resident set in MB per 100k calls over the
first and the second half of the run (least squares), and checks that every task ended
exactly once: each call got one reply or one error, and the metrics store holds exactly
one row per task, the same tasks the callers saw (a digest of their ids).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from runtime import Callboard, CallboardError, StreamEnd, parse_config
from runtime.testing import (
    Behaviour,
    Drop,
    Fail,
    FakeOpenAI,
    Malformed,
    ProxyError,
    Reset,
    StreamError,
)

KEY = "sk-soak-0000"
PROMPT = "Write a function that parses ISO dates"
FAULTS: tuple[Behaviour, ...] = (
    Fail(500),
    Fail(503),
    Fail(429),
    ProxyError(),
    Malformed(),
    Drop(),
    Reset(),
    StreamError(after_chunks=1),
)
DIGEST_MASK = (1 << 64) - 1


# -- the fake providers, each in a process of its own ------------------------------------


def serve(fault: float, seed: int) -> None:
    """Serve one fake OpenAI that fails ``fault`` of its chat requests, until SIGTERM."""
    chance = random.Random(seed)

    def respond(_prompt: str) -> Behaviour | None:
        return chance.choice(FAULTS) if chance.random() < fault else None

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    with FakeOpenAI(keys={KEY}, respond=respond) as fake:
        print(fake.base_url, flush=True)
        stopping.wait()


@contextlib.contextmanager
def servers(count: int, fault: float) -> Iterator[list[str]]:
    """Start ``count`` fake servers in their own processes; yield their base URLs."""
    processes = []
    try:
        for seed in range(count):
            command = [sys.executable, __file__, "--serve", str(fault), "--seed", str(seed)]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
            processes.append(process)
        urls = []
        for process in processes:
            assert process.stdout is not None
            urls.append(process.stdout.readline().strip())
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


def config_text(urls: list[str], workdir: Path) -> str:
    parts = [
        f'[audit]\npath = "{workdir / "audit.jsonl"}"\nmax_bytes = 20000000\nkeep = 1\n',
        f'[metrics]\npath = "{workdir / "metrics.db"}"\n',
        "[retry]\nbackoff_initial_s = 0.01\n",
    ]
    for index, url in enumerate(urls):
        parts.append(
            f'[providers.p{index}]\ntype = "openai"\napi_key = "{KEY}"\nbase_url = "{url}"\n'
            'model = "gpt-4o"\nmax_concurrency = 256\n'
        )
    chain = ", ".join(f'"p{index}"' for index in range(len(urls)))
    parts.append(f"[roles.soak]\nproviders = [{chain}]\n")
    return "\n".join(parts)


# -- what the process holds ----------------------------------------------------------------


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libc_mallinfo2() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    function = getattr(ctypes.CDLL(name), "mallinfo2", None)
    if function is not None:
        function.restype = _Mallinfo2
    return function


MALLINFO2 = _libc_mallinfo2()


def _sqlite_library() -> ctypes.CDLL | None:
    """The shared SQLite library the ``sqlite3`` module runs on, if it is one (Linux)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/maps").read_text().splitlines():
            if "libsqlite3" in line:
                library = ctypes.CDLL(line.split()[-1])  # the one loaded: same handle
                library.sqlite3_memory_used.restype = ctypes.c_int64
                return library
    return None


SQLITE = _sqlite_library()


@dataclass(frozen=True, slots=True)
class Sample:
    """What the process held after ``calls`` calls."""

    calls: int
    seconds: float
    rss_mb: float
    anon_mb: float
    threads: int
    heap_used_mb: float
    heap_free_mb: float
    mmapped_mb: float
    sqlite_mb: float


def status_kb(status: str, name: str) -> int:
    found = re.search(rf"^{name}:\s+(\d+)", status, re.MULTILINE)
    return int(found[1]) if found else 0


def sample(calls: int, started: float) -> Sample:
    """Read this process's memory now (Linux ``/proc``; glibc's ``mallinfo2`` when there)."""
    status = Path("/proc/self/status").read_text()
    used = free = mapped = 0.0
    if MALLINFO2 is not None:
        info = MALLINFO2()
        used, free, mapped = info.uordblks / 2**20, info.fordblks / 2**20, info.hblkhd / 2**20
    sqlite_mb = SQLITE.sqlite3_memory_used() / 2**20 if SQLITE is not None else float("nan")
    return Sample(
        calls,
        time.monotonic() - started,
        status_kb(status, "VmRSS") / 1024,
        status_kb(status, "RssAnon") / 1024,
        status_kb(status, "Threads"),
        used,
        free,
        mapped,
        sqlite_mb,
    )


def slope_per_100k(samples: list[Sample]) -> float:
    """Least-squares slope of the resident set, in MB per 100,000 calls."""
    if len(samples) < 2:
        return float("nan")
    xs = [s.calls for s in samples]
    ys = [s.rss_mb for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread * 1e5


# -- the callers -----------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the callers saw: one outcome per call, and a digest of the task ids."""

    calls: int
    every: int
    started: float = field(default_factory=time.monotonic)
    issued: int = 0
    answered: int = 0
    failed: int = 0
    untracked: int = 0
    digest: int = 0
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> bool:
        """Claim the next call; ``False`` once every call is claimed."""
        with self.lock:
            if self.issued >= self.calls:
                return False
            self.issued += 1
            return True

    def ended(self, task_id: str | None, *, ok: bool) -> None:
        """Count one call's end (its task id, when it has one); sample every ``every``."""
        with self.lock:
            if task_id is None:
                self.untracked += 1
            else:
                self.digest = (self.digest + hash(task_id)) & DIGEST_MASK
            if ok:
                self.answered += 1
            else:
                self.failed += 1
            done = self.answered + self.failed
            if done % self.every == 0:
                self.note(sample(done, self.started))

    def note(self, taken: Sample) -> None:
        """Keep a sample and print it at once (a long run shows its course as it goes)."""
        self.samples.append(taken)
        print_sample(taken)


def streamed(board: Callboard) -> str:
    for event in board.stream("soak", PROMPT, on_broken="restart"):
        if isinstance(event, StreamEnd):
            return event.reply.task_id
    raise AssertionError("a stream ended without its StreamEnd")


def thread_caller(board: Callboard, ledger: Ledger, seed: int, stream_share: float) -> None:
    chance = random.Random(seed)
    while ledger.take():
        try:
            if chance.random() < stream_share:
                task_id = streamed(board)
            else:
                task_id = board.ask("soak", PROMPT).task_id
        except CallboardError as error:
            ledger.ended(getattr(error, "task_id", None), ok=False)
        else:
            ledger.ended(task_id, ok=True)


async def astreamed(board: Callboard) -> str:
    async for event in board.astream("soak", PROMPT, on_broken="restart"):
        if isinstance(event, StreamEnd):
            return event.reply.task_id
    raise AssertionError("a stream ended without its StreamEnd")


async def async_caller(board: Callboard, ledger: Ledger, seed: int, stream_share: float) -> None:
    chance = random.Random(seed)
    while ledger.take():
        try:
            if chance.random() < stream_share:
                task_id = await astreamed(board)
            else:
                task_id = (await board.aask("soak", PROMPT)).task_id
        except CallboardError as error:
            ledger.ended(getattr(error, "task_id", None), ok=False)
        else:
            ledger.ended(task_id, ok=True)


def async_callers(board: Callboard, ledger: Ledger, count: int, stream_share: float) -> None:
    async def main() -> None:
        await asyncio.gather(
            *(async_caller(board, ledger, 1000 + i, stream_share) for i in range(count))
        )

    asyncio.run(main())


def run(board: Callboard, ledger: Ledger, args: argparse.Namespace) -> None:
    workers = [
        threading.Thread(target=thread_caller, args=(board, ledger, i, args.stream_share))
        for i in range(args.threads)
    ]
    workers.append(
        threading.Thread(
            target=async_callers, args=(board, ledger, args.async_callers, args.stream_share)
        )
    )
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


# -- the report ------------------------------------------------------------------------------


def print_header() -> None:
    print(
        f"{'calls':>9} {'seconds':>8} {'RSS MB':>7} {'anon MB':>8} {'threads':>7} "
        f"{'malloc used':>11} {'malloc free':>11} {'mmapped':>8} {'SQLite':>7}",
        flush=True,
    )


def print_sample(s: Sample) -> None:
    print(
        f"{s.calls:>9} {s.seconds:>8.0f} {s.rss_mb:>7.1f} {s.anon_mb:>8.1f} {s.threads:>7} "
        f"{s.heap_used_mb:>11.1f} {s.heap_free_mb:>11.1f} {s.mmapped_mb:>8.1f} {s.sqlite_mb:>7.1f}",
        flush=True,
    )


def store_tasks(path: Path) -> tuple[int, int, int]:
    """Return (rows, distinct task ids, digest of the ids) of the store's tasks table."""
    digest = 0
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        rows, distinct = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT task_id) FROM tasks"
        ).fetchone()
        for (task_id,) in db.execute("SELECT task_id FROM tasks"):
            digest = (digest + hash(task_id)) & DIGEST_MASK
    return rows, distinct, digest


def check_tasks(ledger: Ledger, store: Path) -> bool:
    rows, distinct, digest = store_tasks(store)
    ended = ledger.answered + ledger.failed
    print(f"\ncalls {ledger.calls}: {ledger.answered} answered, {ledger.failed} failed")
    print(f"tasks in the metrics store: {rows} rows, {distinct} distinct")
    checks = {
        "every call ended once": ended == ledger.calls,
        "every failure named its task": ledger.untracked == 0,
        "one store row per task": rows == distinct == ledger.calls,
        "the store's tasks are the callers'": digest == ledger.digest,
    }
    for name, passed in checks.items():
        print(f"  {'ok  ' if passed else 'FAIL'} {name}")
    return all(checks.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=30_000)
    parser.add_argument("--every", type=int, help="calls between samples (default: calls/40)")
    parser.add_argument("--fault", type=float, default=0.05, help="share of requests that fail")
    parser.add_argument("--threads", type=int, default=8, help="thread callers")
    parser.add_argument("--async-callers", type=int, default=8, help="asyncio callers")
    parser.add_argument("--stream-share", type=float, default=0.5)
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.seed)
        return 0
    every = args.every or max(1, args.calls // 40)
    python = sys.version.split()[0]
    print(f"callboard soak: {args.calls} calls, {args.fault:.0%} faults, Python {python}")
    callers = f"{args.threads} threads, {args.async_callers} asyncio"
    print(f"callers: {callers}; {args.stream_share:.0%} streamed")
    print(f"MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', '(unset)')}")
    with tempfile.TemporaryDirectory() as tmp, servers(2, args.fault) as urls:
        workdir = Path(tmp)
        board = Callboard(parse_config(config_text(urls, workdir), environ={}), check=False)
        ledger = Ledger(args.calls, every)
        print_header()
        ledger.note(sample(0, ledger.started))
        run(board, ledger, args)
        board.close()
        half = len(ledger.samples) // 2
        first, second = ledger.samples[: half + 1], ledger.samples[half:]
        print(
            f"\nRSS {ledger.samples[0].rss_mb:.1f} MB at start, {ledger.samples[-1].rss_mb:.1f} MB"
            f" after {ledger.samples[-1].calls} calls"
        )
        print(f"slope, first half:  {slope_per_100k(first):+.2f} MB per 100k calls")
        print(f"slope, second half: {slope_per_100k(second):+.2f} MB per 100k calls")
        ok = check_tasks(ledger, workdir / "metrics.db")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
