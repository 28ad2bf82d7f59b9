"""Benchmark: what routing policy costs per task, and what ``slo`` buys when a provider degrades.

Run it with ``python bench/bench_routing.py`` (``--runs 5`` for more runs, ``--quick``
to skip the board run). Two parts:

1. **The cost of choosing.** For each strategy, the time `RoutePlanner.plan` takes to
   order a role of three providers (all measured, one with quota reports), per task:
   the median of ``--runs`` runs of 20,000 plans each, and its ratio to ``priority``
   measured in the same run (CPU time of this process, so that the other processes of a
   shared machine count less). Language detection is timed apart (the first call loads
   lingua's models; that load is reported on its own).
2. **A provider degrading mid-run.** Three loopback fakes answer in 20, 40 and 60 ms; the
   cheapest (gpt-4o-mini) is first in priority order. Halfway through ``--tasks`` tasks
   (16 at a time) it slows to 400 ms. The task p95 latency of the second half is
   compared between ``strategy = "priority"`` and ``strategy = "slo"`` with
   ``latency_p95_ms = 150``, in the same run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from runtime import Callboard, parse_config
from runtime._chat import ChatResult, Message, RateLimitInfo, Tuning
from runtime._config.routing import SloTarget
from runtime._config.schema import Config, RoleSettings
from runtime._policy import language
from runtime._policy.latency import LatencyBook
from runtime._policy.planner import RoutePlanner
from runtime._policy.routing import Health
from runtime._task_spec import TaskSpec
from runtime.testing import FakeOpenAI, config_for

STRATEGIES = {
    "priority": "",
    "round_robin": "",
    "weighted": "weights = { a = 3, b = 1 }",
    "least_busy": "",
    "least_latency": "",
    "cheapest": "",
    "slo": "slo = { ttft_p95_ms = 1500, latency_p95_ms = 20000 }",
}
PROVIDERS = "".join(
    f'[providers.{pid}]\ntype = "openai"\nmodel = "{model}"\napi_key = "k"\n'
    for pid, model in (("a", "gpt-4o"), ("b", "gpt-4o-mini"), ("c", "gpt-4.1"))
)
PLANS = 20_000


def planner_config(strategy: str) -> Config:
    extra = STRATEGIES[strategy]
    text = PROVIDERS + (
        f'[roles.coder]\nproviders = ["a", "b", "c"]\nstrategy = "{strategy}"\n{extra}\n'
        "[routing]\nsticky_s = 600\nquota_reserve = 0.05\n"
    )
    return parse_config(text, environ={})


def no_health(_ids: Sequence[str]) -> dict[str, Health]:
    return {}


def plan_cost_us(strategy: str, seed: int) -> float:
    """Return the mean time of one plan, in microseconds, after warming the snapshot."""
    config = planner_config(strategy)
    planner = RoutePlanner(LatencyBook())
    rng = random.Random(seed)
    now = 0.0
    for _ in range(300):
        for pid in ("a", "b", "c"):
            limits = RateLimitInfo(remaining_requests=900, limit_requests=1000)
            result = ChatResult("ok", "m", rate_limits=limits, ttft_ms=rng.uniform(100, 900))
            planner.dispatched(pid)
            latency = rng.uniform(0.5, 3.0)
            planner.attempt_ended(config, "coder", pid, result, latency_s=latency, now=now)
            now += 0.1
    spec = TaskSpec(
        "t", "coder", (Message("user", "write a sort function " * 20),), None, Tuning(),
        None, None, 0.0, session="s",
    )  # fmt: skip
    chain = config.chain("coder") or ()
    start = time.process_time()  # CPU time: the machine is shared, waits are not ours
    for _ in range(PLANS):
        planner.plan(config, spec, chain, no_health, now, rng.random)
    return (time.process_time() - start) / PLANS * 1e6


def language_cost_us() -> tuple[float, dict[str, float]]:
    """Return lingua's first-use load (ms) and each prompt's median detection time (µs)."""
    start = time.perf_counter()
    language.detect("This loads the models.")
    load_ms = (time.perf_counter() - start) * 1000
    prompts = {
        "chinese": "请帮我写一个排序函数并解释它的时间复杂度。" * 3,
        "english (60 words)": "Please write a function that sorts a list of integers. " * 6,
        "german (10 words)": "Schreib mir bitte eine Sortierfunktion in Python und erkläre sie",
    }
    costs = {}
    for name, text in prompts.items():
        times = []
        for _ in range(200):
            start = time.perf_counter()
            language.detect(text)
            times.append(time.perf_counter() - start)
        costs[name] = statistics.median(times) * 1e6
    return load_ms, costs


def degraded_p95_ms(strategy: str, tasks: int) -> float:
    """Run ``tasks`` tasks, slowing the cheapest provider at half way; return the 2nd half's p95."""
    fakes = {
        "cheap": FakeOpenAI(latency_s=0.02, models="gpt-4o-mini").start(),
        "mid": FakeOpenAI(latency_s=0.04, models="gpt-4o").start(),
        "dear": FakeOpenAI(latency_s=0.06, models="gpt-4.1").start(),
    }
    try:
        base = config_for(fakes, {"coder": list(fakes)})
        role = RoleSettings(
            providers=tuple(fakes), strategy=strategy, slo=SloTarget(latency_p95_ms=150)
        )
        config = base.model_copy(update={"roles": {"coder": role}})
        with Callboard(config) as board:
            latencies: list[float] = []

            def one(index: int) -> None:
                if index == tasks // 2:
                    fakes["cheap"].latency_s = 0.4
                reply = board.ask("coder", f"task {index}")
                if index >= tasks // 2:
                    latencies.append(reply.latency_ms)

            with ThreadPoolExecutor(16) as pool:
                list(pool.map(one, range(tasks)))
            return statistics.quantiles(latencies, n=20)[-1]
    finally:
        for fake in fakes.values():
            fake.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="skip the board run")
    args = parser.parse_args(argv)

    runs: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    ratios: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    for run in range(args.runs):
        costs = {s: plan_cost_us(s, run) for s in STRATEGIES}
        for strategy, cost in costs.items():
            runs[strategy].append(cost)
            ratios[strategy].append(cost / costs["priority"])
    print(f"cost of choosing, per task (median of {args.runs} runs of {PLANS:,} plans):")
    for strategy in STRATEGIES:
        cost, ratio = statistics.median(runs[strategy]), statistics.median(ratios[strategy])
        print(f"  {strategy:14} {cost:6.1f} µs  ({ratio:.2f}x priority)")
    load_ms, detect = language_cost_us()
    print(f"language detection: first use loads lingua's models in {load_ms:.0f} ms; then")
    for name, cost in detect.items():
        print(f"  {name:20} {cost:7.1f} µs (median of 200)")
    if args.quick:
        return
    print(f"task p95 after the cheapest provider slows to 400 ms ({args.tasks} tasks, 16 at once):")
    for run in range(max(1, args.runs // 2)):
        priority = degraded_p95_ms("priority", args.tasks)
        slo = degraded_p95_ms("slo", args.tasks)
        print(f"  run {run + 1}: priority {priority:6.0f} ms, slo {slo:6.0f} ms")


if __name__ == "__main__":
    main()
