"""The budgets ledger: reserve a call's worst case before it leaves, settle its real cost.

Before a call starts, its worst-case cost is reserved against every budget in its scope;
when it ends the reservation becomes its real cost (`BudgetLedger.settle`), or nothing
when it failed unbilled. Spend plus reservations never passes a ``stop`` or ``downgrade``
budget's limit, so however many calls are in flight a budget overshoots by no more than
the reservations' error. Times are Unix seconds, passed in.

`BudgetLedger` is the port; `LocalLedger` keeps the accounts in this process (one owner:
the router). A ledger shared across processes implements the same port.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from runtime._config.budgets import BudgetSettings
from runtime._policy.budget_periods import period_bounds
from runtime._rows import iso

MAX_SCOPES = 4096
"""Kinds of call (role, provider, tenant) whose budgets are remembered; then forgotten."""
RATE_WINDOW_S = 3600.0
"""The forecast extends the spend rate of the last hour (or of the period so far, when no
call has ended since the ledger began)."""


class CallScope(NamedTuple):
    """What a budget's scope is matched against: one call's role, provider, tenant, run.

    (A named tuple, as `Hold`: one is made for every attempt, and tuples are made fastest.)
    """

    role: str
    provider: str
    model: str
    tenant: str | None = None
    workflow_id: str | None = None


class Hold(NamedTuple):
    """A reservation: ``amount`` dollars held on each of ``accounts``."""

    hold_id: int
    accounts: tuple[tuple[str, str], ...]
    """``(budget name, account)``: the account is a workflow run's id, else ``""``."""
    amount: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """A budget that cannot hold a call, and what it stands at."""

    budget: BudgetSettings
    account: str
    spent: float
    reserved: float
    needed: float | None
    """The call's worst case (``None``: its model has no price)."""
    resets_at: float | None
    retry_s: float | None = None
    """Set when the budget may hold the call soon (a fleet's lease is on its way): try
    again after this many seconds instead of refusing."""

    def reason(self, model: str) -> str:
        """Say which budget refused the call, where it stands, and what to do."""
        budget = self.budget
        name = f'budget "{budget.name}" (scope {budget.scope.describe()})'
        if self.needed is None:
            return (
                f'{name} cannot reserve a call to model "{model}", which has no price; add '
                f'[prices."{model}"] with input and output (dollars per million tokens) to '
                'the config, or set unpriced = "allow" on the budget to count it at zero'
            )
        when = (
            "never resets"
            if self.resets_at is None
            else f"resets at {iso(self.resets_at, 'seconds')}"
        )
        return (
            f"{name} has spent ${self.spent:.4f} of its ${budget.limit_usd:.2f} limit this "
            f"{budget.period}, with ${self.reserved:.4f} reserved by calls in flight; this call "
            f"needs up to ${self.needed:.4f}. It {when}: wait, raise limit_usd, or lower the "
            "task's max_tokens"
        )


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """A budget's spend crossed one of its ``alert_at`` thresholds (once per period)."""

    budget: str
    account: str
    threshold: float
    spent: float
    limit_usd: float
    period_start: float
    refused: bool = False
    """Set when a refused call, not spend, brought the budget to the threshold."""


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget account as it stands: for `callboard budgets` and the gauges."""

    name: str
    account: str
    scope: str
    period: str
    on_exceed: str
    limit_usd: float
    spent_usd: float
    reserved_usd: float
    resets_at: float | None
    forecast_usd: float | None
    """Spend at the period's end at the recent rate (``None``: a ``total`` budget)."""
    alerted: float = 0.0
    """The highest ``alert_at`` threshold crossed this period (0: none)."""


