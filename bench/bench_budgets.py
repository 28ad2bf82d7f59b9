"""Benchmark: what a budget reservation costs a task, and how far a budget overshoots.

Run it with ``python bench/bench_budgets.py`` (``--runs 5`` for more). Two parts:

- ``reserve+settle``: microseconds of CPU time per task for the router's budget work (the worst-case
  estimate, the reservation against every budget in scope, the settlement), with three
  budgets in scope out of ``--budgets`` (10) configured; against a baseline measured in
  the same run: the same work with no budget configured. Medians of ``--runs``.
- ``overshoot``: ``--tasks`` (500) tasks, ``--concurrency`` (100) in flight at a time,
  through a board against a loopback fake, under a $1 ``stop`` budget, each with a
  prompt of ``--prompt-chars`` (2,000) and ``max_tokens = 50``. The fake bills each
  answer ``--undercount`` times the prompt tokens callboard estimated (1.0: the estimate
  is right; 3.0: the prompt counts three times the tokens estimated, as a text in a
  script of few characters per token may). Reports spend, refused tasks and overshoot
  (spend minus limit) per run, and the bound: the calls in flight at most, times what
  each can cost beyond its reservation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path

from runtime import BudgetExceededError, Callboard
from runtime._chat import ChatRequest, Message, Tuning, Usage
from runtime._config.budgets import BudgetScope, BudgetSettings
from runtime._config.prices import PriceTable
from runtime._policy.budget_gate import BudgetGate
from runtime._policy.budget_ledger import Hold, LocalLedger
from runtime._task_spec import TaskSpec
from runtime.testing import Answer, FakeOpenAI, config_for

PRICES = '[prices."gpt-4o"]\ninput = 100.0\noutput = 1000.0\n'
BUDGET = '[[budgets]]\nname = "total"\nlimit_usd = 1.0\nperiod = "day"\n'


def _rules(count: int) -> list[BudgetSettings]:
    """Three budgets in the task's scope, the rest for other roles and tenants."""
    rules = [
        BudgetSettings(name="all", limit_usd=1e9),
        BudgetSettings(name="role", scope=BudgetScope(role="coder"), limit_usd=1e9),
        BudgetSettings(name="tenant", scope=BudgetScope(tenant="acme"), limit_usd=1e9),
    ]
    rules += [
        BudgetSettings(name=f"other{i}", scope=BudgetScope(tenant=f"t{i}"), limit_usd=1.0)
        for i in range(count - len(rules))
    ]
    return rules


def reservation_us(rules: list[BudgetSettings], tasks: int) -> float:
    """Microseconds per task of reserve, keep and settle, through the router's gate."""
    gate = BudgetGate(LocalLedger(), time.time)
    gate.apply(rules)
    prices = PriceTable()
    spec = TaskSpec(
        "t", "coder", (Message("user", "write a function"),), None, Tuning(), None, None, 0.0,
        tenant="acme",
    )  # fmt: skip
    request = ChatRequest(spec.messages, "gpt-4o", None, Tuning(max_tokens=500))
    started = time.thread_time()  # CPU time: waiting for a core on a shared machine is not ours
    for call_id in range(tasks):
        hold = gate.reserve(spec, "gpt", request, prices)
        gate.held(call_id, hold if isinstance(hold, Hold) else None)
        gate.settle(call_id, 0.001)
    return (time.thread_time() - started) / tasks * 1e6


def _call_us(calls: int = 1_000_000) -> float:
    """CPU microseconds per call of a function that does nothing: the machine's pace."""

    def nothing() -> None:
        return None

    started = time.thread_time()
    for _ in range(calls):
        nothing()
    return (time.thread_time() - started) / calls * 1e6


def overshoot(
    tasks: int, concurrency: int, undercount: float, prompt_chars: int
) -> tuple[float, int]:
    """Run the tasks under a $1 budget; return the spend and the refused tasks."""
    prompt = "x" * prompt_chars
    billed = round((len(prompt) // 4 + 1) * undercount)
    answer = Answer("x" * 56, delay_s=0.02, usage=Usage(billed, 14))
    with tempfile.TemporaryDirectory() as folder, FakeOpenAI(default=answer) as fake:
        audit = Path(folder) / "audit.jsonl"
        toml = f'[audit]\npath = "{audit}"\n[metrics]\npath = "off"\n' + PRICES + BUDGET
        config = config_for({"gpt": fake}, {"coder": ["gpt"]}, toml=toml)
        with Callboard(config, check=False) as board:
            refused = asyncio.run(_ask_all(board, tasks, concurrency, prompt))
        lines = [json.loads(line) for line in audit.read_text().splitlines()]
    spent = sum(r["cost_usd"] or 0.0 for r in lines if r["event"] == "attempt")
    return spent, refused


async def _ask_all(board: Callboard, tasks: int, concurrency: int, prompt: str) -> int:
    gate = asyncio.Semaphore(concurrency)
    refused = 0

    async def one() -> None:
        nonlocal refused
        async with gate:
            try:
                await board.aask("coder", prompt, max_tokens=50)
            except BudgetExceededError:
                refused += 1

    await asyncio.gather(*(one() for _ in range(tasks)))
    return refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budgets", type=int, default=10)
    parser.add_argument("--reservations", type=int, default=50_000)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--undercount", type=float, default=1.0)
    parser.add_argument("--prompt-chars", type=int, default=2000)
    args = parser.parse_args()
    with_budgets, baseline = [], []
    for _ in range(args.runs):
        baseline.append(reservation_us([], args.reservations))
        with_budgets.append(reservation_us(_rules(args.budgets), args.reservations))
    base, cost = statistics.median(baseline), statistics.median(with_budgets)
    print(
        f"reserve+settle: {cost:.2f} us of CPU per task with 3 of {args.budgets} budgets in "
        f"scope; {base:.2f} us with none; a Python call of a no-op: {_call_us():.3f} us "
        "(about 0.03 on an idle core: the ratio says how loaded the machine was)"
    )
    for run in range(1, args.runs + 1):
        with contextlib.suppress(KeyboardInterrupt):
            spent, refused = overshoot(
                args.tasks, args.concurrency, args.undercount, args.prompt_chars
            )
            print(
                f"overshoot run {run}: spent ${spent:.4f} of $1.00 (overshoot "
                f"${spent - 1.0:+.4f}); {refused} of {args.tasks} tasks refused"
            )
    estimated = (args.prompt_chars // 4 + 1) * 100e-6 + 50 * 1000e-6
    beyond = max((args.prompt_chars // 4 + 1) * (args.undercount - 1.0) * 100e-6, 0.0)
    print(
        f"bound: at most {int(1.0 // estimated)} calls held at once, each up to ${beyond:.4f} "
        f"beyond its ${estimated:.4f} reservation: overshoot at most "
        f"${int(1.0 // estimated) * beyond:.4f}"
    )


if __name__ == "__main__":
    main()
