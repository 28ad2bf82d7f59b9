"""The lease ledger: what one process may admit of a fleet-wide limit (pure, clock passed in)."""

from __future__ import annotations

import math

import pytest

from runtime._policy.leases import RETRY_S, Grant, LeaseLedger

pytestmark = pytest.mark.timeout(5)


def test_a_call_waits_for_a_lease_and_spends_it_locally():
    """Without a lease a call waits for the ask; with one, calls start with no further ask."""
    ledger = LeaseLedger(rpm=600, tpm=None, lease_s=1.0)
    assert ledger.wait_s(100, 0.0) == math.inf
    ask = ledger.ask(0.0, queued=3, queued_tokens=300)
    assert ask is not None
    assert ask.requests >= 3
    assert ledger.ask(0.0, 3, 300) is None  # one ask out at a time
    ledger.granted(Grant(3, 0, slot=7, processes=2), asked_at=0.0, now=0.01)
    for _ in range(3):
        assert ledger.wait_s(100, 0.02) == 0
        assert ledger.take(100, 0.02).slot == 7
    assert ledger.wait_s(100, 0.02) == math.inf


def test_what_a_lease_leaves_goes_back_to_its_slot_when_it_expires():
    """A lease spent for one call and expired gives the rest back to the slot it was granted in."""
    ledger = LeaseLedger(rpm=600, tpm=None, lease_s=1.0)
    ledger.ask(0.0, 1, 0)
    ledger.granted(Grant(5, 0, slot=3, processes=1), asked_at=0.0, now=0.0)
    ledger.take(10, 0.1)
    ask = ledger.ask(2.0, queued=1, queued_tokens=10)
    assert ask is not None
    assert ask.returns == ((3, 4, 0),)


def test_token_corrections_reach_the_slot_of_their_lease():
    """A call that used fewer tokens than estimated gives the difference back with the next ask."""
    ledger = LeaseLedger(rpm=None, tpm=10_000, lease_s=1.0)
    ledger.ask(0.0, 1, 500)
    ledger.granted(Grant(1, 500, slot=9, processes=1), asked_at=0.0, now=0.0)
    spent = ledger.take(500, 0.1)
    ledger.settle(spent, 150)
    ask = ledger.ask(0.2, queued=1, queued_tokens=500)
    assert ask is not None
    assert (9, 0, 350) in ask.returns
    assert ask.min_tokens == 500


def test_an_empty_grant_says_when_to_ask_again():
    """When the fleet's window is full the ledger waits as long as the store said."""
    ledger = LeaseLedger(rpm=60, tpm=None, lease_s=5.0)
    ledger.ask(0.0, 1, 0)
    ledger.granted(Grant(0, 0, slot=1, processes=1, retry_s=4.0), asked_at=0.0, now=0.0)
    assert ledger.wait_s(1, 1.0) == pytest.approx(3.0)
    assert ledger.ask(1.0, 1, 0) is None
    assert ledger.ask(4.0, 1, 0) is not None


def test_a_full_window_is_asked_again_within_a_lease_life():
    """Other processes give back what their leases leave within a lease's life: ask then."""
    ledger = LeaseLedger(rpm=60, tpm=None, lease_s=1.0)
    ledger.ask(0.0, 1, 0)
    ledger.granted(Grant(0, 0, slot=1, processes=3, retry_s=50.0), asked_at=0.0, now=0.0)
    assert ledger.wait_s(1, 0.5) == pytest.approx(0.5)


def test_a_lost_store_falls_back_to_a_share_and_rejoining_counts_it_back():
    """Store away: the limit divided by the processes last seen; on rejoining, that use is sent."""
    ledger = LeaseLedger(rpm=600, tpm=None, lease_s=1.0)
    ledger.ask(0.0, 1, 0)
    ledger.granted(Grant(1, 0, slot=1, processes=4), asked_at=0.0, now=0.0)
    ledger.ask(0.5, 1, 0)
    assert ledger.failed(0.5) is True
    assert ledger.local is not None
    assert ledger.local.requests is not None
    assert ledger.local.requests.window.limit == 150
    taken = 0
    while ledger.wait_s(1, 0.6) == 0:
        ledger.take(1, 0.6)
        taken += 1
    assert taken == 25  # the share's 10-second burst: 150 / 6
    assert ledger.ask(0.6, 1, 0) is None  # tried again only after RETRY_S
    ask = ledger.ask(0.5 + RETRY_S, 1, 0)
    assert ask is not None
    assert ask.backfill == (25, 0)
    assert ledger.granted(Grant(5, 0, 2, 4), 1.5, 1.5) is True
    assert ledger.local is None
