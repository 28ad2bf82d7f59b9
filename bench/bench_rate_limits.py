"""Benchmark: what ``rpm`` and ``tpm`` let through, read from the fake providers' logs.

Run it with ``python bench/bench_rate_limits.py`` (about 62 s). One board keeps two
loopback fake providers busy for ``--seconds`` (61): one with ``rpm = 60``, one with
``tpm = 6000`` whose answers use 150 tokens each (estimated at about 202 up front, from
``max_tokens = 200``). From the timestamps of the requests each fake received, it prints
the most requests, and tokens, that any rolling 60-second window carried, and the total;
then the same for a greedy caller of the bare limiter over ``--minutes`` (5) simulated
minutes, with the cost of a limiter call.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from runtime import Callboard, load_config
from runtime._chat import Usage
from runtime._policy.rate_limits import RateLimiter
from runtime.testing import Answer, FakeAnthropic, FakeOpenAI, busiest_window

TOKENS = 150


def config_text(counted: FakeOpenAI, weighed: FakeAnthropic) -> str:
    return f"""
[audit]
path = "off"
[metrics]
path = "off"
[providers.counted]
type = "openai"
api_key = "k"
base_url = "{counted.base_url}"
model = "gpt-4o"
rpm = 60
[providers.weighed]
type = "anthropic"
api_key = "k"
base_url = "{weighed.base_url}"
model = "claude-sonnet-4-5"
tpm = 6000
max_tokens = 200
[roles.counted]
providers = ["counted"]
[roles.weighed]
providers = ["weighed"]
"""


async def keep_busy(board: Callboard, seconds: float) -> None:
    """Queue more calls than the limits allow, then close the board after ``seconds``."""
    pending = [
        asyncio.ensure_future(board.aask(role, f"task {i}", deadline_s=seconds * 2))
        for i, role in enumerate(["counted"] * 80 + ["weighed"] * 60)
    ]
    await asyncio.wait(pending, timeout=seconds)
    await asyncio.to_thread(board.close)
    await asyncio.gather(*pending, return_exceptions=True)


def through_fakes(seconds: float) -> None:
    usage = Usage(input_tokens=100, output_tokens=TOKENS - 100)
    with (
        FakeOpenAI() as counted,
        FakeAnthropic(default=Answer("ok", usage=usage)) as weighed,
        tempfile.TemporaryDirectory() as folder,
    ):
        path = Path(folder) / "config.toml"
        path.write_text(config_text(counted, weighed))
        asyncio.run(keep_busy(Callboard(load_config(path), check=False), seconds))
        requests = [r.received_at for r in counted.requests if r.is_chat]
        tokens = [r.received_at for r in weighed.requests if r.is_chat]
    print(f"through the fakes, kept busy {seconds:g} s:")
    print(
        f"  rpm = 60:   busiest minute {busiest_window(requests)} requests, {len(requests)} in all"
    )
    busiest = busiest_window(tokens) * TOKENS
    print(f"  tpm = 6000: busiest minute {busiest} tokens, {len(tokens) * TOKENS} in all")


def greedy(minutes: int) -> None:
    limiter = RateLimiter.per_minute(rpm=60, tpm=None, now=0.0)
    now, times, calls = 0.0, [], 0
    started = time.perf_counter()
    while now < minutes * 60.0:
        calls += 1
        wait = limiter.wait_s(1, now)
        if wait > 0:
            now += wait
            continue
        limiter.take(1, now)
        times.append(now)
    cost_us = (time.perf_counter() - started) / calls * 1e6
    print(f"the bare limiter at rpm = 60, a greedy caller for {minutes} minutes:")
    print(f"  busiest minute {busiest_window(times)} requests, {len(times)} in all")
    print(f"  {cost_us:.1f} us per wait_s or take")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=61.0)
    parser.add_argument("--minutes", type=int, default=5)
    args = parser.parse_args()
    greedy(args.minutes)
    through_fakes(args.seconds)


if __name__ == "__main__":
    main()
