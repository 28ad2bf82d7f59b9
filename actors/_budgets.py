"""What the router does with budgets: reserve before an attempt leaves, settle when it ends.

`BudgetKeeper` is a plain object the router holds (one owner, no locks). It asks the
ledger, writes ``budget_refused`` and ``budget_alert`` audit records, and calls the
board's ``on_budget`` callback with each alert. The ledger outlives a router that crashed:
the supervisor hands the same one to the next.
"""

from __future__ import annotations

from collections.abc import Callable

from runtime._audit import AuditWriter
from runtime._config.schema import Config
from runtime._policy.budget_gate import BudgetGate
from runtime._policy.budget_ledger import BudgetAlert, BudgetLedger, BudgetStatus, Hold, Refusal
from runtime._policy.task import TaskState
from runtime._rows import AttemptRow, iso

OnBudget = Callable[[BudgetAlert], object]
"""Called on the router's thread with each alert; must return at once (errors are ignored)."""


class BudgetKeeper:
    """The router's budgets: holds by call id, refusals and alerts recorded."""

    def __init__(
        self,
        ledger: BudgetLedger,
        config: Config,
        audit: AuditWriter,
        wall: Callable[[], float],
        on_budget: OnBudget | None = None,
    ) -> None:
        self._gate = BudgetGate(ledger, wall)
        self._gate.apply(config.budget_rules)
        self._audit = audit
        self._on_budget = on_budget

    def apply(self, config: Config) -> None:
        """Take the budgets of a reloaded config."""
        self._gate.apply(config.budget_rules)

    def reserve(self, task: TaskState, provider: str) -> Hold | Refusal | None:
        """Reserve an attempt's worst case on ``provider``; record a refusal and its alerts."""
        request = task.request_for(provider)
        config = task.config
        hold = self._gate.reserve(
            task.spec, provider, request, config.price_table, config.providers[provider].type
        )
        if isinstance(hold, Refusal) and hold.retry_s is None:
            budget = hold.budget
            self._audit.event(
                "budget_refused",
                task_id=task.task_id,
                role=task.spec.role,
                tenant=task.spec.tenant,
                provider=provider,
                budget=budget.name,
                on_exceed=budget.on_exceed,
                spent_usd=round(hold.spent, 6),
                reserved_usd=round(hold.reserved, 6),
                needed_usd=None if hold.needed is None else round(hold.needed, 6),
                limit_usd=budget.limit_usd,
            )
            self._alert(self._gate.refused(hold))
        return hold

    def held(self, call_id: int, hold: Hold | Refusal | None) -> None:
        """Keep the hold of call ``call_id`` until it ends."""
        if isinstance(hold, Hold):
            self._gate.held(call_id, hold)

    def settle(self, call_id: int, row: AttemptRow) -> None:
        """Settle call ``call_id`` at its row's cost (unknown: the whole hold)."""
        self._alert(self._gate.settle(call_id, row.cost_usd))

    @property
    def active(self) -> bool:
        """Whether any budget is configured."""
        return self._gate.active

    def statuses(self) -> list[BudgetStatus]:
        """Every budget account as it stands now."""
        return self._gate.statuses()

    def _alert(self, alerts: list[BudgetAlert]) -> None:
        for alert in alerts:
            self._audit.event(
                "budget_alert",
                budget=alert.budget,
                account=alert.account or None,
                threshold=alert.threshold,
                spent_usd=round(alert.spent, 6),
                limit_usd=alert.limit_usd,
                period_start=iso(alert.period_start, "seconds") if alert.period_start > 0 else None,
                refused=alert.refused,
                now=True,
            )
            if self._on_budget is not None:
                try:
                    self._on_budget(alert)
                except Exception:  # noqa: BLE001 - the caller's code; budgets go on regardless
                    self._audit.event("budget_callback_failed", budget=alert.budget)
