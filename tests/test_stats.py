from __future__ import annotations

import pytest

from runtime._chat import AttemptRecord, Usage
from runtime._messages import TaskEvent
from runtime._stats import LatencyHistogram, StatsBook

pytestmark = pytest.mark.timeout(5)


NO_USAGE = Usage()


def task(role, provider, outcome, attempts, *, usage=NO_USAGE, head="gpt"):
    return TaskEvent(role, provider, outcome, 10.0, tuple(attempts), usage, head)


def test_attempts_aggregate_per_provider_and_role():
    """Counts, failures by kind, tokens and fallbacks add up per (provider, role)."""
    book = StatsBook()
    ok = AttemptRecord("gpt", "m", "ok", 200, 100.0)
    failed = AttemptRecord("gpt", "m", "server", 500, 50.0)
    book.add_task(task("coder", "gpt", "ok", [ok], usage=Usage(10, 5, 2)))
    book.add_task(task("coder", "gpt", "ok", [failed, ok], usage=Usage(1, 1)))
    book.add_task(
        task("reviewer", "claude", "ok", [AttemptRecord("claude", "m", "ok")], usage=Usage(3, 4))
    )
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
    first = AttemptRecord("gpt", "m", "server", 500)
    book.add_task(task("coder", "claude", "ok", [first, AttemptRecord("claude", "m", "ok")]))
    book.add_task(task("coder", None, "failed", [first]))
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
