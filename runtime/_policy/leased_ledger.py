"""A budgets ledger for a fleet: each process spends a lease of the fleet's budget locally.

The fleet's spend and what is leased out live in the shared store (Redis); a process asks
it for a slice of a budget's remaining dollars (`BudgetAsk`, one atomic script), reserves
calls against that slice with no round trip, reports the real costs with its next ask and
gives back what it no longer needs. The store grants only what ``limit - spent - leased``
leaves, and a call is reserved at its worst case as before, so the fleet overshoots a
budget by no more than one process alone would: the reservations' error.

When a call's worst case is more than the slice left, `reserve` answers a `Refusal` with
``retry_s`` set (the router tries again then) and asks the store for more; it refuses for
good only when the store has no more to grant. Replies arrive on another thread (the I/O
loop): every method takes one short lock. When the store cannot be reached the ledger
spends a local share (what the fleet had left, divided by the processes last seen) and
reports that spend on rejoining. Times are Unix seconds, passed in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from runtime._config.budgets import BudgetSettings
from runtime._policy.budget_ledger import (
    BudgetAlert,
    BudgetStatus,
    CallScope,
    Hold,
    LocalLedger,
    Refusal,
)

LEASE_SHARE = 0.05
"""A lease asks for this share of a budget's limit (at least the call's worst case)."""
RETRY_S = 0.02
"""When a call waiting for a lease is tried again (a loopback Redis answers in ~1 ms)."""
FALLBACK_RETRY_S = 1.0
"""How often a process on its local share tries the store again."""
HEARTBEAT_S = 3.0
"""A process holding a lease (or calls reserved on one) asks at least this often: the
store drops the leases of a process it has not heard from in 10 s (it died)."""

Key = tuple[str, str]
"""``(budget name, account)``."""
_AccountRef = tuple[Key, BudgetSettings, float, "float | None"]
"""An account a call counts against: its key, budget, period start and end."""


@dataclass(frozen=True, slots=True)
class BudgetAsk:
    """One ask of the store for one budget account."""

    key: Key
    period_start: float
    period_end: float | None
    limit_usd: float
    report_usd: float
    """Spend settled here since the last ask (moves from leased to spent)."""
    give_back_usd: float
    """Lease no longer wanted (moves out of leased)."""
    backfill_usd: float
    """Spend made on a local share while the store was away (counted as spent only)."""
    want_usd: float
    min_usd: float
    """Grant nothing unless at least this much (the waiting call's worst case)."""
    restored_usd: float
    """Spend read back from the metrics store: the account's spend if the store has none."""


@dataclass(frozen=True, slots=True)
class BudgetGrant:
    """The store's answer for one account."""

    granted_usd: float
    spent_usd: float
    """The fleet's spend, this ask's report included."""
    leased_usd: float
    """Leased out to the fleet, this grant included."""
    processes: int


@dataclass(slots=True)
class _Lease:
    period_start: float
    free: float = 0.0
    unreported: float = 0.0
    given_back: float = 0.0
    backfill: float = 0.0
    asking: bool = False
    exhausted: bool = False
    """The store's last answer could not cover the call that asked."""
    fleet_spent: float = 0.0
    processes: int = 1
    local: bool = False
    """Spending a local share: the store was not reached."""
    retry_at: float = 0.0
    last_used: float = 0.0
    asked_at: float = 0.0
    restored: float = 0.0


class LeasedLedger:
    """The `BudgetLedger` of one process of a fleet (see the module's docstring).

    ``send`` takes each ask to the store; its answer comes back through `granted` or
    `failed`, from any thread.
    """

    def __init__(
        self,
        rules: Sequence[BudgetSettings],
        send: Callable[[BudgetAsk], None],
        lease_s: float = 1.0,
    ) -> None:
        self._local = LocalLedger(rules)
        self._send = send
        self._lease_s = lease_s
        self._leases: dict[Key, _Lease] = {}
        self._local_holds: set[int] = set()
        """Holds reserved on a local share (their spend is backfill, not a lease's)."""
        self._lock = threading.Lock()

    def apply(self, rules: Sequence[BudgetSettings]) -> None:
        """Take a new set of budgets; accounts of unchanged ones keep their spend."""
        with self._lock:
            self._local.apply(rules)
            names = {rule.name for rule in rules}
            self._leases = {k: v for k, v in self._leases.items() if k[0] in names}

    def reserve(self, call: CallScope, estimate_usd: float | None, now: float) -> Hold | Refusal:
        """Hold the call on this process's leases, or say to wait for one, or refuse."""
        asks: list[BudgetAsk] = []
        with self._lock:
            result = self._reserve(call, estimate_usd, now, asks)
        self._dispatch(asks)
        return result

    def _reserve(
        self, call: CallScope, estimate: float | None, now: float, asks: list[BudgetAsk]
    ) -> Hold | Refusal:
        accounts = self._local.accounts_for(call, now)
        needed = estimate or 0.0
        refusals: list[Refusal] = []
        waiting = False
        for account in accounts:
            if account[1].on_exceed == "alert" or estimate is None:
                continue
            short = self._short(account, needed, now, asks)
            if isinstance(short, Refusal):
                refusals.append(short)
            waiting = waiting or short is True
        if refusals:
            refusals.sort(key=lambda refusal: refusal.budget.on_exceed != "stop")
            return refusals[0]
        if waiting:
            return Refusal(accounts[0][1], "", 0.0, 0.0, estimate, None, retry_s=RETRY_S)
        hold = self._local.reserve(call, estimate, now)
        if isinstance(hold, Hold):
            for key in hold.accounts:
                lease = self._leases.get(key)
                if lease is not None:
                    lease.free -= hold.amount
                    if lease.local:
                        self._local_holds.add(hold.hold_id)
        return hold

    def _short(
        self, account: _AccountRef, needed: float, now: float, asks: list[BudgetAsk]
    ) -> Refusal | bool:
        """Whether the account's lease lacks ``needed``: a refusal, or ``True`` (asked)."""
        key, rule, start, end = account
        lease = self._lease(key, start, now)
        lease.last_used = now
        if lease.free + 1e-12 >= needed:
            return False
        if lease.local or (lease.exhausted and now < lease.retry_at):
            spent = lease.fleet_spent + lease.unreported + lease.backfill
            return self._local.refusal_at(key, needed, spent)
        if not lease.asking:
            asks.append(self._ask(key, rule, lease, start, end, want=needed, floor=needed, now=now))
        return True

    def refused(self, refusal: Refusal, now: float) -> list[BudgetAlert]:
        """Note that ``refusal`` turned a call away; return the alerts it newly brings."""
        with self._lock:
            return self._local.refused(refusal, now)

    def settle(self, hold: Hold, cost_usd: float, now: float) -> list[BudgetAlert]:
        """Turn ``hold`` into ``cost_usd`` of spend; the unused rest stays in the lease."""
        with self._lock:
            local = hold.hold_id in self._local_holds
            self._local_holds.discard(hold.hold_id)
            for key in hold.accounts:
                lease = self._leases.get(key)
                if lease is None:
                    continue
                if local:  # its share is gone if the store came back: only the spend counts
                    lease.backfill += cost_usd
                    lease.free += hold.amount - cost_usd if lease.local else 0.0
                else:
                    lease.free += hold.amount - cost_usd
                    lease.unreported += cost_usd
            return self._local.settle(hold, cost_usd, now)

    def restore(self, spent: Mapping[tuple[str, str], float], now: float) -> None:
        """Keep spend read back from the metrics store, for accounts the store has not seen."""
        with self._lock:
            self._local.restore(spent, now)
            for key, amount in spent.items():
                found = self._local.account_rule(key, now)
                if found is not None:
                    self._lease(key, found[1], now).restored = amount

    def statuses(self, now: float) -> list[BudgetStatus]:
        """Return every account as this process last learned of the fleet's spend."""
        with self._lock:
            return self._local.statuses(now)

    def flush(self, now: float) -> None:
        """Report spend and give back leases idle for a lease's life (call every lease)."""
        asks: list[BudgetAsk] = []
        with self._lock:
            for key, lease in self._leases.items():
                idle = now - lease.last_used >= self._lease_s
                if lease.asking or (lease.local and now < lease.retry_at):
                    continue
                owed = lease.unreported > 0 or lease.backfill > 0
                holding = lease.free > 0 or self._local.reserved_on(key) > 0
                alive = holding and now - lease.asked_at >= HEARTBEAT_S  # or the store drops it
                if owed or alive or (idle and lease.free > 0) or lease.local:
                    found = self._local.account_rule(key, now)
                    if found is None:
                        continue
                    rule, start, end = found
                    if idle:
                        lease.given_back += max(0.0, lease.free)
                        lease.free = min(lease.free, 0.0)
                    asks.append(self._ask(key, rule, lease, start, end, now=now))
        self._dispatch(asks)

    def granted(self, ask: BudgetAsk, grant: BudgetGrant, now: float) -> bool:
        """Hold what the store granted; return whether this ends a fallback to a local share."""
        with self._lock:
            lease = self._leases.get(ask.key)
            if lease is None or lease.period_start != ask.period_start:
                return False
            rejoined = lease.local
            if rejoined:
                lease.local = False
                lease.free = 0.0
            lease.asking = False
            lease.free += grant.granted_usd
            lease.exhausted = ask.min_usd > 0 and grant.granted_usd < ask.min_usd
            lease.retry_at = now + self._lease_s
            lease.fleet_spent = grant.spent_usd
            lease.processes = max(1, grant.processes)
            self._local.observe(ask.key, grant.spent_usd + lease.unreported + lease.backfill, now)
            return rejoined

    def failed(self, ask: BudgetAsk, now: float) -> bool:
        """Spend a local share until the store answers; return whether this starts one."""
        with self._lock:
            lease = self._leases.get(ask.key)
            if lease is None:
                return False
            lease.asking = False
            lease.retry_at = now + FALLBACK_RETRY_S
            # what the ask carried is still to report and give back
            lease.unreported += ask.report_usd
            lease.given_back += ask.give_back_usd
            lease.backfill += ask.backfill_usd
            if lease.local:
                return False
            lease.local = True
            lease.given_back += max(0.0, lease.free)  # the slice held goes back on rejoining
            lease.free = min(lease.free, 0.0)
            left = ask.limit_usd - lease.fleet_spent - lease.unreported - lease.backfill
            lease.free = max(0.0, left / lease.processes) + min(lease.free, 0.0)
            return True

    def _lease(self, key: Key, start: float, now: float) -> _Lease:
        lease = self._leases.get(key)
        if lease is None or lease.period_start != start:
            lease = self._leases[key] = _Lease(start, last_used=now)
        return lease

    def _ask(
        self,
        key: Key,
        rule: BudgetSettings,
        lease: _Lease,
        start: float,
        end: float | None,
        *,
        now: float,
        want: float = 0.0,
        floor: float = 0.0,
    ) -> BudgetAsk:
        lease.asking = True
        lease.asked_at = now
        ask = BudgetAsk(
            key,
            start,
            end,
            rule.limit_usd,
            lease.unreported,
            lease.given_back,
            lease.backfill,
            max(want, rule.limit_usd * LEASE_SHARE) if want else 0.0,
            floor,
            lease.restored,
        )
        lease.unreported = 0.0
        lease.given_back = 0.0
        lease.backfill = 0.0
        return ask

    def _dispatch(self, asks: list[BudgetAsk]) -> None:
        for ask in asks:
            self._send(ask)
