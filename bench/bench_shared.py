"""Benchmark: the cost of shared limits ([shared]) on the hot path and in Redis commands.

Run it with ``python bench/bench_shared.py`` (about a minute). It prints:

1. the added cost per call of the lease ledger (``wait_s`` + ``take`` + ``settle``, spending
   a lease held locally, as the provider actor does for each call) beside the local
   `RateLimiter` doing the same, medians of ``--runs`` runs of 20,000 calls;
2. for 1, 2 and 4 processes sharing one provider (a loopback fake) through a Redis server
   this benchmark starts on a free port: Redis commands per 1,000 calls (from Redis's own
   ``INFO commandstats``), and the fleet's busiest rolling minute against the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from runtime import Callboard
from runtime._policy.leases import Grant, LeaseLedger
from runtime._policy.rate_limits import RateLimiter
from runtime.testing import FakeOpenAI, busiest_window

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from _redis_server import RedisServer, free_port

CALLS = 20_000


def hot_path_us(runs: int) -> tuple[float, float]:
    """Return the median µs per call of the local limiter, and of it plus the lease ledger."""
    local, shared = [], []
    for _ in range(runs):
        limiter = RateLimiter.per_minute(10**9, 10**12, 0.0)
        started = time.perf_counter()
        for i in range(CALLS):
            now = i * 1e-6
            limiter.wait_s(100, now)
            limiter.settle(limiter.take(100, now), 90, now, now)
        local.append((time.perf_counter() - started) / CALLS * 1e6)
        limiter = RateLimiter.per_minute(10**9, 10**12, 0.0)
        ledger = LeaseLedger(10**9, 10**12, lease_s=10.0)
        ledger.ask(0.0, 1, 100)
        ledger.granted(Grant(CALLS, CALLS * 100, 1, 1), 0.0, 0.0)
        started = time.perf_counter()
        for i in range(CALLS):
            now = i * 1e-6
            limiter.wait_s(100, now)
            ledger.wait_s(100, now)
            taken, spent = limiter.take(100, now), ledger.take(100, now)
            limiter.settle(taken, 90, now, now)
            ledger.settle(spent, 90)
        shared.append((time.perf_counter() - started) / CALLS * 1e6)
    return statistics.median(local), statistics.median(shared)


def config_text(fake: FakeOpenAI, url: str, rpm: int) -> str:
    return f"""
[audit]
path = "off"
[metrics]
path = "off"
[timeouts]
task_s = 120.0
[shared]
url = "{url}"
namespace = "bench"
[providers.p]
type = "openai"
api_key = "k"
base_url = "{fake.base_url}"
model = "gpt-4o"
rpm = {rpm}
[roles.coder]
providers = ["p"]
"""


def worker(config: str, calls: int) -> None:
    """One process of the fleet: wait for a line, send ``calls`` asks at once."""
    with Callboard.from_config(config) as board:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.readline()

        async def run() -> None:
            asks = [board.aask("coder", f"t{i}") for i in range(calls)]
            await asyncio.gather(*asks, return_exceptions=True)

        asyncio.run(run())


SENT = ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_script", "cmdstat_publish")
"""The commands a process sends (the rest run inside the lease script)."""


def commands(client: redis.Redis) -> tuple[int, int]:
    """Return the commands sent to Redis so far, and all it ran (script's own included)."""
    stats = client.info("commandstats")
    ran = sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")
    return sum(int(stats[k]["calls"]) for k in SENT if k in stats), ran


def run_workers(
    script: str, config: Path, processes: int, calls: int, client: redis.Redis
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Run ``processes`` workers of ``script`` at once; return `commands` before and after."""
    children = [
        subprocess.Popen(  # noqa: S603 - a benchmark script of ours
            [sys.executable, script, "--worker", str(config), str(calls)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for child in children:
        assert child.stdout is not None
        child.stdout.readline()
    before = commands(client)
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        child.communicate(timeout=300)
    return before, commands(client)


def fleet(processes: int, calls: int, rpm: int, url: str, folder: Path) -> dict[str, float]:
    """Run ``processes`` workers of ``calls`` each; return commands per 1,000 and the ratio."""
    client = redis.Redis.from_url(url)
    client.flushall()
    with FakeOpenAI() as fake:
        config = folder / f"fleet{processes}.toml"
        config.write_text(config_text(fake, url, rpm))
        before, after = run_workers(__file__, config, processes, calls, client)
        times = sorted(r.received_at for r in fake.requests if r.is_chat)
    client.close()
    return {
        "calls": len(times),
        "sent_per_1000": (after[0] - before[0]) / max(1, len(times)) * 1000,
        "ran_per_1000": (after[1] - before[1]) / max(1, len(times)) * 1000,
        "busiest_minute_vs_limit": busiest_window(times) / rpm,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--calls", type=int, default=1200, help="the fleet's, split evenly")
    parser.add_argument("--worker", nargs=2, metavar=("CONFIG", "CALLS"))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    local, shared = hot_path_us(args.runs)
    print(
        f"hot path, µs per call (median of {args.runs}): local limiter {local:.2f}, "
        f"with lease ledger {shared:.2f}, added {shared - local:.2f}"
    )
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(free_port(), Path(folder)).start()
        try:
            for processes in (1, 2, 4):
                result = fleet(
                    processes, args.calls // processes, args.rpm, server.url, Path(folder)
                )
                print(f"{processes} process(es): {json.dumps(result)}")
        finally:
            server.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
