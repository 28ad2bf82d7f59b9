"""The budgets ledger, as plain code with the time passed in."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from runtime._config.budgets import BudgetScope, BudgetSettings
from runtime._policy.budget_ledger import (
    CallScope,
    Hold,
    LocalLedger,
    Refusal,
    SpendGroup,
    spend_by_account,
)
from runtime._policy.budget_periods import period_bounds

pytestmark = pytest.mark.timeout(5)

NOON = datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()
CALL = CallScope(role="coder", provider="claude", model="claude-sonnet-4-5")


def _budget(limit: float = 1.0, **options: object) -> BudgetSettings:
    return BudgetSettings.model_validate_json(
        json.dumps({"name": "b", "limit_usd": limit, **options})
    )


def _hold(ledger: LocalLedger, estimate: float | None, call: CallScope = CALL) -> Hold:
    hold = ledger.reserve(call, estimate, NOON)
    assert isinstance(hold, Hold), hold
    return hold


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_periods_begin_on_utc_boundaries():
    """Hours, days, Monday weeks and months begin at 00 UTC; a total has no end."""
    now = _at("2026-12-31T13:45:10")
    assert period_bounds("hour", now) == (_at("2026-12-31T13:00:00"), _at("2026-12-31T14:00:00"))
    assert period_bounds("day", now) == (_at("2026-12-31T00:00:00"), _at("2027-01-01T00:00:00"))
    assert period_bounds("week", now) == (_at("2026-12-28T00:00:00"), _at("2027-01-04T00:00:00"))
    assert period_bounds("month", now) == (_at("2026-12-01T00:00:00"), _at("2027-01-01T00:00:00"))
    assert period_bounds("total", now)[1] is None


def test_reservations_count_before_calls_end():
    """Calls in flight hold their worst case: the next one that would pass the limit is refused."""
    ledger = LocalLedger([_budget(1.0)])
    for _ in range(4):
        _hold(ledger, 0.25)
    refusal = ledger.reserve(CALL, 0.01, NOON)
    assert isinstance(refusal, Refusal)
    assert refusal.reserved == pytest.approx(1.0)
    assert refusal.budget.name == "b"


def test_settling_replaces_the_estimate_with_the_real_cost():
    """A call that cost less than reserved gives the rest back to the budget."""
    ledger = LocalLedger([_budget(1.0)])
    hold = _hold(ledger, 0.6)
    assert isinstance(ledger.reserve(CALL, 0.6, NOON), Refusal)
    ledger.settle(hold, 0.1, NOON + 1)
    (status,) = ledger.statuses(NOON + 1)
    assert (status.spent_usd, status.reserved_usd) == (pytest.approx(0.1), 0.0)
    _hold(ledger, 0.6)


def test_a_failed_call_releases_its_reservation():
    """A release (failure, cancellation, a crashed provider actor) gives back the whole hold."""
    ledger = LocalLedger([_budget(1.0)])
    hold = _hold(ledger, 0.9)
    ledger.release(hold, NOON + 1)
    (status,) = ledger.statuses(NOON + 1)
    assert (status.spent_usd, status.reserved_usd) == (0.0, 0.0)


def test_the_next_period_starts_at_zero_and_keeps_holds_in_flight():
    """At midnight UTC the spend resets; a call held across it settles into the new day."""
    ledger = LocalLedger([_budget(1.0)])
    ledger.settle(_hold(ledger, 0.5), 0.5, NOON)
    hold = _hold(ledger, 0.4)
    tomorrow = NOON + 12 * 3600
    ledger.settle(hold, 0.3, tomorrow)
    (status,) = ledger.statuses(tomorrow)
    assert (status.spent_usd, status.reserved_usd) == (pytest.approx(0.3), 0.0)
    assert status.resets_at == NOON + 36 * 3600


def test_scopes_pick_the_budgets_a_call_counts_against():
    """A provider's, a role's and a tenant's budget count only their calls."""
    ledger = LocalLedger(
        [
            _budget(1.0, name="p", scope={"provider": "gpt"}),
            _budget(1.0, name="r", scope={"role": "coder"}),
            _budget(1.0, name="t", scope={"tenant": "acme"}),
        ]
    )
    hold = _hold(ledger, 0.2, CallScope("coder", "claude", "m", tenant="acme"))
    assert {name for name, _ in hold.accounts} == {"r", "t"}
    assert _hold(ledger, 0.2, CallScope("planner", "claude", "m", tenant="other")).accounts == ()


