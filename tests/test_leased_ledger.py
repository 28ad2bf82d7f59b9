"""A fleet's budgets ledger (leases of a budget from a shared store), as plain code."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from runtime._config.budgets import BudgetSettings
from runtime._policy.budget_ledger import CallScope, Hold, Refusal
from runtime._policy.leased_ledger import LEASE_SHARE, BudgetAsk, BudgetGrant, LeasedLedger

pytestmark = pytest.mark.timeout(5)

NOW = 1_800_000_000.0
CALL = CallScope(role="coder", provider="claude", model="claude-sonnet-4-5")


def _budget(limit: float = 1.0, **options: object) -> BudgetSettings:
    return BudgetSettings.model_validate_json(
        json.dumps({"name": "b", "limit_usd": limit, "period": "total", **options})
    )


@dataclass
class Store:
    """The store's arithmetic (as the Redis script does it), answering when told to."""

    spent: float = 0.0
    leased: float = 0.0
    processes: int = 1
    asks: list[tuple[LeasedLedger, BudgetAsk]] = field(default_factory=list)

    def sender(self, ledger: list[LeasedLedger]) -> Callable[[BudgetAsk], None]:
        """Return a ``send`` that queues the asks of ``ledger[0]``."""
        return lambda ask: self.asks.append((ledger[0], ask))

    def answer_all(self, now: float = NOW) -> None:
        """Answer every ask queued, in order."""
        while self.asks:
            ledger, ask = self.asks.pop(0)
            self.spent += ask.report_usd + ask.backfill_usd
            self.leased = max(0.0, self.leased - ask.report_usd - ask.give_back_usd)
            grant = min(ask.want_usd, ask.limit_usd - self.spent - self.leased)
            grant = 0.0 if grant < ask.min_usd or grant <= 0 else grant
            self.leased += grant
            ledger.granted(ask, BudgetGrant(grant, self.spent, self.leased, self.processes), now)


def _ledger(store: Store, limit: float = 1.0, **options: object) -> LeasedLedger:
    holder: list[LeasedLedger] = []
    ledger = LeasedLedger([_budget(limit, **options)], store.sender(holder), lease_s=1.0)
    holder.append(ledger)
    return ledger


def test_a_call_waits_for_a_lease_then_spends_it_without_asking():
    store = Store()
    ledger = _ledger(store)
    first = ledger.reserve(CALL, 0.01, NOW)
    assert isinstance(first, Refusal)
    assert first.retry_s is not None
    again = ledger.reserve(CALL, 0.01, NOW)
    assert isinstance(again, Refusal)
    assert again.retry_s is not None
    assert len(store.asks) == 1  # one ask out at a time
    ask = store.asks[0][1]
    assert ask.min_usd == 0.01
    assert ask.want_usd == pytest.approx(LEASE_SHARE)
    store.answer_all()
    holds = [ledger.reserve(CALL, 0.01, NOW) for _ in range(5)]
    assert all(isinstance(h, Hold) for h in holds)
    assert not store.asks  # five calls, no round trip
    assert store.leased == pytest.approx(LEASE_SHARE)


def test_settled_spend_is_reported_and_an_idle_lease_goes_back():
    store = Store()
    ledger = _ledger(store)
    ledger.reserve(CALL, 0.01, NOW)
    store.answer_all()
    hold = ledger.reserve(CALL, 0.01, NOW)
    assert isinstance(hold, Hold)
    ledger.settle(hold, 0.004, NOW)
    ledger.flush(NOW + 0.1)  # not idle yet: only the spend goes
    store.answer_all()
    assert store.spent == pytest.approx(0.004)
    assert store.leased == pytest.approx(LEASE_SHARE - 0.004)
    ledger.flush(NOW + 2.0)
    store.answer_all()
    assert store.leased == pytest.approx(0.0)
    assert ledger.statuses(NOW + 2.0)[0].spent_usd == pytest.approx(0.004)


def test_two_processes_never_spend_past_the_limit_together():
    store = Store(processes=2)
    ledgers = [_ledger(store, limit=0.1) for _ in range(2)]
    spent = 0.0
    refused = 0
    for step in range(200):
        ledger = ledgers[step % 2]
        hold = ledger.reserve(CALL, 0.003, NOW)
        if isinstance(hold, Hold):
            ledger.settle(hold, 0.002, NOW)
            spent += 0.002
        elif hold.retry_s is None:
            refused += 1
        store.answer_all()
        if step % 10 == 0:
            for each in ledgers:
                each.flush(NOW)
            store.answer_all()
    assert refused > 0
    assert spent <= 0.1 + 1e-9
    assert spent >= 0.1 - 2 * 0.003 * 2  # at most a call's worst case left unused per process


def test_a_lost_store_leaves_a_local_share_then_reports_it():
    store = Store(processes=4)
    ledger = _ledger(store, limit=1.0)
    ledger.reserve(CALL, 0.01, NOW)
    store.answer_all()  # learns of four processes
    for _ in range(5):
        hold = ledger.reserve(CALL, 0.01, NOW)
        assert isinstance(hold, Hold)
        ledger.settle(hold, 0.01, NOW)
    ledger.flush(NOW)
    _, ask = store.asks.pop()
    assert ledger.failed(ask, NOW) is True
    # a quarter of what the fleet had left: (1.0 - 0.05) / 4
    held = []
    while isinstance(hold := ledger.reserve(CALL, 0.01, NOW), Hold):
        held.append(hold)
    assert len(held) == 23
    refusal = ledger.reserve(CALL, 0.01, NOW)
    assert isinstance(refusal, Refusal)
    assert refusal.retry_s is None
    ledger.flush(NOW + 1.5)  # tries the store again, and it answers
    _, ask = store.asks[0]
    assert ask.report_usd == pytest.approx(0.05)  # what the lost ask carried goes again
    store.answer_all(NOW + 1.5)
    assert store.spent == pytest.approx(0.05)
    assert store.leased == pytest.approx(0.0)  # the slice held when the store went is back
    assert isinstance(ledger.reserve(CALL, 0.01, NOW + 1.5), Refusal)  # leases again
    store.answer_all(NOW + 1.5)
    for hold in held:  # calls admitted on the local share end after the store came back
        ledger.settle(hold, 0.01, NOW + 1.6)
    ledger.flush(NOW + 1.7)
    (_, ask), *_ = store.asks
    assert ask.backfill_usd == pytest.approx(0.23)
    assert ask.report_usd == 0.0
    store.answer_all(NOW + 1.7)
    assert store.spent == pytest.approx(0.28)
    assert store.leased == pytest.approx(LEASE_SHARE)  # the new slice only
