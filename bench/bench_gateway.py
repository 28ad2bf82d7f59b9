"""Benchmark: what the gateway (``callboard serve``) adds to each request.

Run it with ``python bench/bench_gateway.py`` (``--quick`` for a short pass). A loopback
OpenAI-compatible fake server runs in its own process, and ``callboard serve`` in
another, in front of it. One client (aiohttp, in this process) sends the same chat
request directly to the fake and through the gateway, interleaving the two in each run:

- latency one request at a time (p50, p99), whole and streamed (time to first text);
- latency at a fixed arrival rate (open loop: 100 and 1,000 requests per second);
- the highest rate (of a ladder) held with p99 under 50 ms and no failure;
- the gateway process's peak resident memory.

Every figure is the median over ``--runs`` runs. The machine's cores are shared by the
client, the fake and the gateway, so the rates are what this box holds, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
from bench_runtime import KEY, PROMPT, percentile, report, server

GATEWAY_KEY = "gw-bench-key"
LADDER = (250, 500, 1000, 1500, 2000, 3000)
P99_BOUND_MS = 50.0


@contextlib.contextmanager
def gateway(fake_url: str, workdir: Path, *, stream: bool) -> Iterator[tuple[str, int]]:
    """Run ``callboard serve`` in front of the fake; yield its URL and process id.

    ``stream`` is the provider's ``stream`` setting: whether the board streams from it.
    """
    config = workdir / "gateway.toml"
    config.write_text(
        '[audit]\npath = "off"\n[metrics]\npath = "off"\n[startup]\ncheck_credentials = false\n'
        "[breaker]\nfailures = 1000000\n[gateway]\nmax_in_flight = 100000\n"
        f'[gateway.keys]\nbench = "{GATEWAY_KEY}"\n'
        f'[providers.fake]\ntype = "openai"\napi_key = "{KEY}"\nbase_url = "{fake_url}"\n'
        'model = "gpt-4o"\nmax_concurrency = 4096\nmax_queue = 100000\n'
        f"stream = {'true' if stream else 'false'}\n"
        '[roles.bench]\nproviders = ["fake"]\n'
    )
    command = [sys.executable, "-m", "runtime", "serve", "--config", str(config), "--port", "0"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        yield line.split("listening on ")[1].split()[0], process.pid
    finally:
        process.terminate()
        process.wait(30)


class Target:
    """Where a request goes: the fake directly, or the gateway, with the same body."""

    def __init__(self, session: aiohttp.ClientSession, url: str, key: str, model: str) -> None:
        self.session, self.url, self.key = session, url, key
        self.body = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
        self.headers = {"authorization": f"Bearer {key}"}

    async def whole_ms(self) -> float:
        """Send one whole request; return its latency (ms)."""
        start = time.perf_counter()
        async with self.session.post(self.url, json=self.body, headers=self.headers) as answer:
            await answer.read()
            if answer.status != 200:
                raise RuntimeError(f"HTTP {answer.status}")
        return (time.perf_counter() - start) * 1000

    async def first_text_ms(self) -> float:
        """Send one streamed request; return the time to its first text (ms)."""
        body = {**self.body, "stream": True}
        start = time.perf_counter()
        first = None
        async with self.session.post(self.url, json=body, headers=self.headers) as answer:
            async for line in answer.content:
                if first is None and b'"content":"' in line and b'"content":""' not in line:
                    first = (time.perf_counter() - start) * 1000
        return first if first is not None else float("nan")


async def one_at_a_time(call: Callable[[], Awaitable[float]], n: int) -> list[float]:
    return [await call() for _ in range(n)]


async def at_rate(call: Callable[[], Awaitable[float]], rate: float, seconds: float) -> list[float]:
    """Start requests at ``rate`` per second for ``seconds`` (open loop); their latencies.

    A failed request counts as infinitely slow, so it fails the p99 bound.
    """
    count = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for index in range(count):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(call()))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return [r if isinstance(r, float) else float("inf") for r in results]


def summary(values: list[float]) -> tuple[float, float]:
    return percentile(values, 0.5), percentile(values, 0.99)


def peak_rss_mb(pid: int) -> float:
    found = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(found[1]) / 1024 if found else float("nan")


async def run(fake_url: str, gateway_url: str, runs: int, scale: int) -> list[tuple[str, str]]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        direct = Target(session, f"{fake_url}/chat/completions", KEY, "gpt-4o")
        through = Target(session, f"{gateway_url}/v1/chat/completions", GATEWAY_KEY, "bench")
        for target in (direct, through):  # warm both paths
            await one_at_a_time(target.whole_ms, 50)
        rows: dict[str, list[float]] = {}
        for _ in range(runs):
            await one_run(direct, through, scale, rows)
    return [(name, f"{statistics.median(values):.3f}") for name, values in rows.items()]


async def one_run(
    direct: Target, through: Target, scale: int, rows: dict[str, list[float]]
) -> None:
    """Measure each figure once, direct then through the gateway; add them to ``rows``."""

    def keep(label: str, pair: list[tuple[float, float]]) -> None:
        for name, index in (("p50", 0), ("p99", 1)):
            rows.setdefault(f"{label}: direct {name} ms", []).append(pair[0][index])
            rows.setdefault(f"{label}: gateway {name} ms", []).append(pair[1][index])
            added = pair[1][index] - pair[0][index]
            rows.setdefault(f"{label}: added {name} ms", []).append(added)

    for label, call_of in (("whole", "whole_ms"), ("streamed, first text", "first_text_ms")):
        n = 400 // scale
        pair = [summary(await one_at_a_time(getattr(t, call_of), n)) for t in (direct, through)]
        keep(f"one at a time, {label}", pair)
    for rate in (100, 1000):
        seconds = 3.0 / scale
        keep(
            f"{rate}/s",
            [summary(await at_rate(t.whole_ms, rate, seconds)) for t in (direct, through)],
        )
    for label, target in (("direct", direct), ("gateway", through)):
        held = 0
        for rate in LADDER:
            _, p99 = summary(await at_rate(target.whole_ms, rate, 2.0 / scale))
            if p99 > P99_BOUND_MS:
                break
            held = rate
        rows.setdefault(f"highest rate held with p99 < 50 ms, {label} (req/s)", []).append(held)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer requests, one run")
    parser.add_argument(
        "--whole-upstream",
        action="store_true",
        help="the provider's stream = false: whole requests go upstream whole",
    )
    args = parser.parse_args()
    runs, scale = (1, 4) if args.quick else (args.runs, 1)
    print(f"callboard gateway benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        server(0.0) as fake_url,
        gateway(fake_url, Path(tmp), stream=not args.whole_upstream) as (gateway_url, pid),
    ):
        rows = asyncio.run(run(fake_url, gateway_url, runs, scale))
        rows.append(("gateway peak resident memory (MB)", f"{peak_rss_mb(pid):.0f}"))
    report(f"Gateway against direct (median of {runs} runs)", rows)


if __name__ == "__main__":
    main()