def test_one_tenants_budget_never_blocks_another():
    """A tenant that spent its budget is refused; another tenant's calls still pass."""
    ledger = LocalLedger([_budget(0.5, name="acme", scope={"tenant": "acme"})])
    acme = CallScope("coder", "claude", "m", tenant="acme")
    ledger.settle(_hold(ledger, 0.5, acme), 0.5, NOON)
    assert isinstance(ledger.reserve(acme, 0.01, NOON), Refusal)
    _hold(ledger, 0.4, CallScope("coder", "claude", "m", tenant="zeta"))


def test_each_workflow_run_has_its_own_account():
    """A ``workflow = true`` budget keeps one account per run and ignores calls outside runs."""
    ledger = LocalLedger([_budget(0.5, scope={"workflow": True})])
    run1 = CallScope("coder", "claude", "m", workflow_id="w1")
    ledger.settle(_hold(ledger, 0.5, run1), 0.5, NOON)
    assert isinstance(ledger.reserve(run1, 0.1, NOON), Refusal)
    _hold(ledger, 0.4, CallScope("coder", "claude", "m", workflow_id="w2"))
    assert _hold(ledger, 9.0).accounts == ()


def test_a_stop_budget_is_named_before_a_downgrade_one():
    """When both refuse, the refusal is the stop budget's: downgrading would not help."""
    ledger = LocalLedger(
        [
            _budget(0.1, name="claude", scope={"provider": "claude"}, on_exceed="downgrade"),
            _budget(0.1, name="all"),
        ]
    )
    refusal = ledger.reserve(CALL, 0.5, NOON)
    assert isinstance(refusal, Refusal)
    assert refusal.budget.name == "all"


def test_an_alert_budget_never_refuses():
    """``on_exceed = "alert"`` lets spend pass the limit and alerts at each threshold once."""
    ledger = LocalLedger([_budget(1.0, on_exceed="alert", alert_at=[0.5, 1.0])])
    alerts = [a for _ in range(3) for a in ledger.settle(_hold(ledger, 0.6), 0.6, NOON)]
    assert [a.threshold for a in alerts] == [0.5, 1.0]
    (status,) = ledger.statuses(NOON)
    assert status.spent_usd == pytest.approx(1.8)


def test_alerts_fire_once_per_threshold_per_period():
    """Each threshold fires once a period, in order, and again in the next period."""
    ledger = LocalLedger([_budget(1.0, alert_at=[0.5, 0.8])])
    fired = [ledger.settle(_hold(ledger, 0.3), 0.3, NOON) for _ in range(3)]
    assert [[a.threshold for a in f] for f in fired] == [[], [0.5], [0.8]]
    assert ledger.settle(_hold(ledger, 0.05), 0.05, NOON) == []
    tomorrow = NOON + 86400
    hold = ledger.reserve(CALL, 0.6, tomorrow)
    assert isinstance(hold, Hold)
    assert [a.threshold for a in ledger.settle(hold, 0.6, tomorrow)] == [0.5]


def test_a_refusal_fires_the_thresholds_it_would_have_reached():
    """A refused call brings the budget to 1.0 at most: the full-budget alert fires once."""
    ledger = LocalLedger([_budget(1.0, alert_at=[0.5, 1.0])])
    ledger.settle(_hold(ledger, 0.6), 0.6, NOON)
    refusal = ledger.reserve(CALL, 0.6, NOON)
    assert isinstance(refusal, Refusal)
    (alert,) = ledger.refused(refusal, NOON)
    assert (alert.threshold, alert.refused) == (1.0, True)
    assert ledger.refused(refusal, NOON) == []


def test_an_unpriced_call_is_refused_with_the_price_to_add():
    """A model with no price cannot be reserved: the reason names the ``[prices]`` entry."""
    ledger = LocalLedger([_budget(1.0)])
    refusal = ledger.reserve(CALL, None, NOON)
    assert isinstance(refusal, Refusal)
    assert '[prices."mystery"]' in refusal.reason("mystery")
    assert 'unpriced = "allow"' in refusal.reason("mystery")


def test_unpriced_allow_counts_the_call_at_zero():
    """``unpriced = "allow"`` lets an unpriced call through, holding nothing."""
    ledger = LocalLedger([_budget(1.0, unpriced="allow")])
    assert _hold(ledger, None).amount == 0.0


