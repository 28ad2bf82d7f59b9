from __future__ import annotations

import pytest

from runtime._chat import Usage
from runtime._messages import AttemptEvent, TaskEvent
from runtime._stats import LatencyHistogram, StatsBook

pytestmark = pytest.mark.timeout(5)


def test_attempts_aggregate_per_provider_and_role():
    """Counts, failures by kind, tokens and fallbacks add up per (provider, role)."""
    book = StatsBook()
    book.add_attempt(AttemptEvent("gpt", "coder", "m", "ok", 100.0, Usage(10, 5, 2), False))
    book.add_attempt(AttemptEvent("gpt", "coder", "m", "server", 50.0, Usage(), False))
    book.add_attempt(AttemptEvent("gpt", "reviewer", "m", "ok", 10.0, Usage(1, 1), True))
    stats = book.snapshot()
    coder = stats.pair("gpt", "coder")
    assert coder["attempts"] == 2
    assert coder["successes"] == 1
    assert coder["failures"] == {"server": 1}
    assert coder["tokens"] == {"input": 10, "output": 5, "cached": 2}
    assert stats.pair("gpt", "reviewer")["fallback_attempts"] == 1


def test_tasks_aggregate_per_role():
    """Task outcomes and fallback answers are counted per role."""
    book = StatsBook()
    book.add_task(TaskEvent("coder", "b", "ok", 10.0, 2, True))
    book.add_task(TaskEvent("coder", None, "failed", 10.0, 3, False))
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
