"""The router's side of the budgets ledger: a call's worst case, its hold, its settlement.

The router asks `BudgetGate.reserve` before an attempt leaves and `BudgetGate.settle` when
it ends, with the cost its row gives: the real cost; nothing for a failure nobody billed;
the whole hold when the cost is unknown (a call cancelled mid-stream may have been billed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from runtime._chat import ChatRequest, EmbedRequest
from runtime._config.budgets import BudgetSettings
from runtime._config.prices import PriceTable
from runtime._errors import BudgetExceededError
from runtime._policy.budget_ledger import (
    BudgetAlert,
    BudgetLedger,
    BudgetStatus,
    CallScope,
    Hold,
    Refusal,
)
from runtime._task_spec import TaskSpec

UNSET_MAX_TOKENS = 4096
"""The completion tokens reserved for a call that sets no ``max_tokens``."""


def worst_case_usd(
    prices: PriceTable, request: ChatRequest | EmbedRequest, provider_type: str | None = None
) -> float | None:
    """Return the most ``request`` can cost: its prompt, and all of ``max_tokens``.

    Every input token is priced as uncached input, the dearest kind but a cache write.
    ``None`` when its model has no price (as ``provider_type`` serves it: local types are
    free, Azure and Bedrock names map to their models).
    """
    price = prices.price(request.model, provider_type)
    if price is None:
        return None
    if isinstance(request, EmbedRequest):
        return request.estimated_tokens() * price.input / 1_000_000
    output = request.tuning.max_tokens or UNSET_MAX_TOKENS
    return (request.estimated_prompt_tokens() * price.input + output * price.output) / 1_000_000


class BudgetGate:
    """Holds each attempt's reservation, by call id, until the attempt ends."""

    def __init__(self, ledger: BudgetLedger, wall: Callable[[], float]) -> None:
        self._ledger = ledger
        self._wall = wall
        self._holds: dict[int, Hold] = {}
        self._active = True

    @property
    def active(self) -> bool:
        """Whether any budget is configured."""
        return self._active

    def apply(self, rules: Sequence[BudgetSettings]) -> None:
        """Take the budgets of a new config (none: reserve nothing, at no cost)."""
        self._ledger.apply(rules)
        self._active = bool(rules)

    def reserve(
        self,
        spec: TaskSpec,
        provider: str,
        request: ChatRequest | EmbedRequest,
        prices: PriceTable,
        provider_type: str | None = None,
    ) -> Hold | Refusal | None:
        """Reserve the call's worst case (``None``: no budget is configured)."""
        if not self._active:
            return None
        scope = CallScope(spec.role, provider, request.model, spec.tenant, spec.workflow_id)
        return self._ledger.reserve(
            scope, worst_case_usd(prices, request, provider_type), self._wall()
        )

    def held(self, call_id: int, hold: Hold | None) -> None:
        """Keep ``hold`` until call ``call_id`` ends."""
        if hold is not None and hold.accounts:
            self._holds[call_id] = hold

    def settle(self, call_id: int, cost_usd: float | None) -> list[BudgetAlert]:
        """Settle call ``call_id`` at ``cost_usd`` (``None``: unknown, so the whole hold)."""
        hold = self._holds.pop(call_id, None)
        if hold is None:
            return []
        cost = hold.amount if cost_usd is None else cost_usd
        return self._ledger.settle(hold, cost, self._wall())

    def refused(self, refusal: Refusal) -> list[BudgetAlert]:
        """Note a refusal; return the alerts it brings."""
        return self._ledger.refused(refusal, self._wall())

    def statuses(self) -> list[BudgetStatus]:
        """Every budget account as it stands now."""
        return self._ledger.statuses(self._wall())


def refused_error(
    refusal: Refusal, spec: TaskSpec, model: str, attempts: Sequence[object]
) -> BudgetExceededError:
    """Build the error of a task a budget turned away."""
    return BudgetExceededError(
        task_id=spec.task_id,
        role=spec.role,
        reason=refusal.reason(model),
        budget=refusal.budget.name,
        spent_usd=refusal.spent,
        reserved_usd=refusal.reserved,
        limit_usd=refusal.budget.limit_usd,
        resets_at=refusal.resets_at,
        attempts=attempts,
    )
