from __future__ import annotations

import pytest
from support import attempt_row, task_row

from runtime._metrics.histogram import LatencyHistogram
from runtime._metrics.stats import StatsBook
from runtime._rows import TaskEvent

pytestmark = pytest.mark.timeout(5)


def test_attempts_aggregate_per_provider_and_role():
    """Counts, failures by kind, tokens and fallbacks add up per (provider, role)."""
    book = StatsBook()
    ok = attempt_row(input_tokens=10, output_tokens=5, cached_tokens=2)
    failed = attempt_row(outcome="server", status=500)
    book.add_task(TaskEvent(task_row(), (ok,)))
    book.add_task(TaskEvent(task_row(), (failed, attempt_row(input_tokens=1, output_tokens=1))))
    claude = attempt_row(provider="claude", role="reviewer", fallback=True, output_tokens=4)
    book.add_task(TaskEvent(task_row(role="reviewer", provider="claude", fallback=True), (claude,)))
    stats = book.snapshot()
    coder = stats.pair("gpt", "coder")
    assert coder["attempts"] == 3
    assert coder["successes"] == 2
    assert coder["failures"] == {"server": 1}
    assert coder["tokens"] == {"input": 11, "output": 6, "cached": 2}
    assert coder["fallback_attempts"] == 0
    assert stats.pair("claude", "reviewer")["fallback_attempts"] == 1


def test_tasks_aggregate_per_role():
    """Task outcomes and answers given by a fallback provider are counted per role."""
    book = StatsBook()
    first = attempt_row(outcome="server", status=500)
    rescued = attempt_row(provider="claude", fallback=True, attempt=2)
    book.add_task(TaskEvent(task_row(provider="claude", fallback=True), (first, rescued)))
    book.add_task(TaskEvent(task_row(outcome="failed", provider=None), (first,)))
    role = book.snapshot().roles["coder"]
    assert role["tasks"] == 2
    assert role["outcomes"] == {"failed": 1, "ok": 1}
    assert role["answered_by_fallback"] == 1


def test_latency_percentiles_are_within_ten_percent():
    """The histogram's percentiles land within 10% of the true values."""
    histogram = LatencyHistogram()
    for ms in range(1, 1001):
        histogram.add(float(ms))
    p50, p99 = histogram.percentile(0.5), histogram.percentile(0.99)
    assert p50 is not None
    assert p99 is not None
    assert 500 <= p50 <= 550
    assert 990 <= p99 <= 1000
    assert histogram.summary()["max"] == 1000.0
