"""Benchmark: what callboard adds on top of the same HTTP calls made directly.

Run it with ``python bench/bench_runtime.py`` (``--quick`` for a short pass). It starts
loopback OpenAI-compatible fake servers in separate processes (so the server does not
compete with the client for the GIL), then measures in one run, with the same HTTP
client, the same wire protocol and the same requests:

- latency per call at concurrency 1 (p50, p99), directly and through callboard, for a
  thread caller and an asyncio caller: the difference is what callboard adds (the direct
  calls ask for whole answers, as callboard's asks do once a provider has answered fast);
- requests per second at concurrency 1, 16, 64 and 256, and client CPU per call;
- where that CPU goes: CPU per call of each thread (caller, router, provider, I/O loop)
  at concurrency 1, read from ``/proc`` (Linux only), for asks and for streaming callers;
- the wall time of 500 concurrent calls to a server that answers in 200 ms;
- the wall time of 2000 calls at once to a provider capped at 64 in flight (the rest
  wait in its queue), against the same cap kept by hand with a semaphore;
- the time to answer when the first provider answers 503 or refuses connections and the
  second is healthy, against asking the healthy one directly;
- import time and peak resident memory, beside a process making the same calls with the
  HTTP stack alone (``memory_probe.py``).

Every figure is the median of several runs (``--runs``), each run interleaving the
direct and callboard variants so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import gc
import os
import queue
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson
from skeleton import Skeleton

from runtime import Callboard, parse_config
from runtime._chat import ChatRequest, Message, Tuning
from runtime._transport.attempt import AttemptLimits, run_attempt
from runtime._transport.http import ProviderClient
from runtime._transport.io_loop import IoLoop
from runtime.protocols import PROTOCOLS, Endpoint
from runtime.testing import Fail, FakeOpenAI

T = TypeVar("T")
KEY = "sk-bench-0000"
HERE = Path(__file__).resolve().parent
PROMPT = "Write a function that parses ISO dates"


@contextlib.contextmanager
def server(latency_s: float) -> Iterator[str]:
    """Run a fake OpenAI server in its own process; yield its base URL."""
    command = [sys.executable, "-m", "runtime.testing", "serve", "--protocol", "openai"]
    command += ["--latency", str(latency_s), "--key", KEY]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_text(
    providers: dict[str, str],
    chain: list[str],
    audit: Path,
    *,
    stream: bool = True,
    max_concurrency: int = 1024,
    records: bool = True,
) -> str:
    parts = [
        f'[audit]\npath = "{audit}"\n' if records else '[audit]\npath = "off"\n',
        "[breaker]\nfailures = 1000000\n",
        "[retry]\nattempts = 3\nbackoff_initial_s = 0.01\n",
    ]
    store = audit.with_suffix(".db") if records else "off"
    parts.append(f'[metrics]\npath = "{store}"\n')  # a deployment's settings: both on
    for pid, url in providers.items():
        parts.append(
            f'[providers.{pid}]\ntype = "openai"\napi_key = "{KEY}"\nbase_url = "{url}"\n'
            f'model = "gpt-4o"\nmax_concurrency = {max_concurrency}\nmax_queue = 100000\n'
            f"stream = {'true' if stream else 'false'}\n"
        )
    parts.append(f"[roles.bench]\nproviders = {chain!r}\n".replace("'", '"'))
    return "\n".join(parts)


CPU_ROUNDS = 5
"""Rounds of the CPU-by-thread part; each runs every variant once, in turn."""

CALLER_LOOP = asyncio.new_event_loop()
"""The asyncio callers' loop: one for the whole run, so connections stay warm."""


def arun(coro: Coroutine[Any, Any, T]) -> T:
    return CALLER_LOOP.run_until_complete(coro)


