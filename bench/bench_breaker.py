"""Benchmark: circuit breakers under random faults, read from the audit log.

Run it with ``python bench/bench_breaker.py`` (``--runs 5`` for more seeds). Each run
starts three loopback fake providers (OpenAI, Anthropic, Gemini wire formats) that answer
500 with probability ``--fault`` and otherwise after a random 0-40 ms, and sends
``--tasks`` tasks (500) through one board, ``--concurrency`` (100) at a time, to a role
cast to all three. From the audit log it counts, per run:

- ``opened``: breakers opened;
- ``closed``: breakers closed; ``closed without a trial``: closed while no half-open
  trial had been started since they opened (a call that began before the breaker opened
  closed it), the flaps the issue measured;
- ``refused``: calls a provider turned away because of its breaker although the router
  chose it: while its trial call was in flight (the router sent tasks after the trial),
  or as it opened (calls waiting in its queue, or still on their way to it);
- ``never sent``: failed tasks none of whose attempts reached a provider, and how many
  of them said that every provider was failing (each breaker open).

The breaker opens after ``--failures`` (5) failures in a row and cools for ``--cooldown``
(2 s); tasks have a ``--deadline`` (4 s). Failures come back at once, answers after their
delay, as a provider's errors usually do: so failures bunch up in the order calls end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime import Callboard, TaskFailedError
from runtime.testing import (
    Answer,
    Behaviour,
    Fail,
    FakeAnthropic,
    FakeGemini,
    FakeOpenAI,
    config_for,
)

TRIAL_REFUSAL = "a trial call is in flight"
OPEN_REFUSAL = "its breaker is open"
ALL_OPEN = "every provider is failing"


def faulty(seed: int, fault: float) -> Callable[[str], Behaviour]:
    rng = random.Random(seed)

    def respond(_prompt: str) -> Behaviour:
        if rng.random() < fault:
            return Fail(500)
        return Answer("ok", delay_s=rng.uniform(0.0, 0.04))

    return respond


async def ask_all(board: Callboard, tasks: int, concurrency: int, deadline_s: float) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            with contextlib.suppress(TaskFailedError):
                await board.aask("coder", f"task {index}", deadline_s=deadline_s)

    await asyncio.gather(*(one(i) for i in range(tasks)))


def run(args: argparse.Namespace, seed: int) -> dict[str, int]:
    fakes = [
        cls(respond=faulty(seed * 10 + i, args.fault))
        for i, cls in enumerate((FakeOpenAI, FakeAnthropic, FakeGemini))
    ]
    with tempfile.TemporaryDirectory() as folder:
        audit = Path(folder) / "audit.jsonl"
        sections = (
            f'[audit]\npath = "{audit}"\n[metrics]\npath = "off"\n'
            f"[breaker]\nfailures = {args.failures}\ncooldown_s = {args.cooldown}\n"
            "[retry]\nbackoff_initial_s = 0.05\nbackoff_max_s = 0.2\n"
        )
        for fake in fakes:
            fake.start()
        try:
            ids = {"a": fakes[0], "b": fakes[1], "c": fakes[2]}
            config = config_for(ids, {"coder": list(ids)}, toml=sections)
            with Callboard(config, check=False) as board:
                asyncio.run(ask_all(board, args.tasks, args.concurrency, args.deadline))
        finally:
            for fake in fakes:
                fake.stop()
        records = [json.loads(line) for line in audit.read_text().splitlines()]
    return count(records)


def count(records: list[dict[str, Any]]) -> dict[str, int]:
    """Count breaker transitions, refusals and never-sent failures in an audit log."""
    figures = {"opened": 0, "closed": 0, "closed without a trial": 0}
    last: dict[str, str] = {}
    for record in records:
        event = record["event"]
        if event.startswith("breaker_"):
            provider = record["provider"]
            if event == "breaker_opened":
                figures["opened"] += 1
            elif event == "breaker_closed":
                figures["closed"] += 1
                figures["closed without a trial"] += last.get(provider) == "breaker_opened"
            last[provider] = event
    attempts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record["event"] == "attempt":
            attempts[record["task_id"]].append(record)
    messages = [a.get("message") or "" for tries in attempts.values() for a in tries]
    figures["refused: trial in flight"] = sum(TRIAL_REFUSAL in m for m in messages)
    figures["refused: just opened"] = sum(OPEN_REFUSAL in m for m in messages)
    failed = [r for r in records if r["event"] == "task_finished" and r["outcome"] != "ok"]
    figures["failed"] = len(failed)
    unsent = [
        r for r in failed if all(a["outcome"] == "unavailable" for a in attempts[r["task_id"]])
    ]
    figures["never sent"] = len(unsent)
    figures["never sent, all open"] = sum(r["error"].startswith(ALL_OPEN) for r in unsent)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--fault", type=float, default=0.3)
    parser.add_argument("--failures", type=int, default=5)
    parser.add_argument("--cooldown", type=float, default=2.0)
    parser.add_argument("--deadline", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = [run(args, seed) for seed in range(args.runs)]
    print(f"{args.tasks} tasks, 3 providers, {args.fault:.0%} faults, {args.runs} runs")
    for name in results[0]:
        values = [r[name] for r in results]
        print(f"  {name:24} {values}  median {statistics.median(values):g}")


if __name__ == "__main__":
    main()