def test_the_refusal_names_spend_limit_and_reset():
    """The reason says the budget, its spend, reservations, limit, reset time and what to do."""
    ledger = LocalLedger([_budget(2.0, name="daily-total", scope={"role": "coder"})])
    ledger.settle(_hold(ledger, 1.5), 1.25, NOON)
    _hold(ledger, 0.5)
    refusal = ledger.reserve(CALL, 0.5, NOON)
    assert isinstance(refusal, Refusal)
    reason = refusal.reason("claude-sonnet-4-5")
    assert 'budget "daily-total" (scope { role = "coder" })' in reason
    assert "$1.2500 of its $2.00 limit this day" in reason
    assert "$0.5000 reserved" in reason
    assert "resets at 2026-12-06T00:00:00Z" in reason
    assert "raise limit_usd" in reason


def test_the_forecast_extends_the_recent_rate_to_the_periods_end():
    """Spending $1 an hour from midnight forecasts $24 for the day."""
    ledger = LocalLedger([_budget(100.0)])
    midnight = period_bounds("day", NOON)[0]
    for hour in range(1, 13):
        ledger.settle(_hold(ledger, 1.0), 1.0, midnight + hour * 3600 - 1)
    (status,) = ledger.statuses(NOON)
    assert status.spent_usd == pytest.approx(12.0)
    assert status.forecast_usd == pytest.approx(24.0, rel=0.01)


def test_restored_spend_counts_and_keeps_its_alerts_quiet():
    """Spend read back at start counts against the limit; thresholds it passed do not fire again."""
    ledger = LocalLedger([_budget(1.0, alert_at=[0.5, 0.9])])
    ledger.restore({("b", ""): 0.6}, NOON)
    assert isinstance(ledger.reserve(CALL, 0.5, NOON), Refusal)
    assert [a.threshold for a in ledger.settle(_hold(ledger, 0.3), 0.3, NOON)] == [0.9]


def test_a_reload_keeps_the_spend_of_unchanged_budgets():
    """A budget reloaded with a new limit keeps its spend; one with a new scope starts over."""
    ledger = LocalLedger([_budget(1.0), _budget(1.0, name="c")])
    ledger.settle(_hold(ledger, 0.5), 0.5, NOON)
    ledger.apply([_budget(2.0), _budget(1.0, name="c", scope={"role": "coder"})])
    spent = {s.name: (s.spent_usd, s.limit_usd) for s in ledger.statuses(NOON)}
    assert spent == {"b": (pytest.approx(0.5), 2.0), "c": (0.0, 1.0)}


def test_scope_describes_itself_as_the_config_writes_it():
    """A refusal names the scope as a user wrote it."""
    assert BudgetScope().describe() == "{}"
    assert BudgetScope(provider="claude", workflow=True).describe() == (
        '{ provider = "claude", workflow = true }'
    )


def test_recorded_spend_is_summed_into_each_budgets_period():
    """Spend read back counts toward each budget whose scope and period it falls in."""
    rules = [
        _budget(1.0, name="day"),
        _budget(1.0, name="acme", scope={"tenant": "acme"}, period="month"),
        _budget(1.0, name="runs", scope={"workflow": True}),
    ]
    asked: list[float] = []

    def spend_since(since: float) -> list[SpendGroup]:
        asked.append(since)
        return [("coder", "gpt", "acme", None, 0.25), ("coder", "gpt", None, "w1", 0.5)]

    totals = spend_by_account(rules, spend_since, NOON)
    assert totals == {("day", ""): 0.75, ("acme", ""): 0.25, ("runs", "w1"): 0.5}
    assert sorted(asked) == [period_bounds("month", NOON)[0], period_bounds("day", NOON)[0]]


def test_restored_spend_forecasts_at_the_periods_average_rate():
    """With only spend read back at start, the forecast extends the period's average rate."""
    ledger = LocalLedger([_budget(100.0)])
    ledger.restore({("b", ""): 6.0}, NOON)
    (status,) = ledger.statuses(NOON)
    assert status.forecast_usd == pytest.approx(12.0)


def test_reservations_settled_in_any_order_leave_exactly_nothing_reserved():
    """Float sums of holds drift (0.1 + 0.2 - 0.1 - 0.2 != 0): none held means 0.0 exactly."""
    ledger = LocalLedger([_budget(100.0)])
    amounts = [0.1, 0.2, 0.7, 0.30000000000000004, 1e-9, 0.013] * 20
    holds = [_hold(ledger, a) for a in amounts]
    for hold in reversed(holds[::2]):
        ledger.settle(hold, 0.0, NOON)
    assert ledger.statuses(NOON)[0].reserved_usd > 0
    for hold in holds[1::2]:
        ledger.release(hold, NOON)
    (status,) = ledger.statuses(NOON)
    assert status.reserved_usd == 0.0