class Direct:
    """The same requests with the same client and protocol, without callboard.

    Thread callers hand the request to an I/O loop thread, as callboard does; asyncio
    callers await it on their own loop, with a client of their own.
    """

    def __init__(self, base_url: str, *, stream: bool = True) -> None:
        self.io = IoLoop("bench-direct")
        self.client = ProviderClient(1024, 5.0)
        self.caller_client = ProviderClient(1024, 5.0)
        self.protocol = PROTOCOLS["openai"]
        self.endpoint = Endpoint(base_url=base_url, model="gpt-4o", api_key=KEY)
        request = ChatRequest((Message("user", PROMPT),), "gpt-4o", None, Tuning())
        self.call = self.protocol.chat_request(self.endpoint, request, stream)
        self.limits = AttemptLimits(4.0, 60.0)

    async def acall(self) -> None:
        """Send one request from the caller's own loop."""
        await run_attempt(self.caller_client, self.protocol, self.call, self.limits)

    async def acall_on_io(self) -> None:
        """Send one request on the I/O loop thread."""
        await run_attempt(self.client, self.protocol, self.call, self.limits)

    def call_sync(self) -> None:
        """Send one request from a caller thread, through the I/O loop thread."""
        self.io.submit(self.acall_on_io()).result(60)

    def close(self) -> None:
        """Close both clients and the I/O loop."""
        self.io.run(self.client.aclose(), 5)
        self.io.close()
        arun(self.caller_client.aclose())


class RawAiohttp:
    """The floor: the same whole-answer request with aiohttp alone (no httpx).

    Sent from the asyncio caller's loop; the answer's JSON is parsed with orjson.
    """

    def __init__(self, direct: Direct) -> None:
        call = direct.call
        self.url = call.url
        self.headers = dict(call.headers)
        self.body = orjson.dumps(call.json)
        self.session: aiohttp.ClientSession | None = None

    async def acall(self) -> None:
        """Send one request and parse its answer."""
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024))
        async with self.session.post(self.url, data=self.body, headers=self.headers) as resp:
            orjson.loads(await resp.read())

    def close(self) -> None:
        """Close the session."""
        if self.session is not None:
            arun(self.session.close())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sequential_ms(call: Callable[[], None], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def async_sequential_ms(acall: Callable[[], object], n: int) -> list[float]:
    async def main() -> list[float]:
        out = []
        for _ in range(n):
            start = time.perf_counter()
            await acall()  # type: ignore[misc]
            out.append((time.perf_counter() - start) * 1000)
        return out

    return arun(main())


def threaded_rate(call: Callable[[], None], concurrency: int, total: int) -> tuple[float, float]:
    """Return (requests per second, client CPU ms per call) for ``total`` calls."""
    per_worker = total // concurrency
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: [call() for _ in range(per_worker)], range(concurrency)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    done = per_worker * concurrency
    return done / wall, cpu * 1000 / done


def async_rate(acall: Callable[[], object], concurrency: int, total: int) -> tuple[float, float]:
    per_worker = total // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await acall()  # type: ignore[misc]

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(concurrency)))

    cpu0, wall0 = time.process_time(), time.perf_counter()
    arun(main())
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    done = per_worker * concurrency
    return done / wall, cpu * 1000 / done


def burst_s(acall: Callable[[], object], count: int) -> float:
    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(acall() for _ in range(count)))  # type: ignore[misc]
        return time.perf_counter() - start

    return arun(main())


def threaded_burst_s(call: Callable[[], None], count: int) -> float:
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        list(pool.map(lambda _: None, range(count)))  # start the threads first
        start = time.perf_counter()
        list(pool.map(lambda _: call(), range(count)))
        return time.perf_counter() - start


