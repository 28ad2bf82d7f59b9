"""What pricing a call costs: the catalogue's first look-up, and each call's after it.

Run: .venv/bin/python bench/bench_prices.py
Medians of 5 runs; the baseline is a model priced by the config's [prices] (a dict look-up),
measured in the same run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import timeit

from runtime._config.prices import Price, PriceTable

CALLS = 100_000
FIRST = (
    "import time; t = time.perf_counter();"
    "from runtime._config.prices import PriceTable;"
    "PriceTable().cost('gpt-4o', 1, 1, provider_type='openai');"
    "print(time.perf_counter() - t)"
)


def per_call_us(table: PriceTable, model: str, kind: str) -> float:
    table.cost(model, 1, 1, provider_type=kind)
    runs = timeit.repeat(
        lambda: table.cost(model, 1000, 100, 10, 0, provider_type=kind), number=CALLS, repeat=5
    )
    return statistics.median(runs) / CALLS * 1e6


def main() -> None:
    firsts = [
        float(subprocess.check_output([sys.executable, "-c", FIRST], text=True))  # noqa: S603 for _ in range(5)
    ]
    print(f"first look-up (imports the catalogue): {statistics.median(firsts) * 1000:.0f} ms")
    table = PriceTable({"my-model": Price(1.0, 2.0)})
    base = per_call_us(table, "my-model", "openai")
    print(f"baseline, a [prices] model: {base:.2f} us per call")
    for model, kind in (
        ("claude-sonnet-4-5", "anthropic"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "bedrock"),
        ("llama3.1", "ollama"),
        ("unknown-model", "groq"),
    ):
        us = per_call_us(table, model, kind)
        print(f"{kind:10} {model}: {us:.2f} us per call ({us / base:.2f}x baseline)")


if __name__ == "__main__":
    main()
