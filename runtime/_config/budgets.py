"""``[[budgets]]`` and ``[tenants.<id>]``: spend limits, and each tenant's own chains.

A budget caps what calls in its scope may spend in a period (UTC boundaries). A tenant may
cast its own providers to some roles and carry a daily or monthly budget of its own, which
becomes a budget scoped to it (`all_budgets`). The checks here report every problem with
its place (`budget_problems`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Period = Literal["hour", "day", "week", "month", "total"]
OnExceed = Literal["stop", "downgrade", "alert"]
_Limit = Annotated[float, Field(gt=0)]
_Threshold = Annotated[float, Field(gt=0, le=10)]


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class BudgetScope(_Table):
    """Which calls a budget counts: every one that matches all the keys set (``{}``: all)."""

    role: str | None = None
    provider: str | None = None
    tenant: str | None = None
    workflow: bool = False
    """Each workflow run has its own account (calls outside a workflow are not counted)."""

    def matches(self, role: str, provider: str, tenant: str | None, in_workflow: bool) -> bool:
        """Whether a call of ``role`` on ``provider`` for ``tenant`` is in this scope."""
        return (
            (self.role is None or self.role == role)
            and (self.provider is None or self.provider == provider)
            and (self.tenant is None or self.tenant == tenant)
            and (not self.workflow or in_workflow)
        )

    def describe(self) -> str:
        """Say what the scope covers, as the config writes it."""
        keys = [f'{k} = "{v}"' for k in ("role", "provider", "tenant") if (v := getattr(self, k))]
        keys += ["workflow = true"] if self.workflow else []
        return "{ " + ", ".join(keys) + " }" if keys else "{}"


class BudgetSettings(_Table):
    """``[[budgets]]``: one spend limit."""

    name: Annotated[str, Field(min_length=1)]
    scope: BudgetScope = Field(default_factory=BudgetScope)
    limit_usd: _Limit
    period: Period = "day"
    on_exceed: OnExceed = "stop"
    """``stop`` refuses the call; ``downgrade`` skips the provider (the role's next ones
    serve); ``alert`` only alerts."""
    alert_at: tuple[_Threshold, ...] = ()
    """Shares of the limit whose crossing writes a ``budget_alert`` (once per period)."""
    unpriced: Literal["refuse", "allow"] = "refuse"
    """A call whose model has no price: refused (by ``stop`` and ``downgrade``), or allowed
    and counted at zero."""


class TenantSettings(_Table):
    """``[tenants.<id>]``: a tenant's own chains for some roles, and its own budgets."""

    roles: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Role → providers, in order, for this tenant's tasks of that role."""
    budget_usd_day: _Limit | None = None
    budget_usd_month: _Limit | None = None


def all_budgets(
    budgets: Sequence[BudgetSettings], tenants: Mapping[str, TenantSettings]
) -> tuple[BudgetSettings, ...]:
    """Return the configured budgets and those the tenants' ``budget_usd_*`` keys make."""
    made = [
        BudgetSettings(
            name=f"tenant-{tid}-{period}",
            scope=BudgetScope(tenant=tid),
            limit_usd=limit,
            period=period,
            alert_at=(0.8, 1.0),
        )
        for tid, tenant in tenants.items()
        for period, limit in _tenant_limits(tenant)
        if limit is not None
    ]
    return (*budgets, *made)


def _tenant_limits(tenant: TenantSettings) -> list[tuple[Period, float | None]]:
    return [("day", tenant.budget_usd_day), ("month", tenant.budget_usd_month)]


def budget_problems(
    budgets: Sequence[BudgetSettings],
    tenants: Mapping[str, TenantSettings],
    providers: Sequence[str],
    roles: Sequence[str] | None,
) -> list[tuple[str, str]]:
    """Check names and references; return ``(location, message)`` for each problem.

    ``roles`` are the roles a task may name (``None``: any, as with a default provider).
    """
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, budget in enumerate(budgets):
        where = f"budgets[{index}]"
        if budget.name.startswith("tenant-"):
            kept = "names starting with tenant- are kept for the tenants' own budgets"
            problems.append((f"{where}.name", kept))
        elif budget.name in seen:
            problems.append((f"{where}.name", f'the budget name "{budget.name}" is used twice'))
        seen.add(budget.name)
        scope = budget.scope
        if scope.provider is not None and scope.provider not in providers:
            problems.append((f"{where}.scope.provider", _unknown("provider", scope.provider)))
        if scope.role is not None and roles is not None and scope.role not in roles:
            problems.append((f"{where}.scope.role", _unknown("role", scope.role)))
        if list(budget.alert_at) != sorted(set(budget.alert_at)):
            problems.append((f"{where}.alert_at", f"must rise: {list(budget.alert_at)}"))
    for tid, tenant in tenants.items():
        for role, chain in tenant.roles.items():
            where = f"tenants.{tid}.roles.{role}"
            if not chain:
                problems.append((where, "lists no provider"))
            problems += [
                (f"{where}[{i}]", _unknown("provider", pid))
                for i, pid in enumerate(chain)
                if pid not in providers
            ]
    return problems


def _unknown(kind: str, name: str) -> str:
    return f'unknown {kind} "{name}"'