def board_for(
    providers: dict[str, str],
    chain: list[str],
    workdir: Path,
    *,
    stream: bool = True,
    max_concurrency: int = 1024,
    records: bool = True,
) -> Callboard:
    audit = workdir / f"audit-{len(list(workdir.iterdir()))}.jsonl"
    text = config_text(
        providers, chain, audit, stream=stream, max_concurrency=max_concurrency, records=records
    )
    return Callboard(parse_config(text, environ={}), check=False)


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n## {title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def bench_latency(fast_url: str, workdir: Path, runs: int, n: int) -> None:
    direct = Direct(fast_url, stream=False)  # what callboard's asks send to a fast provider
    raw = RawAiohttp(direct)
    board = board_for({"fast": fast_url}, ["fast"], workdir)
    results: dict[str, list[tuple[float, float]]] = {}
    variants = {
        "raw aiohttp, asyncio caller": lambda: async_sequential_ms(raw.acall, n),
        "direct, thread caller": lambda: sequential_ms(direct.call_sync, n),
        "callboard ask, thread caller": lambda: sequential_ms(
            lambda: board.ask("bench", PROMPT), n
        ),
        "direct, asyncio caller": lambda: async_sequential_ms(direct.acall, n),
        "callboard aask, asyncio caller": lambda: async_sequential_ms(
            lambda: board.aask("bench", PROMPT), n
        ),
    }
    for name, run in variants.items():
        run()  # warm up connections and code paths
        results[name] = []
    for _ in range(runs):
        for name, run in variants.items():
            samples = run()
            results[name].append((percentile(samples, 0.5), percentile(samples, 0.99)))
    rows = []
    for name, pairs in results.items():
        p50, p99 = median([p[0] for p in pairs]), median([p[1] for p in pairs])
        rows.append((name, f"p50 {p50:.3f} ms   p99 {p99:.3f} ms"))
    for caller, direct_name, board_name in (
        ("thread", "direct, thread caller", "callboard ask, thread caller"),
        ("asyncio", "direct, asyncio caller", "callboard aask, asyncio caller"),
    ):
        d, b = results[direct_name], results[board_name]
        add50 = median([bb[0] - dd[0] for dd, bb in zip(d, b, strict=True)])
        add99 = median([bb[1] - dd[1] for dd, bb in zip(d, b, strict=True)])
        rows.append(
            (f"added by callboard ({caller})", f"p50 {add50:+.3f} ms   p99 {add99:+.3f} ms")
        )
    report(f"Latency per call, concurrency 1 ({n} calls x {runs} runs, median)", rows)
    board.close()
    direct.close()
    raw.close()


def bench_throughput(fast_url: str, workdir: Path, runs: int, total: int) -> None:
    direct = Direct(fast_url, stream=False)  # what callboard's asks send to a fast provider
    raw = RawAiohttp(direct)
    board = board_for({"fast": fast_url}, ["fast"], workdir)
    bare = board_for({"fast": fast_url}, ["fast"], workdir, records=False)
    rows = []
    for concurrency in (1, 16, 64, 256):
        calls = max(total, concurrency * 4) if concurrency > 1 else total // 4
        figures: dict[str, list[tuple[float, float]]] = {
            "direct sync": [],
            "callboard sync": [],
            "raw aiohttp async": [],
            "direct async": [],
            "callboard async, records off": [],
            "callboard async": [],
        }
        for _ in range(runs):
            figures["raw aiohttp async"].append(async_rate(raw.acall, concurrency, calls))
            figures["callboard async, records off"].append(
                async_rate(lambda: bare.aask("bench", PROMPT), concurrency, calls)
            )
            figures["direct sync"].append(threaded_rate(direct.call_sync, concurrency, calls))
            figures["callboard sync"].append(
                threaded_rate(lambda: board.ask("bench", PROMPT), concurrency, calls)
            )
            figures["direct async"].append(async_rate(direct.acall, concurrency, calls))
            figures["callboard async"].append(
                async_rate(lambda: board.aask("bench", PROMPT), concurrency, calls)
            )
        line = []
        for name, samples in figures.items():
            rps = median([s[0] for s in samples])
            cpu = median([s[1] for s in samples])
            spread = f"{min(s[0] for s in samples):.0f}..{max(s[0] for s in samples):.0f}"
            line.append(f"{name:29} {rps:6.0f}/s [{spread}]  {cpu:.2f} ms CPU")
        rows += [(f"c={concurrency}", line[0])] + [("", entry) for entry in line[1:]]
    report(f"Requests per second [spread], client CPU per call (median of {runs})", rows)
    board.close()
    bare.close()
    direct.close()
    raw.close()


