from __future__ import annotations

import pytest

from runtime._policy.rate_limits import RateLimiter, TokenBucket

pytestmark = pytest.mark.timeout(5)


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


def test_an_oversized_request_is_capped_at_capacity():
    """A call bigger than the bucket waits for a full bucket, not forever."""
    bucket = TokenBucket(capacity=10, per_s=1.0, stamp=0.0)
    bucket.take(5, 0.0)
    assert bucket.wait_s(50, 0.0) == pytest.approx(5.0)


def test_debt_from_underestimates_delays_later_calls():
    """Settling a call that cost more than estimated pushes the bucket into debt."""
    limiter = RateLimiter.per_minute(rpm=None, tpm=3600, now=0.0)
    limiter.take(100, 0.0)
    limiter.settle(estimated=100, actual=700, now=0.0)
    assert limiter.tokens is not None
    assert limiter.tokens.level == pytest.approx(-100)
    assert limiter.wait_s(20, 0.0) == pytest.approx(2.0)


def test_overestimates_are_given_back():
    """Settling a call that cost less than estimated returns the difference."""
    limiter = RateLimiter.per_minute(rpm=None, tpm=3600, now=0.0)
    limiter.take(500, 0.0)
    limiter.settle(estimated=500, actual=50, now=0.0)
    assert limiter.tokens is not None
    assert limiter.tokens.level == pytest.approx(550)


def test_rpm_allows_a_short_burst_then_paces_requests():
    """At 60 rpm ten calls (ten seconds' worth) pass at once, then one a second."""
    limiter = RateLimiter.per_minute(rpm=60, tpm=None, now=0.0)
    for _ in range(10):
        assert limiter.wait_s(1, 0.0) == 0.0
        limiter.take(1, 0.0)
    assert limiter.wait_s(1, 0.0) == pytest.approx(1.0)
    limiter.take(1, 1.0)
    assert limiter.wait_s(1, 1.0) == pytest.approx(1.0)


def test_a_low_rpm_still_admits_one_request():
    """Below six a minute the bucket still holds one whole request."""
    limiter = RateLimiter.per_minute(rpm=2, tpm=None, now=0.0)
    assert limiter.wait_s(1, 0.0) == 0.0
    limiter.take(1, 0.0)
    assert limiter.wait_s(1, 0.0) == pytest.approx(30.0)


def test_a_hold_blocks_until_its_time():
    """A provider's request to hold off (a 429) delays every call until it ends."""
    limiter = RateLimiter.per_minute(rpm=None, tpm=None, now=0.0)
    limiter.hold(until=7.0)
    assert limiter.wait_s(1, 2.0) == pytest.approx(5.0)
    assert limiter.wait_s(1, 7.0) == 0.0


def test_backlog_wait_covers_a_whole_queue():
    """The wait for a queue of calls is the refill time of their total."""
    limiter = RateLimiter.per_minute(rpm=60, tpm=None, now=0.0)
    for _ in range(10):
        limiter.take(1, 0.0)
    assert limiter.backlog_wait_s(3, 30, 0.0) == pytest.approx(3.0)
