"""Benchmark: budgets shared by a fleet through Redis ([shared] with [[budgets]]).

Run it with ``python bench/bench_shared_budgets.py`` (about a minute). It prints:

1. CPU microseconds per task of the router's budget work (reserve + settle) with the
   fleet's `LeasedLedger` spending a slice held locally, beside the `LocalLedger` doing the
   same in the same run (the baseline); medians of ``--runs`` runs of 20,000 tasks;
2. for 1, 2 and 4 processes (``--calls`` each, all at once) against one loopback fake under
   one $1 ``stop`` budget through a Redis server started on a free port: what the fake
   billed in all, the tasks refused, and the Redis commands sent per 1,000 calls; then
   4 processes without ``[shared]`` (each its own $1: the baseline), and 4 under a $100
   budget they do not reach (Redis commands when a slice holds many calls).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis
from bench_shared import run_workers, worker

from runtime._chat import Usage
from runtime._config.budgets import BudgetSettings
from runtime._policy.budget_ledger import CallScope, Hold, LocalLedger
from runtime._policy.leased_ledger import BudgetAsk, BudgetGrant, LeasedLedger
from runtime.testing import Answer, FakeOpenAI

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from _redis_server import RedisServer, free_port

TASKS = 20_000
CALL = CallScope("coder", "p", "gpt-4o")
CALL_USD = (100 * 100.0 + 10 * 1000.0) / 1_000_000
"""What the fake bills a call: 100 tokens in, 10 out, at $100 and $1,000 a million."""


def reserve_us(runs: int) -> tuple[float, float]:
    """Median CPU µs per task of reserve + settle: local ledger, then leased ledger."""
    rule = [BudgetSettings(name="b", limit_usd=1e9)]
    local_runs, leased_runs = [], []
    for _ in range(runs):
        local = LocalLedger(rule)
        local_runs.append(_spend(local))
        asks: list[BudgetAsk] = []
        leased = LeasedLedger(rule, asks.append, lease_s=1e9)
        leased.reserve(CALL, 0.001, 0.0)
        leased.granted(asks[0], BudgetGrant(1e6, 0.0, 1e6, 1), 0.0)  # one slice, never spent
        leased_runs.append(_spend(leased))
    return statistics.median(local_runs), statistics.median(leased_runs)


def _spend(ledger: LocalLedger | LeasedLedger) -> float:
    started = time.thread_time()
    for _ in range(TASKS):
        hold = ledger.reserve(CALL, 0.001, 0.0)
        assert isinstance(hold, Hold)
        ledger.settle(hold, 0.0005, 0.0)
    return (time.thread_time() - started) / TASKS * 1e6


def config_text(fake: FakeOpenAI, url: str | None, limit: float) -> str:
    shared = f'[shared]\nurl = "{url}"\nnamespace = "bench"' if url else ""
    return f"""
[audit]
path = "off"
[metrics]
path = "off"
[timeouts]
task_s = 60.0
{shared}
[prices."gpt-4o"]
input = 100.0
output = 1000.0
[[budgets]]
name = "fleet"
limit_usd = {limit}
period = "day"
[providers.p]
type = "openai"
api_key = "k"
base_url = "{fake.base_url}"
model = "gpt-4o"
max_tokens = 50
[roles.coder]
providers = ["p"]
"""


def fleet(
    processes: int, calls: int, url: str, folder: Path, limit: float, *, shared: bool = True
) -> dict[str, float]:
    """Run ``processes`` workers of ``calls`` each; return the bill and Redis commands."""
    client = redis.Redis.from_url(url)
    client.flushall()
    answer = Answer("ok", usage=Usage(input_tokens=100, output_tokens=10))
    with FakeOpenAI(default=answer) as fake:
        config = folder / f"fleet{processes}.toml"
        config.write_text(config_text(fake, url if shared else None, limit))
        before, after = run_workers(__file__, config, processes, calls, client)
        sent = sum(1 for r in fake.requests if r.is_chat)
    client.close()
    return {
        "billed_usd": round(sent * CALL_USD, 4),
        "calls": sent,
        "refused": processes * calls - sent,
        "redis_sent_per_1000_calls": round((after[0] - before[0]) / max(1, sent) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=100, help="each process's")
    parser.add_argument("--worker", nargs=2, metavar=("CONFIG", "CALLS"))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    local, leased = reserve_us(args.runs)
    print(
        f"reserve+settle, CPU µs per task (median of {args.runs}): local ledger {local:.2f}, "
        f"leased ledger {leased:.2f} (ratio {leased / local:.2f})"
    )
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(free_port(), Path(folder)).start()
        try:
            where = Path(folder)
            alone = fleet(4, args.calls, server.url, where, 1.0, shared=False)
            print(f"4 processes, $1 stop budget each, not shared: {json.dumps(alone)}")
            for processes in (1, 2, 4):
                result = fleet(processes, args.calls, server.url, where, 1.0)
                print(f"{processes} process(es), one $1 stop budget: {json.dumps(result)}")
            large = fleet(4, args.calls, server.url, where, 100.0)
            print(f"4 processes, one $100 budget (not reached): {json.dumps(large)}")
        finally:
            server.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