def bench_floor(fast_url: str, workdir: Path, runs: int, total: int) -> None:
    """The design's floor beside the board: the same calls through the bare hand-offs.

    `skeleton.Skeleton` passes each call caller -> router actor -> provider actor -> I/O
    loop -> provider -> router -> caller with no other work; the board does the same
    hand-offs and its work; ``Skeleton(records=...)`` adds the cheapest writing of every
    record a task owes (its audit lines and metrics rows). Latency (thread and asyncio
    callers) and CPU per call (thread caller) one call at a time; calls per second and
    client CPU per call with 64 in flight, asyncio callers then threads.
    """
    direct = Direct(fast_url, stream=False)
    skeleton = Skeleton(direct.protocol, direct.call)
    recording = Skeleton(direct.protocol, direct.call, records=workdir)
    board = board_for({"fast": fast_url}, ["fast"], workdir)
    bare = board_for({"fast": fast_url}, ["fast"], workdir, records=False)
    variants: dict[str, tuple[Callable[[], object], Callable[[], Any]]] = {
        "direct (httpx)": (direct.call_sync, direct.acall),
        "skeleton (hand-offs only)": (skeleton.ask, skeleton.aask),
        "skeleton + every record, cheapest": (recording.ask, recording.aask),
        "callboard, records off": (
            lambda: bare.ask("bench", PROMPT),
            lambda: bare.aask("bench", PROMPT),
        ),
        "callboard": (lambda: board.ask("bench", PROMPT), lambda: board.aask("bench", PROMPT)),
    }
    n = max(200, total // 8)
    for sync, _ in variants.values():
        sequential_ms(sync, 200)
    figures: dict[str, list[tuple[float, ...]]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, (sync, acall) in variants.items():
            cpu0 = time.process_time()
            ms = sequential_ms(sync, n)
            cpu_one = (time.process_time() - cpu0) * 1e6 / n
            async_ms = async_sequential_ms(acall, n)
            rps_async, cpu_async = async_rate(acall, 64, total)
            rps_threads, cpu_threads = threaded_rate(sync, 64, total)
            figures[name].append(
                (percentile(ms, 0.5), percentile(ms, 0.99), rps_async, cpu_async, rps_threads,
                 cpu_threads, cpu_one, percentile(async_ms, 0.5))
            )  # fmt: skip
    rows = []
    for name, samples in figures.items():
        p50, p99, rps_a, cpu_a, rps_t, cpu_t, cpu_1, p50_a = (
            median([s[i] for s in samples]) for i in range(8)
        )
        latency = (
            f"p50 thread {p50:.3f} asyncio {p50_a:.3f} ms, thread p99 {p99:.3f}, "
            f"{cpu_1:4.0f} us CPU"
        )
        asyncio_64 = f"c=64 asyncio {rps_a:5.0f}/s {cpu_a:.2f} ms CPU"
        threads_64 = f"c=64 threads {rps_t:5.0f}/s {cpu_t:.2f} ms CPU"
        rows.append((name, f"{latency} | {asyncio_64} | {threads_64}"))
    title = "The design's floor: the same calls through its hand-offs alone"
    report(f"{title} (median of {runs})", rows)
    board.close()
    bare.close()
    skeleton.close()
    recording.close()
    direct.close()


def bench_burst(slow_url: str, workdir: Path, runs: int) -> None:
    rows = []
    for stream in (True, False):
        direct = Direct(slow_url, stream=stream)
        board = board_for({"slow": slow_url}, ["slow"], workdir, stream=stream)
        figures: dict[str, list[float]] = {
            "direct, asyncio": [],
            "callboard aask": [],
            "direct, threads": [],
            "callboard ask, threads": [],
        }
        cold = burst_s(lambda: board.aask("bench", PROMPT), 500)  # noqa: B023
        burst_s(direct.acall, 500)
        threaded_burst_s(direct.call_sync, 500)
        for _ in range(runs):
            figures["direct, asyncio"].append(burst_s(direct.acall, 500))
            figures["callboard aask"].append(burst_s(lambda: board.aask("bench", PROMPT), 500))  # noqa: B023
            figures["direct, threads"].append(threaded_burst_s(direct.call_sync, 500))
            figures["callboard ask, threads"].append(
                threaded_burst_s(lambda: board.ask("bench", PROMPT), 500)  # noqa: B023
            )
        mode = "streamed" if stream else "whole JSON"
        rows.append((f"{mode}: callboard aask, cold (new connections)", f"{cold * 1000:.0f} ms"))
        rows += [(f"{mode}: {k}, warm", f"{median(v) * 1000:.0f} ms") for k, v in figures.items()]
        board.close()
        direct.close()
    report(f"500 concurrent calls, server answers in 200 ms (median of {runs})", rows)


def bench_queued(url: str, workdir: Path, runs: int, count: int = 2000, cap: int = 64) -> None:
    """``count`` calls at once to a provider that takes ``cap`` at a time (20 ms each)."""
    direct = Direct(url)
    board = board_for({"capped": url}, ["capped"], workdir, max_concurrency=cap)

    async def capped_direct() -> None:
        gate = asyncio.Semaphore(cap)

        async def one() -> None:
            async with gate:
                await direct.acall()

        await asyncio.gather(*(one() for _ in range(count)))

    def direct_s() -> float:
        start = time.perf_counter()
        arun(capped_direct())
        return time.perf_counter() - start

    direct_s()
    burst_s(lambda: board.aask("bench", PROMPT), count)
    by_hand, through = [], []
    for _ in range(runs):
        by_hand.append(direct_s())
        through.append(burst_s(lambda: board.aask("bench", PROMPT), count))
    floor_ms = count / cap * 20
    rows = [
        ("server-bound floor", f"{floor_ms:.0f} ms"),
        (f"direct, asyncio, semaphore of {cap}", f"{median(by_hand) * 1000:.0f} ms"),
        (f"callboard aask, max_concurrency = {cap}", f"{median(through) * 1000:.0f} ms"),
    ]
    title = f"{count} calls at once, {cap} in flight, server answers in 20 ms (median of {runs})"
    report(title, rows)
    board.close()
    direct.close()


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds so far of each live thread, by Python thread name (Linux ``/proc``)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    cpu: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            name = re.sub(r"-\d+$", "", names.get(int(task.name), f"thread {task.name}"))
            cpu[name] = cpu.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return cpu


def cpu_rows(spent: dict[str, list[dict[str, float]]]) -> list[tuple[str, str]]:
    """Rows of the CPU part: each variant's median per call, all threads then by thread."""
    rows = []
    base = 0.0
    for label, rounds in spent.items():
        totals = [sum(r.values()) for r in rounds]
        total = median(totals)
        base = base or total
        spread = f"[{min(totals) * 1e6:.0f}..{max(totals) * 1e6:.0f}]"
        figure = f"{total * 1e6:.0f} us {spread}  ({total / base:.2f}x direct)"
        rows.append((f"{label}: all threads", figure))
        names = {name for r in rounds for name in r}
        by_thread = {name: median([r.get(name, 0.0) for r in rounds]) for name in names}
        for name, seconds in sorted(by_thread.items(), key=lambda kv: -kv[1]):
            if seconds > 0:
                rows.append((f"{label}: {name}", f"{seconds * 1e6:.0f} us"))
    return rows


def bench_thread_cpu(fast_url: str, workdir: Path, n: int) -> None:
    """CPU per call of each thread, one call at a time: what callboard's actors cost."""
    if not Path("/proc/self/task").is_dir():
        return
    direct = Direct(fast_url, stream=False)
    streamed = Direct(fast_url)
    board = board_for({"fast": fast_url}, ["fast"], workdir)
    bare = board_for({"fast": fast_url}, ["fast"], workdir, records=False)
    whole = board_for({"fast": fast_url}, ["fast"], workdir, stream=False)

    def stream_call() -> None:
        for _ in board.stream("bench", PROMPT):
            pass

    variants: dict[str, Callable[[], None]] = {
        "direct, whole answers": direct.call_sync,
        "callboard, audit and metrics off": lambda: bare.ask("bench", PROMPT),
        "callboard": lambda: board.ask("bench", PROMPT),
        "callboard, stream = false": lambda: whole.ask("bench", PROMPT),
        "direct, streamed": streamed.call_sync,
        "callboard, a streaming caller": stream_call,
    }
    for call in variants.values():
        for _ in range(200):
            call()
    # Rounds interleave the variants, so that the machine's drift hits them alike.
    per_round = max(1, n // CPU_ROUNDS)
    spent: dict[str, list[dict[str, float]]] = {label: [] for label in variants}
    for _ in range(CPU_ROUNDS):
        for label, call in variants.items():
            before = thread_cpu_s()
            for _ in range(per_round):
                call()
            after = thread_cpu_s()
            used = {k: v - before.get(k, 0.0) for k, v in after.items()}
            spent[label].append({k: v / per_round for k, v in used.items() if v > 0})
    rows = cpu_rows(spent)
    title = f"CPU per call by thread, one call at a time ({CPU_ROUNDS} rounds of {per_round} calls"
    report(f"{title}, median [spread], 10 ms ticks)", rows)
    bare.close()
    whole.close()
    board.close()
    direct.close()
    streamed.close()


def bench_hop(runs: int) -> None:
    """The machine's floor: one thread handing a value to another and back."""
    inbox: queue.Queue[int | None] = queue.Queue()
    outbox: queue.Queue[int] = queue.Queue()

    def echo() -> None:
        while (item := inbox.get()) is not None:
            outbox.put(item)

    thread = threading.Thread(target=echo)
    thread.start()
    medians = []
    for _ in range(runs):
        samples = []
        for i in range(5000):
            start = time.perf_counter()
            inbox.put(i)
            outbox.get()
            samples.append((time.perf_counter() - start) * 1e6)
        medians.append(percentile(samples, 0.5))
    inbox.put(None)
    thread.join()
    report(
        "Machine floor: a queue.Queue round trip between two threads",
        [("p50 (two thread wake-ups)", f"{median(medians):.1f} us")],
    )


def bench_failover(fast_url: str, workdir: Path, runs: int, n: int) -> None:
    failing = FakeOpenAI(keys={KEY}).start()
    refused = f"http://127.0.0.1:{closed_port()}/v1"
    healthy = board_for({"fast": fast_url}, ["fast"], workdir)
    on_503 = board_for({"bad": failing.base_url, "fast": fast_url}, ["bad", "fast"], workdir)
    on_refused = board_for({"bad": refused, "fast": fast_url}, ["bad", "fast"], workdir)
    figures: dict[str, list[float]] = {
        "healthy first": [],
        "first answers 503": [],
        "first refuses": [],
    }
    for _ in range(runs):
        failing.script.extend([Fail(503)] * (n + 1))
        for name, board in (
            ("healthy first", healthy),
            ("first answers 503", on_503),
            ("first refuses", on_refused),
        ):
            samples = sequential_ms(lambda: board.ask("bench", PROMPT), n)  # noqa: B023
            figures[name].append(percentile(samples, 0.5))
        failing.script.clear()
    base = median(figures["healthy first"])
    rows = [(name, f"p50 {median(v):.2f} ms") for name, v in figures.items()]
    rows += [
        (f"failover cost ({name})", f"{median(figures[name]) - base:+.2f} ms")
        for name in ("first answers 503", "first refuses")
    ]
    report(f"Answer time with a failing first provider ({n} calls x {runs} runs)", rows)
    for board in (healthy, on_503, on_refused):
        board.close()
    failing.stop()


STARTUP_CONFIG = """
[audit]
path = "off"
[metrics]
path = "off"
[startup]
exit_on_sigterm = false
[providers.local]
type = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "m"
[roles.bench]
providers = ["local"]
"""
"""A one-provider config for timing a board's start (no credential check, no files)."""


def bench_import(runs: int) -> None:
    """Time imports in fresh interpreters, bytecode caching on as usual, against httpx's own.

    ``import runtime`` loads the package (its config and errors); ``from runtime import
    Callboard`` is what a program does before its first call, actors and HTTP included.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    rows = []
    started = (
        "from runtime import Callboard, parse_config; "
        "Callboard(parse_config(STARTUP_CONFIG, environ={}), check=False).close()"
    )
    statements = {
        "import httpx": "import httpx",
        "import runtime": "import runtime",
        "from runtime import Callboard": "from runtime import Callboard",
        "...and a board started and closed": f"STARTUP_CONFIG = {STARTUP_CONFIG!r}; {started}",
    }
    for label, statement in statements.items():
        code = (
            f"import time; t = time.perf_counter(); {statement}; "
            "import re, pathlib; status = pathlib.Path('/proc/self/status').read_text(); "
            "print(time.perf_counter() - t, re.search(r'VmHWM:\\s+(\\d+)', status)[1])"
        )
        times, rss = [], []
        for attempt in range(runs + 1):
            out = subprocess.run(  # noqa: S603
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
            )
            seconds, kilobytes = out.stdout.split()
            if attempt:  # the first run writes the bytecode cache
                times.append(float(seconds))
                rss.append(int(kilobytes) / 1024)
        rows.append((label, f"{median(times) * 1000:.0f} ms, resident {median(rss):.0f} MB"))
    report(f"Import (median of {runs} fresh interpreters each)", rows)


MEMORY: list[tuple[str, str]] = []

PARTS = {
    "import": "fresh interpreters",
    "hop": "the machine's thread hand-off",
    "latency": "one call at a time",
    "cpu": "CPU per call by thread",
    "failover": "a failing first provider",
    "burst": "500 concurrent calls (asyncio, then 500 caller threads)",
    "queued": "2000 calls queued behind 64 in flight",
    "memory": "callboard alone and the HTTP stack alone, in fresh processes",
    "throughput": "up to 256 callers",
    "floor": "the design's hand-offs alone",
}
"""The parts of the run, in order (``--only`` picks some)."""


def bench_memory_alone(slow_url: str, workdir: Path, runs: int) -> None:
    """Callboard's peak in a fresh process, beside the same calls without it (the floor).

    Each process (`memory_probe.py`) imports only what it uses: the board's, ``from
    runtime import Callboard``; the floor's, the HTTP stack callboard sends through. What
    they hold after their imports apart is what callboard's modules cost; what each grows
    by, what its calls in flight do.
    """
    config = workdir / "memory.toml"
    config.write_text(config_text({"slow": slow_url}, ["slow"], workdir / "memory.jsonl"))
    probe = [sys.executable, str(HERE / "memory_probe.py")]
    probes = {
        "callboard": [*probe, "board", str(config)],
        "the HTTP stack alone": [*probe, "http", slow_url],
    }
    figures: dict[str, list[tuple[float, float]]] = {label: [] for label in probes}
    for _ in range(runs):
        for label, command in probes.items():
            out = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
            imported, peak = (float(v) for v in out.stdout.split()[-2:])
            figures[label].append((imported, peak))
    rows = []
    for label, pairs in figures.items():
        imported = median([i for i, _ in pairs])
        peaks = [p for _, p in pairs]
        peak = median(peaks)
        rows.append((f"{label}: after its imports", f"{imported:.0f} MB"))
        spread = f"[{min(peaks):.0f}..{max(peaks):.0f}]"
        rows.append(
            (f"{label}: peak", f"{peak:.0f} MB {spread} (+{peak - imported:.0f} for the calls)")
        )
    title = "Memory, fresh processes: 3 x 500 concurrent streamed calls, then 256 threads"
    report(f"{title} (median of {runs})", rows)


def peak_rss_mb() -> float:
    """This process's peak resident set, from ``/proc`` where there is one.

    ``ru_maxrss`` is not used on Linux: a child started by ``subprocess`` inherits its
    parent's peak through fork and exec, so a small child would report a big parent's size.
    """
    status = Path("/proc/self/status")
    if status.exists():
        found = re.search(r"VmHWM:\s+(\d+)", status.read_text())
        if found:
            return int(found[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def remember(after: str) -> None:
    MEMORY.append((after, f"{peak_rss_mb():.0f} MB"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer calls, three runs")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated parts to run (of {', '.join(PARTS)}); all by default",
    )
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    scale = 4 if args.quick else 1
    print(f"callboard benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        server(0.0) as fast_url,
        server(0.2) as slow_url,
        server(0.02) as capped_url,
    ):
        workdir = Path(tmp)
        chosen = set(args.only.split(",")) - {""} or set(PARTS)
        parts: dict[str, Callable[[], object]] = {
            "import": lambda: bench_import(runs),
            "hop": lambda: bench_hop(runs),
            "latency": lambda: bench_latency(fast_url, workdir, runs, 2000 // scale),
            "cpu": lambda: bench_thread_cpu(fast_url, workdir, 6000 // scale),
            "failover": lambda: bench_failover(fast_url, workdir, runs, 200 // scale),
            "burst": lambda: bench_burst(slow_url, workdir, runs),
            "queued": lambda: bench_queued(capped_url, workdir, runs, 2000 // scale),
            "memory": lambda: bench_memory_alone(slow_url, workdir, runs),
            "throughput": lambda: bench_throughput(fast_url, workdir, runs, 4000 // scale),
            "floor": lambda: bench_floor(fast_url, workdir, runs, 4000 // scale),
        }
        remember("start")
        for name, what in PARTS.items():
            if name in chosen:
                parts[name]()
                remember(f"after {name}: {what}")
    report("Memory (peak resident set of this process, after each part)", MEMORY)
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    print(f"\nPython's collector at the end: thresholds {threshold}, {frozen:,} objects frozen")
    print("(a board sets it at its start, [startup] tune_gc; every variant here shares it)")


if __name__ == "__main__":
    main()
