"""A fleet's budgets: a `LeasedLedger` whose asks go to the shared store, on the I/O loop.

Each ask is one script on Redis; its answer (or its failure) is handed back to the ledger
from the I/O loop, and a timer reports spend and gives back idle leases every lease. A
fallback to a local share, and the end of one, are written to the audit log
(``budget_shared_lost`` / ``budget_shared_back``), as the providers' limits do.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

from runtime._audit import AuditLog
from runtime._config.schema import Config
from runtime._policy.leased_ledger import BudgetAsk, BudgetGrant, LeasedLedger
from runtime._transport.io_loop import IoLoop
from runtime._transport.shared_store import RedisStore


class SharedBudgets:
    """Connects a `LeasedLedger` to Redis and keeps its leases moving."""

    def __init__(
        self,
        config: Config,
        store: RedisStore,
        io: IoLoop,
        audit: AuditLog,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._io = io
        self._audit = audit
        self._wall = wall
        self._lease_s = config.shared.lease_s
        self.ledger = LeasedLedger(config.budget_rules, self._send, self._lease_s)
        self._io.call_later(self._lease_s, self._tick)

    def _send(self, ask: BudgetAsk) -> None:
        future = self._store.budget(ask)
        future.add_done_callback(lambda done: self._answered(ask, done))

    def _answered(self, ask: BudgetAsk, done: concurrent.futures.Future[BudgetGrant]) -> None:
        now = self._wall()
        try:
            grant = done.result()
        except Exception as error:  # noqa: BLE001 - SharedStoreUnavailableError, or cancelled
            if self.ledger.failed(ask, now):
                self._audit.event(
                    "budget_shared_lost", budget=ask.key[0], reason=str(error) or "cancelled"
                )
            return
        if self.ledger.granted(ask, grant, now):
            self._audit.event("budget_shared_back", budget=ask.key[0])

    def _tick(self) -> None:
        self.ledger.flush(self._wall())
        self._io.call_later(self._lease_s, self._tick)
