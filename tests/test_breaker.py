from __future__ import annotations

import pytest

from runtime._policy.breaker import Breaker, BreakerState

pytestmark = pytest.mark.timeout(5)


def test_consecutive_failures_open_the_breaker():
    """The breaker opens at the configured count of failures in a row."""
    breaker = Breaker(failures=3, cooldown_s=10.0)
    assert breaker.on_failure(0.0) is None
    assert breaker.on_failure(1.0) is None
    assert breaker.on_failure(2.0) is BreakerState.OPEN
    assert not breaker.admits(2.0)
    assert breaker.available_at() == 12.0


def test_a_success_resets_the_streak():
    """Failures separated by a success do not open the breaker."""
    breaker = Breaker(failures=2, cooldown_s=10.0)
    breaker.on_failure(0.0)
    breaker.on_success()
    assert breaker.on_failure(1.0) is None
    assert breaker.state is BreakerState.CLOSED


def test_after_the_cooldown_one_trial_decides():
    """An open breaker admits a single trial once cooled; its success closes it."""
    breaker = Breaker(failures=1, cooldown_s=5.0)
    breaker.on_failure(0.0)
    assert not breaker.admits(4.9)
    assert breaker.admits(5.0)
    assert breaker.on_start(5.0) is BreakerState.HALF_OPEN
    assert not breaker.admits(5.1)
    assert breaker.on_success() is BreakerState.CLOSED
    assert breaker.admits(5.2)


def test_a_failed_trial_reopens_for_another_cooldown():
    """A trial that fails opens the breaker again from the trial's time."""
    breaker = Breaker(failures=1, cooldown_s=5.0)
    breaker.on_failure(0.0)
    breaker.on_start(6.0)
    assert breaker.on_failure(6.5) is BreakerState.OPEN
    assert not breaker.admits(10.0)
    assert breaker.admits(11.5)


def test_a_neutral_trial_lets_another_trial_through():
    """A trial that says nothing about health (a bad request) does not close the breaker."""
    breaker = Breaker(failures=1, cooldown_s=5.0)
    breaker.on_failure(0.0)
    breaker.on_start(5.0)
    breaker.on_neutral()
    assert breaker.state is BreakerState.OPEN
    assert breaker.admits(5.0)
