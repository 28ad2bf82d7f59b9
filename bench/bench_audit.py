"""Benchmark: what one audit line costs to render, through the board's writer.

Run it with ``python bench/bench_audit.py`` (``--lines N`` per run, ``--runs R``). It
renders an ``attempt`` event with every field the router writes, through `AuditWriter`
(structlog's chain: time and name first, redaction, orjson as the serializer) and, as the
floor measured in the same run, the same fields redacted and dumped by one ``orjson.dumps``
call with no chain around it. Figures are thread CPU time per line, the median of the runs
with their spread, and the writer's cost as a multiple of the floor.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from runtime._audit import AuditLog, Redactor
from runtime._rows import iso

FIELDS = {
    "task_id": "9c1e5f0a2b7d4e3f",
    "workflow_id": None,
    "role": "coder",
    "attempt": 1,
    "provider": "openai",
    "model": "gpt-4o-mini",
    "outcome": "ok",
    "error_kind": None,
    "status": 200,
    "latency_ms": 12.5,
    "ttft_ms": 3.2,
    "input_tokens": 100,
    "output_tokens": 20,
    "cached_tokens": 0,
    "cost_usd": 0.0001,
    "fallback": False,
    "message": "",
    "tenant": None,
}


def through_writer(lines: int, folder: Path) -> float:
    """Return µs of thread CPU per line rendered and written by the board's writer."""
    log = AuditLog(folder / "audit.jsonl", Redactor(["sk-bench-secret-0123456789"]))
    writer = log.writer()
    started = time.thread_time()
    for _ in range(lines):
        writer.event("attempt", **FIELDS)
    writer.flush()
    return (time.thread_time() - started) / lines * 1e6


def floor(lines: int) -> float:
    """Return µs of thread CPU per line for the same fields redacted and dumped, no chain."""
    redactor = Redactor(["sk-bench-secret-0123456789"])
    option = orjson.OPT_APPEND_NEWLINE
    started = time.thread_time()
    for _ in range(lines):
        event = {"ts": iso(time.time()), "event": "attempt", **FIELDS}
        orjson.dumps(redactor(None, "info", event), option=option)
    return (time.thread_time() - started) / lines * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    writer_us, floor_us = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            writer_us.append(through_writer(args.lines, Path(folder)))
            floor_us.append(floor(args.lines))
    ratios = [w / f for w, f in zip(writer_us, floor_us, strict=True)]
    for name, values in (("audit writer", writer_us), ("orjson floor", floor_us)):
        print(
            f"{name:13} {statistics.median(values):6.1f} µs a line "
            f"({min(values):.1f}..{max(values):.1f})"
        )
    print(f"writer / floor {statistics.median(ratios):.2f}x ({min(ratios):.2f}..{max(ratios):.2f})")


if __name__ == "__main__":
    main()
