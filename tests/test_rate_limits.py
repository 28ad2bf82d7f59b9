from __future__ import annotations

import pytest

from runtime._policy.rate_limits import RateLimiter, RollingWindow, TokenBucket
from runtime.testing import busiest_window

pytestmark = pytest.mark.timeout(5)


def greedy(limiter: RateLimiter, seconds: float, tokens: int = 1, actual: int | None = None):
    """Start calls as fast as the limiter lets them for ``seconds``; return their times."""
    now, times = 0.0, []
    while now < seconds:
        wait = limiter.wait_s(tokens, now)
        if wait > 0:
            now += wait
            continue
        taken = limiter.take(tokens, now)
        if actual is not None:
            limiter.settle(taken, actual, now, now)
        times.append(now)
    return times


def test_a_full_bucket_admits_at_once_then_makes_callers_wait():
    """Capacity passes immediately; the next unit waits for the refill."""
    bucket = TokenBucket(capacity=2, per_s=1.0, stamp=0.0)
    assert bucket.wait_s(1, 0.0) == 0.0
    bucket.take(1, 0.0)
    bucket.take(1, 0.0)
    assert bucket.wait_s(1, 0.0) == pytest.approx(1.0)
    assert bucket.wait_s(1, 0.5) == pytest.approx(0.5)
    assert bucket.wait_s(1, 1.0) == 0.0


def test_refill_never_exceeds_capacity():
    """An idle bucket stops filling at its capacity."""
    bucket = TokenBucket(capacity=3, per_s=1.0, stamp=0.0)
    bucket.take(3, 0.0)
    bucket.wait_s(1, 100.0)
    assert bucket.level == 3


def test_no_rolling_minute_carries_more_than_rpm():
    """At 60 rpm a greedy caller gets a 10-call burst, then one a second, never 61 a minute."""
    times = greedy(RateLimiter.per_minute(rpm=60, tpm=None, now=0.0), 300.0)
    assert times[:10] == [0.0] * 10
    assert times[10] == pytest.approx(1.0)
    assert busiest_window(times) == 60
    assert len(times) >= 290  # the minute's budget is spent, all but the last slot's worth


def test_no_rolling_minute_carries_more_than_tpm():
    """Token estimates are taken up front; a window never holds more than tpm of them."""
    times = greedy(RateLimiter.per_minute(rpm=None, tpm=6000, now=0.0), 300.0, tokens=250)
    assert busiest_window(times, weights=[250.0] * len(times)) <= 6000
    assert len(times) >= 5 * 23


def test_usage_below_the_estimate_is_given_back_to_the_window():
    """Calls that cost 100 of an estimated 250 tokens let 57 a minute through, not 24.

    Each call's estimate must fit when it starts (5,750 + 250), then only its usage counts.
    """
    limiter = RateLimiter.per_minute(rpm=None, tpm=6000, now=0.0)
    times = greedy(limiter, 300.0, tokens=250, actual=100)
    assert busiest_window(times, weights=[100.0] * len(times)) <= 6000
    assert busiest_window(times) >= 57


def test_usage_above_the_estimate_delays_later_calls():
    """A call that cost 700 of an estimated 100 tokens counts as 700 in its minute."""
    limiter = RateLimiter.per_minute(rpm=None, tpm=3600, now=0.0)
    taken = limiter.take(100, 0.0)
    limiter.settle(taken, 700, 0.0, 0.0)
    assert limiter.tokens is not None
    assert limiter.tokens.window.total == 700
    assert limiter.tokens.bucket.level == pytest.approx(-100)
    assert limiter.wait_s(20, 0.0) == pytest.approx(2.0)


def test_a_call_bigger_than_the_limit_waits_for_an_empty_window():
    """An estimate above tpm passes once nothing else counts, rather than never."""
    limiter = RateLimiter.per_minute(rpm=None, tpm=1000, now=0.0)
    limiter.take(10, 0.0)
    assert limiter.wait_s(5000, 0.0) == pytest.approx(60.5)
    assert limiter.wait_s(5000, 60.5) == 0.0


def test_a_call_counts_until_a_minute_after_it_was_answered():
    """The provider counts a request from its arrival, at latest the answer: so does the window."""
    limiter = RateLimiter.per_minute(rpm=1, tpm=None, now=0.0)
    first = limiter.take(1, 0.0)
    limiter.settle(first, None, answered_at=30.0, now=45.0)
    assert limiter.wait_s(1, 60.5) == pytest.approx(30.0)
    assert limiter.wait_s(1, 90.5) == 0.0


def test_a_correction_after_the_calls_minute_changes_nothing():
    """Usage learned once a call's minute has passed changes nothing in the window."""
    window = RollingWindow(limit=100)
    slot = window.take(50, 0.0)
    window.give_back(slot, 50, 10.0)
    window.put(80, 5.0, 10.0)
    assert window.total == 80
    assert window.wait_s(100, 20.0) == pytest.approx(45.5)
    window.give_back(slot, 50, 70.0)
    window.put(500, 1.0, 70.0)
    assert window.total == 0


def test_a_call_that_could_not_be_sent_is_refunded():
    """Neither its request nor its tokens count."""
    limiter = RateLimiter.per_minute(rpm=1, tpm=100, now=0.0)
    limiter.refund(limiter.take(100, 0.0), 0.0)
    assert limiter.wait_s(100, 0.0) == 0.0


def test_a_low_rpm_still_admits_one_request():
    """Below six a minute the bucket still holds one whole request."""
    limiter = RateLimiter.per_minute(rpm=2, tpm=None, now=0.0)
    assert limiter.wait_s(1, 0.0) == 0.0
    limiter.take(1, 0.0)
    assert limiter.wait_s(1, 0.0) == pytest.approx(30.0)


def test_a_queue_waits_for_the_bucket_then_for_the_window():
    """A backlog within the burst starts now; past it, at the pace; past the minute, later."""
    limiter = RateLimiter.per_minute(rpm=60, tpm=None, now=0.0)
    assert limiter.backlog_wait_s(10, 0, 0.0) == 0.0
    assert limiter.backlog_wait_s(11, 0, 0.0) == pytest.approx(1.0)
    for _ in range(10):
        limiter.take(1, 0.0)
    assert limiter.backlog_wait_s(50, 0, 0.0) == pytest.approx(50.0)
    assert limiter.backlog_wait_s(51, 0, 0.0) == pytest.approx(60.5)
    assert limiter.backlog_wait_s(111, 0, 0.0) == pytest.approx(111.0, abs=1.0)


def test_the_window_keeps_at_most_a_minute_of_slots():
    """However many calls, the window holds one entry per half second of the last minute."""
    window = RollingWindow(limit=1_000_000)
    for step in range(100_000):
        window.take(1, step * 0.01)
    assert len(window._slots) <= 121
    assert window.total == pytest.approx(6050, abs=1)


def test_the_busiest_window_counts_what_lies_within_a_minute():
    """Moments 60 s apart fall in no common window (t - 60, t]; 59.9 s apart they do."""
    assert busiest_window([0.0, 60.0, 120.0]) == 1
    assert busiest_window([0.0, 59.9, 60.0]) == 2
    assert busiest_window([0.0, 1.0], weights=[100.0, 250.0]) == 350


def test_a_hold_blocks_until_its_time():
    """A provider's request to hold off (a 429) delays every call until it ends."""
    limiter = RateLimiter.per_minute(rpm=None, tpm=None, now=0.0)
    limiter.hold(until=7.0)
    assert limiter.wait_s(1, 2.0) == pytest.approx(5.0)
    assert limiter.wait_s(1, 7.0) == 0.0
