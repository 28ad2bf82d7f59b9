# ruff: noqa: FBT003, E501 - rows built positionally, as in the tests

"""What tracing a finished task costs the metrics actor (OpenTelemetry on, in-memory export).

Run: .venv/bin/python bench/bench_otel.py
Medians of 5 runs of 2,000 tasks of two attempts each (a fallback); the baseline is the
Prometheus exporter's `observe` of the same tasks, measured in the same run. Nothing here
runs on a call's path: the router hands these rows to the metrics actor after the reply.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runtime._metrics.otel import OtelExporter, Server
from runtime._metrics.prometheus import PrometheusExporter
from runtime._rows import AttemptRow, TaskContext, TaskEvent, TaskRow

TASKS = 2000


def event(i: int) -> TaskEvent:
    task = TaskRow(10.0, f"t{i}", None, "coder", "ok", "b", "m", 2, 10, 20, 0, 900.0, True, 1e-4)
    attempts = (
        AttemptRow(9.5, f"t{i}", None, "coder", 1, "a", "m", "server", 500, 400.0, None, 0, 0, 0, False),
        AttemptRow(10.0, f"t{i}", None, "coder", 2, "b", "m", "ok", 200, 500.0, 80.0, 10, 20, 0, True, 1e-4),
    )  # fmt: skip
    context = TaskContext("chat", True, 0.2, 64, ("a", "b"), None, None, finish_reason="stop")
    return TaskEvent(task, attempts, context)


def timed(observe: Callable[[TaskEvent], None], events: list[TaskEvent]) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for e in events:
            observe(e)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) / len(events) * 1e6


def main() -> None:
    events = [event(i) for i in range(TASKS)]
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    servers = {"a": Server("openai", "m", "127.0.0.1"), "b": Server("anthropic", "m", None)}
    otel = OtelExporter(servers, tracer_provider, meters)
    prometheus = PrometheusExporter(0, "127.0.0.1")
    base = timed(
        lambda e: prometheus.observe(e.task, e.attempts, [a.cost_usd for a in e.attempts]), events
    )
    traced = timed(otel.observe, events)
    print(f"baseline, Prometheus observe: {base:.1f} us per task")
    print(f"OpenTelemetry observe (3 spans, 5 metric points): {traced:.1f} us per task "
          f"({traced / base:.1f}x baseline)")  # fmt: skip


if __name__ == "__main__":
    main()