class BudgetLedger(Protocol):
    """The port every budgets ledger implements; the router is its one caller."""

    def apply(self, rules: Sequence[BudgetSettings]) -> None:
        """Take a new set of budgets; accounts of unchanged ones keep their spend."""

    def reserve(self, call: CallScope, estimate_usd: float | None, now: float) -> Hold | Refusal:
        """Hold ``estimate_usd`` on every budget in ``call``'s scope, or say which cannot."""

    def refused(self, refusal: Refusal, now: float) -> list[BudgetAlert]:
        """Note that ``refusal`` turned a call away; return the alerts it newly brings."""

    def settle(self, hold: Hold, cost_usd: float, now: float) -> list[BudgetAlert]:
        """Turn ``hold`` into ``cost_usd`` of spend; return the thresholds newly crossed."""

    def restore(self, spent: Mapping[tuple[str, str], float], now: float) -> None:
        """Add spend made before this ledger began (read back from the metrics store)."""

    def statuses(self, now: float) -> list[BudgetStatus]:
        """Return every account as it stands at ``now``."""


_Scope = tuple[list[tuple[tuple[str, str], "_Account"]], list[BudgetSettings]]
"""A kind of call's accounts of budgets not per run, and its per-run budgets."""


@dataclass(slots=True)
class _Account:
    rule: BudgetSettings
    start: float
    end: float | None
    spent: float = 0.0
    reserved: float = 0.0
    holds: int = 0
    """Calls holding a reservation: at none, ``reserved`` is exactly 0 (no float residue)."""
    fired: set[float] = field(default_factory=set)
    recent: deque[list[float]] = field(default_factory=deque)
    """``[minute, spend]`` of the last hour's minutes (the forecast's rate)."""

    def roll(self, now: float) -> None:
        """Start a new period once the current one is over (reservations carry over)."""
        if self.end is not None and now >= self.end:
            self.start, self.end = period_bounds(self.rule.period, now)
            self.spent = 0.0
            self.fired.clear()
            self.recent.clear()

    def spend(self, cost: float, now: float) -> None:
        """Add ``cost`` to the period's spend and to its minute's."""
        self.spent += cost
        minute = now // 60.0
        recent = self.recent
        if recent and recent[-1][0] == minute:
            recent[-1][1] += cost
        else:
            recent.append([minute, cost])
            if len(recent) > RATE_WINDOW_S // 60.0 + 1:
                recent.popleft()

    def refuses(self, needed: float | None) -> bool:
        rule = self.rule
        if rule.on_exceed == "alert":
            return False
        if needed is None:
            return rule.unpriced == "refuse"
        return self.spent + self.reserved + needed > rule.limit_usd + 1e-12

    def crossed(self, level: float, *, refused: bool, account: str) -> list[BudgetAlert]:
        rule = self.rule
        if len(self.fired) >= len(rule.alert_at) or level < rule.alert_at[len(self.fired)] - 1e-12:
            return []  # thresholds rise and fire in order: the next is not reached
        new = [t for t in rule.alert_at if t <= level + 1e-12 and t not in self.fired]
        self.fired.update(new)
        return [
            BudgetAlert(rule.name, account, t, self.spent, rule.limit_usd, self.start, refused)
            for t in new
        ]

    def forecast(self, now: float) -> float | None:
        if self.end is None:
            return None
        elapsed = now - self.start
        if elapsed <= 0:
            return self.spent
        since = (now - RATE_WINDOW_S) // 60.0
        recent = [cost for minute, cost in self.recent if minute >= since]
        # with no call ended lately (spend read back at start): the period's average rate
        rate = sum(recent) / min(RATE_WINDOW_S, elapsed) if recent else self.spent / elapsed
        return self.spent + rate * max(self.end - now, 0.0)


