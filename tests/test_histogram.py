from __future__ import annotations

import random
from collections import Counter

import pytest

from runtime._metrics.histogram import BOUNDS, LatencyHistogram, bucket_of, percentile, percentiles

pytestmark = pytest.mark.timeout(30)


def test_a_latency_counts_in_the_bucket_whose_bound_covers_it():
    """Each bucket's upper bound is within 10% of the latencies it counts."""
    for ms in (0.05, 0.1, 1.0, 123.4, 59_000.0):
        index = bucket_of(ms)
        assert ms <= BOUNDS[index] <= ms * 1.1 + 0.1


def test_percentile_reads_the_bucket_where_the_rank_falls():
    """Of 90 calls at 100 ms and 10 at 1 s, p50 is about 100 ms and p95 about 1 s."""
    histogram = LatencyHistogram()
    histogram.add(100.0, 90)
    histogram.add(1000.0, 10)
    assert histogram.percentile(0.5) == pytest.approx(100.0, rel=0.1)
    assert histogram.percentile(0.95) == pytest.approx(1000.0, rel=0.1)


def test_percentiles_at_once_equal_percentile_one_by_one():
    """Reading several quantiles in one pass gives what `percentile` gives for each."""
    rng = random.Random(3)  # noqa: S311 - test data, not secrets
    for _ in range(3000):
        counts = Counter(
            {rng.randint(0, 180): rng.randint(0, 5) for _ in range(rng.randint(0, 30))}
        )
        quantiles = sorted(rng.choice([0.0, 0.5, 0.95, 0.99, 1.0, rng.random()]) for _ in range(3))
        assert percentiles(counts, quantiles) == [percentile(counts, q) for q in quantiles]


def test_percentiles_of_nothing_are_none():
    """No counts (or only zero counts): no percentile."""
    assert percentiles(Counter(), [0.5, 0.95]) == [None, None]
    assert percentiles(Counter({4: 0}), [0.5]) == [None]
