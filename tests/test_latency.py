"""The live latency estimates (decayed percentiles) and the time an attempt may take."""

import pytest

from runtime._policy.latency import (
    UNMEASURED_RESERVE_S,
    DecayedHistogram,
    LatencyBook,
    attempt_end,
)

pytestmark = pytest.mark.timeout(5)


def test_a_percentile_is_within_twenty_percent_above_the_truth():
    """p50 and p95 of known durations come out at or up to 20 % above the true values."""
    histogram = DecayedHistogram(now=0.0)
    for i in range(1, 101):
        histogram.add(i / 100.0, now=0.0)
    p50, p95 = histogram.quantile(0.5), histogram.quantile(0.95)
    assert p50 is not None
    assert p95 is not None
    assert 0.50 <= p50 <= 0.50 * 1.2
    assert 0.95 <= p95 <= 0.95 * 1.2


def test_an_empty_histogram_has_no_percentile():
    """Nothing measured, nothing claimed."""
    assert DecayedHistogram().quantile(0.95) is None


def test_old_calls_weigh_less_so_a_slower_provider_is_seen_soon():
    """After a provider slows down, its p95 follows within a few half-lives of fewer calls."""
    histogram = DecayedHistogram(half_life_s=60.0, now=0.0)
    for _ in range(100):
        histogram.add(0.2, now=0.0)
    for _ in range(20):
        histogram.add(5.0, now=600.0)  # ten half-lives later: the old calls weigh ~1/1000
    p95 = histogram.quantile(0.95)
    assert p95 is not None
    assert p95 >= 5.0


def test_the_weight_halves_every_half_life():
    """Ten calls made now are worth five calls one half-life later."""
    histogram = DecayedHistogram(half_life_s=30.0, now=100.0)
    for _ in range(10):
        histogram.add(1.0, now=100.0)
    assert histogram.weight(100.0) == pytest.approx(10.0)
    assert histogram.weight(130.0) == pytest.approx(5.0)


def test_weights_are_rescaled_before_they_overflow():
    """Calls days apart keep finite weights, and the newest still decide the percentile."""
    histogram = DecayedHistogram(half_life_s=1.0, now=0.0)
    histogram.add(0.1, now=0.0)
    for day in range(1, 4):
        histogram.add(2.0, now=day * 86_400.0)
    assert histogram.weight(3 * 86_400.0) == pytest.approx(1.0, rel=1e-6)
    p50 = histogram.quantile(0.5)
    assert p50 is not None
    assert p50 >= 2.0


def test_a_book_keeps_latency_and_ttft_per_key():
    """Keys may be provider ids or (provider, role) pairs; ttft is kept only when known."""
    book = LatencyBook()
    book.observe("gpt", 1.0, 0.3, now=0.0)
    book.observe(("gpt", "coder"), 2.0, None, now=0.0)
    latency = book.latency("gpt")
    ttft = book.ttft("gpt")
    assert latency is not None
    assert ttft is not None
    assert latency.quantile(0.5) == pytest.approx(1.0, rel=0.2)
    assert ttft.quantile(0.5) == pytest.approx(0.3, rel=0.2)
    assert book.ttft(("gpt", "coder")) is None
    book.forget({"gpt"})
    assert book.latency(("gpt", "coder")) is None


def test_the_reserve_is_the_p95_or_a_floor_before_any_measurement():
    """An unmeasured fallback gets the documented reserve; a measured one its p95."""
    book = LatencyBook()
    assert book.reserve_s("claude") == UNMEASURED_RESERVE_S
    for _ in range(20):
        book.observe("claude", 0.5, None, now=0.0)
    assert 0.5 <= book.reserve_s("claude") <= 0.6


@pytest.mark.parametrize(
    ("deadline", "reserve", "end"),
    [
        (100.0, None, 100.0),  # no fallback: the whole deadline
        (100.0, 10.0, 90.0),  # the fallback's p95 is kept
        (100.0, 80.0, 50.0),  # never less than half the time left
        (100.0, 500.0, 50.0),
    ],
)
def test_an_attempt_keeps_time_for_the_fallback(deadline, reserve, end):
    """An attempt gets the deadline less the reserve, but at least half of the time left."""
    assert attempt_end(0.0, deadline, reserve) == pytest.approx(end)


def test_recency_ranks_histograms_as_their_weight_does_at_any_time():
    """A histogram measured more, or more lately, scores higher; the score needs no clock."""
    old, recent, many = DecayedHistogram(now=0.0), DecayedHistogram(now=0.0), DecayedHistogram()
    old.add(1.0, now=0.0)
    recent.add(1.0, now=600.0)
    for _ in range(8):
        many.add(1.0, now=0.0)
    assert old.recency() < recent.recency()
    assert recent.recency() < many.recency()  # 8 calls two half-lives ago outweigh 1 now
    assert many.weight(600.0) > recent.weight(600.0)