class LocalLedger:
    """The accounts of every budget, kept in this process by their one owner."""

    def __init__(self, rules: Sequence[BudgetSettings] = ()) -> None:
        self._rules: tuple[BudgetSettings, ...] = ()
        self._accounts: dict[tuple[str, str], _Account] = {}
        self._scopes: dict[tuple[str, str, str | None, bool], _Scope] = {}
        """The accounts (and per-run budgets) each kind of call counts against, found once."""
        self._ids = itertools.count(1)
        self.apply(rules)

    def apply(self, rules: Sequence[BudgetSettings]) -> None:
        """Take a new set of budgets; accounts of unchanged ones keep their spend."""
        self._rules = tuple(rules)
        self._scopes.clear()
        kept = {r.name: r for r in self._rules}
        self._accounts = {
            key: account
            for key, account in self._accounts.items()
            if _same(kept.get(key[0]), account.rule)
        }
        for (name, _), account in self._accounts.items():
            account.rule = kept[name]

    def reserve(self, call: CallScope, estimate_usd: float | None, now: float) -> Hold | Refusal:
        """Hold ``estimate_usd`` on every budget in ``call``'s scope, or say which cannot.

        A ``stop`` budget's refusal comes before a ``downgrade`` one's; nothing is held
        unless every budget can hold the call.
        """
        accounts = self._in_scope(call, now)
        refusals = [key for key, account in accounts if account.refuses(estimate_usd)]
        if refusals:
            refusals.sort(key=lambda key: self._accounts[key].rule.on_exceed != "stop")
            return self._refusal(refusals[0], estimate_usd)
        amount = estimate_usd or 0.0
        keys = []
        for key, account in accounts:
            account.reserved += amount
            account.holds += 1
            keys.append(key)
        return Hold(next(self._ids), tuple(keys), amount)

    def refused(self, refusal: Refusal, now: float) -> list[BudgetAlert]:
        """Fire the thresholds, up to 1.0, the refused call would have brought spend to."""
        account = self._accounts.get((refusal.budget.name, refusal.account))
        if account is None or refusal.needed is None:
            return []
        account.roll(now)
        level = (account.spent + account.reserved + refusal.needed) / refusal.budget.limit_usd
        return account.crossed(min(level, 1.0), refused=True, account=refusal.account)

    def settle(self, hold: Hold, cost_usd: float, now: float) -> list[BudgetAlert]:
        """Turn ``hold`` into ``cost_usd`` of spend; return the thresholds newly crossed."""
        alerts: list[BudgetAlert] = []
        for key in hold.accounts:
            account = self._accounts.get(key)
            if account is None:  # its budget was removed by a reload
                continue
            if account.end is not None and now >= account.end:
                account.roll(now)
            account.holds = max(0, account.holds - 1)
            reserved = account.reserved - hold.amount
            account.reserved = max(0.0, reserved) if account.holds else 0.0
            if cost_usd > 0:
                account.spend(cost_usd, now)
            thresholds, fired = account.rule.alert_at, len(account.fired)
            if fired < len(thresholds):
                level = account.spent / account.rule.limit_usd
                alerts += account.crossed(level, refused=False, account=key[1])
        return alerts

    def release(self, hold: Hold, now: float) -> None:
        """Give back ``hold``: its call failed and cost nothing."""
        self.settle(hold, 0.0, now)

    def restore(self, spent: Mapping[tuple[str, str], float], now: float) -> None:
        """Add spend made before this ledger began, by ``(budget name, account)``."""
        rules = {r.name: r for r in self._rules}
        for (name, account_id), amount in spent.items():
            if name in rules and amount > 0:
                account = self._account(rules[name], account_id, now)
                account.spent += amount  # not a recent minute's: the forecast's rate skips it
                account.crossed(account.spent / account.rule.limit_usd, refused=False, account="")

    def statuses(self, now: float) -> list[BudgetStatus]:
        """Return every account as it stands at ``now`` (a budget never used: at zero)."""
        for rule in self._rules:
            if not rule.scope.workflow:
                self._account(rule, "", now)
        found = []
        for (name, account_id), account in self._accounts.items():
            account.roll(now)
            rule = account.rule
            found.append(
                BudgetStatus(
                    name,
                    account_id,
                    rule.scope.describe(),
                    rule.period,
                    rule.on_exceed,
                    rule.limit_usd,
                    account.spent,
                    account.reserved,
                    account.end,
                    account.forecast(now),
                    max(account.fired, default=0.0),
                )
            )
        return found

    def accounts_for(
        self, call: CallScope, now: float
    ) -> list[tuple[tuple[str, str], BudgetSettings, float, float | None]]:
        """Return the accounts ``call`` counts against: key, budget, period start and end."""
        return [(key, a.rule, a.start, a.end) for key, a in self._in_scope(call, now)]

    def account_rule(
        self, key: tuple[str, str], now: float
    ) -> tuple[BudgetSettings, float, float | None] | None:
        """Return an account's budget and period (``None``: no such budget now)."""
        rule = next((r for r in self._rules if r.name == key[0]), None)
        if rule is None:
            return None
        account = self._account(rule, key[1], now)
        return rule, account.start, account.end

    def observe(self, key: tuple[str, str], spent: float, now: float) -> None:
        """Set an account's spend to what a fleet's store reports (not counted as a rate)."""
        account = self._accounts.get(key)
        if account is not None:
            account.roll(now)
            account.spent = max(account.spent, spent)

    def reserved_on(self, key: tuple[str, str]) -> float:
        """Return what calls in flight hold on an account."""
        account = self._accounts.get(key)
        return 0.0 if account is None else account.reserved

    def refusal_at(self, key: tuple[str, str], needed: float | None, spent: float) -> Refusal:
        """Return the refusal of ``key``'s account, at ``spent`` (a fleet's spend)."""
        account = self._accounts[key]
        reserved = account.reserved
        return Refusal(account.rule, key[1], spent, reserved, needed, account.end)

    def _in_scope(self, call: CallScope, now: float) -> list[tuple[tuple[str, str], _Account]]:
        kind = (call.role, call.provider, call.tenant, call.workflow_id is not None)
        found = self._scopes.get(kind)
        if found is None:
            if len(self._scopes) >= MAX_SCOPES:
                self._scopes.clear()
            rules = [r for r in self._rules if r.scope.matches(call.role, call.provider, *kind[2:])]
            fixed = [
                ((r.name, ""), self._account(r, "", now)) for r in rules if not r.scope.workflow
            ]
            found = self._scopes[kind] = (fixed, [r for r in rules if r.scope.workflow])
        fixed, per_run = found
        for _, account in fixed:
            if account.end is not None and now >= account.end:
                account.roll(now)
        if not per_run:
            return fixed
        run = call.workflow_id or ""
        return fixed + [((r.name, run), self._account(r, run, now)) for r in per_run]

    def _account(self, rule: BudgetSettings, account_id: str, now: float) -> _Account:
        key = (rule.name, account_id)
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = _Account(rule, *period_bounds(rule.period, now))
        else:
            account.roll(now)
        return account

    def _refusal(self, key: tuple[str, str], needed: float | None) -> Refusal:
        account = self._accounts[key]
        return Refusal(account.rule, key[1], account.spent, account.reserved, needed, account.end)


