"""The fleet's one trial call after a shared rest, as plain code."""

from __future__ import annotations

import math

import pytest

from runtime._policy.trial_gate import TrialGate, TrialState

pytestmark = pytest.mark.timeout(5)


def test_calls_wait_for_the_rest_then_for_the_token():
    gate = TrialGate(token_s=30.0)
    assert gate.wait_s(0.0) == 0.0
    gate.rest(until=5.0)
    assert gate.wait_s(1.0) == 4.0
    assert not gate.due(1.0)
    assert gate.due(5.0)
    assert gate.wait_s(5.0) == math.inf
    gate.asked()
    assert not gate.due(6.0)  # one ask out


def test_the_winner_sends_one_call_and_opens_the_gate_when_it_passes():
    gate = TrialGate(token_s=30.0)
    gate.rest(until=1.0)
    gate.asked()
    gate.answered(True, 1.0)
    assert gate.wait_s(1.0) == 0.0
    assert gate.started(7)
    assert not gate.started(8)
    assert gate.wait_s(1.1) == math.inf  # the trial is in flight: others wait
    assert not gate.ended(8)
    assert gate.ended(7)
    assert gate.state is TrialState.OPEN


def test_a_failed_trial_rests_again_and_says_nothing():
    gate = TrialGate(token_s=30.0)
    gate.rest(until=1.0)
    gate.asked()
    gate.answered(True, 1.0)
    gate.started(7)
    gate.rest(until=3.0)  # its 429
    assert not gate.ended(7)
    assert gate.wait_s(2.0) == 1.0


def test_a_loser_waits_for_the_outcome_or_the_token_to_expire():
    gate = TrialGate(token_s=30.0)
    gate.rest(until=1.0)
    gate.asked()
    gate.answered(False, 1.0)
    assert gate.wait_s(2.0) == 29.0
    assert gate.due(31.0)  # the winner went quiet: try again
    gate.recovered()
    assert gate.wait_s(2.0) == 0.0


def test_no_store_opens_the_gate():
    gate = TrialGate(token_s=30.0)
    gate.rest(until=1.0)
    gate.asked()
    gate.answered(None, 1.0)
    assert gate.wait_s(1.0) == 0.0
