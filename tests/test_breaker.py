from __future__ import annotations

import math

import pytest

from runtime._policy.breaker import Breaker, BreakerState

pytestmark = pytest.mark.timeout(5)


def _opened(failures: int = 1, cooldown_s: float = 5.0, at: float = 0.0) -> Breaker:
    breaker = Breaker(failures=failures, cooldown_s=cooldown_s)
    for _ in range(failures):
        ticket, _ = breaker.on_start(at)
        breaker.on_failure(ticket, at)
    assert breaker.state is BreakerState.OPEN
    return breaker


def _trial_with_an_older_call_in_flight() -> tuple[Breaker, int, int]:
    """A breaker opened by one failure, its trial started while an older call is in flight."""
    breaker = Breaker(failures=1, cooldown_s=5.0)
    early, _ = breaker.on_start(0.0)
    failing, _ = breaker.on_start(0.0)
    breaker.on_failure(failing, 0.1)
    trial, _ = breaker.on_start(5.1)
    return breaker, early, trial


def test_consecutive_failures_open_the_breaker():
    """The breaker opens at the configured count of failures in a row."""
    breaker = Breaker(failures=3, cooldown_s=10.0)
    tickets = [breaker.on_start(0.0)[0] for _ in range(3)]
    assert breaker.on_failure(tickets[0], 0.0) is None
    assert breaker.on_failure(tickets[1], 1.0) is None
    assert breaker.on_failure(tickets[2], 2.0) is BreakerState.OPEN
    assert not breaker.admits(2.0)
    assert breaker.available_at() == 12.0


def test_a_success_resets_the_streak():
    """Failures separated by a success do not open the breaker."""
    breaker = Breaker(failures=2, cooldown_s=10.0)
    ticket, _ = breaker.on_start(0.0)
    breaker.on_failure(ticket, 0.0)
    breaker.on_success(ticket, 0.5)
    assert breaker.on_failure(ticket, 1.0) is None
    assert breaker.state is BreakerState.CLOSED


def test_after_the_cooldown_one_trial_decides():
    """An open breaker admits a single trial once cooled; its success closes it."""
    breaker = _opened()
    assert not breaker.admits(4.9)
    assert breaker.admits(5.0)
    trial, change = breaker.on_start(5.0)
    assert change is BreakerState.HALF_OPEN
    assert not breaker.admits(5.1)
    assert breaker.available_at() == math.inf
    assert breaker.on_success(trial, 5.1) is BreakerState.CLOSED
    assert breaker.admits(5.2)


def test_a_call_started_before_the_breaker_opened_cannot_close_it():
    """A success from a call that began while the breaker was closed leaves it open."""
    breaker = Breaker(failures=2, cooldown_s=30.0)
    early, _ = breaker.on_start(0.0)
    failing = [breaker.on_start(0.1)[0] for _ in range(2)]
    breaker.on_failure(failing[0], 0.2)
    assert breaker.on_failure(failing[1], 0.3) is BreakerState.OPEN
    assert breaker.on_success(early, 0.4) is None
    assert breaker.state is BreakerState.OPEN
    assert not breaker.admits(0.8)
    assert breaker.available_at() == pytest.approx(30.3)


def test_only_the_trial_closes_a_half_open_breaker():
    """While the trial is in flight, a late success of an older call does not close it."""
    breaker, early, trial = _trial_with_an_older_call_in_flight()
    assert breaker.on_success(early, 5.2) is None
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.on_success(trial, 5.3) is BreakerState.CLOSED


def test_late_outcomes_of_older_calls_do_not_move_the_breaker():
    """A late failure neither ends a trial nor re-opens a breaker the trial closed."""
    breaker, early, trial = _trial_with_an_older_call_in_flight()
    assert breaker.on_failure(early, 5.2) is None
    breaker.on_neutral(early)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.on_success(trial, 5.25)
    assert breaker.on_failure(early, 5.3) is None
    assert breaker.state is BreakerState.CLOSED


def test_a_failed_trial_reopens_for_another_cooldown():
    """A trial that fails opens the breaker again from the trial's time."""
    breaker = _opened()
    trial, _ = breaker.on_start(6.0)
    assert breaker.on_failure(trial, 6.5) is BreakerState.OPEN
    assert not breaker.admits(10.0)
    assert breaker.admits(11.5)


def test_a_neutral_trial_lets_another_trial_through():
    """A trial that says nothing about health (a bad request) does not close the breaker."""
    breaker = _opened()
    trial, _ = breaker.on_start(5.0)
    breaker.on_neutral(trial)
    assert breaker.state is BreakerState.OPEN
    assert breaker.admits(5.0)
    second, change = breaker.on_start(5.0)
    assert change is BreakerState.HALF_OPEN
    assert second != trial


def test_an_unlucky_run_among_answers_does_not_open_the_breaker():
    """Five failures in a row, among a minute of mostly answers, leave the breaker closed."""
    breaker = Breaker(failures=5, cooldown_s=30.0, failure_rate=0.5, window_s=10.0)
    for i in range(40):
        ticket, _ = breaker.on_start(i * 0.2)
        breaker.on_success(ticket, i * 0.2)
    tickets = [breaker.on_start(8.0)[0] for _ in range(5)]
    assert [breaker.on_failure(t, 8.1) for t in tickets] == [None] * 5
    assert breaker.state is BreakerState.CLOSED


def test_a_provider_that_goes_down_opens_once_failures_hold_the_window():
    """After answers age out of the window, the run of failures opens the breaker."""
    breaker = Breaker(failures=5, cooldown_s=30.0, failure_rate=0.5, window_s=10.0)
    for i in range(10):
        ticket, _ = breaker.on_start(float(i))
        breaker.on_success(ticket, float(i))
    changes = []
    for i in range(12):
        ticket, _ = breaker.on_start(10.0 + i)
        changes.append(breaker.on_failure(ticket, 10.0 + i))
    assert changes.index(BreakerState.OPEN) == 5  # 6 failures against 5 answers in 10 s
    assert breaker.state is BreakerState.OPEN


def test_a_failure_rate_of_zero_opens_on_the_run_alone():
    """failure_rate = 0 keeps the plain count of failures in a row."""
    breaker = Breaker(failures=2, cooldown_s=30.0, failure_rate=0.0)
    for i in range(20):
        ticket, _ = breaker.on_start(i * 0.1)
        breaker.on_success(ticket, i * 0.1)
    tickets = [breaker.on_start(3.0)[0] for _ in range(2)]
    breaker.on_failure(tickets[0], 3.0)
    assert breaker.on_failure(tickets[1], 3.0) is BreakerState.OPEN