SpendGroup = tuple[str, str, str | None, str | None, float]
"""``(role, provider, tenant, workflow_id, cost)``: spend recorded by a metrics store."""


def spend_by_account(
    rules: Sequence[BudgetSettings], spend_since: Callable[[float], list[SpendGroup]], now: float
) -> dict[tuple[str, str], float]:
    """Sum recorded spend into each budget's account for its period so far (for `restore`).

    ``spend_since`` answers the spend since a Unix time, grouped; it is asked once per
    distinct period start.
    """
    starts = {rule.name: max(period_bounds(rule.period, now)[0], 0.0) for rule in rules}
    groups = {start: spend_since(start) for start in set(starts.values())}
    totals: dict[tuple[str, str], float] = {}
    for rule in rules:
        for role, provider, tenant, workflow_id, cost in groups[starts[rule.name]]:
            if rule.scope.matches(role, provider, tenant, workflow_id is not None):
                key = (rule.name, (workflow_id or "") if rule.scope.workflow else "")
                totals[key] = totals.get(key, 0.0) + cost
    return totals


def _same(new: BudgetSettings | None, old: BudgetSettings) -> bool:
    """Whether a reloaded budget counts as before (so its account keeps its spend)."""
    return new is not None and (new.scope, new.period) == (old.scope, old.period)
