"""A board's budgets ledger, with the spend of the current periods read back from the store.

A board that starts mid-period (a restart, a second run of the same program) counts what
was already spent in the period, so a limit holds across restarts. ``callboard budgets``
reads the same figures without a board.
"""

from __future__ import annotations

import time
from pathlib import Path

from runtime._config.schema import Config
from runtime._errors import StoreError
from runtime._metrics.store_open import open_store
from runtime._policy.budget_ledger import BudgetLedger, LocalLedger, spend_by_account


def restored_ledger(
    config: Config, now: float | None = None, ledger: BudgetLedger | None = None
) -> tuple[BudgetLedger, str | None]:
    """Return a ledger of ``config``'s budgets holding the spend its store recorded.

    ``ledger`` is the one to restore into (default: a new `LocalLedger`; a fleet's
    `LeasedLedger` counts what it reads only for accounts Redis has not seen). The second
    value says why nothing could be read back (``None``: read, or nothing to read: no
    budgets, no store yet).
    """
    ledger = LocalLedger(config.budget_rules) if ledger is None else ledger
    where = config.metrics_store()
    if not config.budget_rules or where is None or (isinstance(where, Path) and not where.exists()):
        return ledger, None
    moment = time.time() if now is None else now
    try:
        store = open_store(where, readonly=True)
        try:
            spent = spend_by_account(config.budget_rules, store.spend_since, moment)
        finally:
            store.close()
    except StoreError as exc:
        return ledger, str(exc)
    ledger.restore(spent, moment)
    return ledger, None
