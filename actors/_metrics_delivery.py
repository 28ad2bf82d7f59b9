"""How the router's ended tasks reach the metrics actor: batched, resent, or counted as lost.

The router owns one `MetricsDelivery`. Each ended task's rows wait in an `EventOutbox`
until a batch fills or its timer fires, go to the metrics actor as `TaskEvents`, and are
kept until the actor answers `EventsStored`. A metrics actor that crashed and was
restarted gets every batch its predecessor did not store; one that is gone for good
leaves the rows to the audit log, and the loss is recorded there (``metrics_rows_lost``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import pykka

from actors._child import tell_quietly
from actors._messages import (
    BudgetLevels,
    FlushEvents,
    GetExposition,
    GetStats,
    SyncStore,
    TaskEvents,
)
from runtime._audit import AuditWriter
from runtime._metrics.outbox import EVENT_BATCH_S, EventOutbox
from runtime._metrics.stats import Stats
from runtime._policy.budget_ledger import BudgetStatus
from runtime._policy.task import TaskState
from runtime._rows import TaskContext, TaskEvent, TaskRow
from runtime._transport.io_loop import IoLoop

Forwarded = GetStats | SyncStore | GetExposition
"""Questions for the metrics actor that the router passes on after the rows it holds."""


class MetricsDelivery:
    """The router's rows on their way to the metrics actor (used on the router's thread only).

    ``owner`` is the router: the metrics actor answers it, and its batch timer tells it.
    ``budget_levels`` returns the budgets' standing to send with each batch (``None``
    when no budget is configured).
    """

    def __init__(
        self,
        metrics: pykka.ActorRef[Any] | None,
        owner: pykka.ActorRef[Any],
        io: IoLoop,
        audit: AuditWriter,
        budget_levels: Callable[[], tuple[BudgetStatus, ...] | None],
    ) -> None:
        self._metrics = metrics
        self._owner = owner
        self._io = io
        self._audit = audit
        self._budget_levels = budget_levels
        self._outbox = EventOutbox()
        self._failed = False
        self._unrecorded = 0
        """Tasks that ended after the metrics actor failed for good."""

    def add(self, event: TaskEvent) -> None:
        """Hold an ended task's rows; send the batch once it is full, or set its timer."""
        if self._failed:
            self._unrecorded += 1
            return
        if self._outbox.add(event):
            self.send()
        elif self._outbox.set_timer():
            self._io.call_later(EVENT_BATCH_S, tell_quietly, self._owner, FlushEvents())

    def send(self) -> None:
        """Send the held tasks as a batch; it is kept until the metrics actor stores it."""
        batch = self._outbox.take()
        if batch is not None and self._metrics is not None:
            tell_quietly(self._metrics, TaskEvents(batch.number, batch.events, self._owner))
            levels = self._budget_levels()
            if levels is not None:
                tell_quietly(self._metrics, BudgetLevels(levels))

    def timer_fired(self) -> None:
        """The batch timer: send what is held."""
        self._outbox.timer_fired()
        self.send()

    def stored(self, numbers: tuple[int, ...]) -> None:
        """The metrics actor stored these batches: forget them."""
        self._outbox.stored(numbers)

    def forward(self, message: Forwarded) -> None:
        """Pass on the tasks that ended, then the caller's question, in that order.

        With no metrics actor to ask, the caller gets empty statistics (or ``None``).
        """
        self.send()
        if self._metrics is not None:
            try:
                self._metrics.tell(message)
            except pykka.ActorDeadError:
                pass
            else:
                return
        answer = Stats(providers={}, roles={}) if isinstance(message, GetStats) else None
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            message.reply.set_result(answer)  # type: ignore[arg-type]

    def replaced(self, ref: pykka.ActorRef[Any] | None) -> None:
        """Send a new metrics actor every batch its predecessor did not store.

        ``None``: the metrics actor is gone for good; what it did not store is lost to
        the store (the audit log has it).
        """
        self._metrics = ref
        if ref is None:
            self._failed = True
            self.rows_lost(self._outbox.drop_all())
            return
        resent = self._outbox.unacknowledged()
        for batch in resent:
            tell_quietly(ref, TaskEvents(batch.number, batch.events, self._owner))
        if resent:
            tasks = sum(len(batch.events) for batch in resent)
            self._audit.event("metrics_rows_resent", tasks=tasks, batches=len(resent))

    def release(self) -> None:
        """The router stops: send what is held; record what can no longer be stored."""
        self.send()
        lost, self._unrecorded = self._unrecorded, 0
        if self._metrics is None or not self._metrics.is_alive():
            lost += self._outbox.drop_all()
        self.rows_lost(lost)

    def rows_lost(self, tasks: int) -> None:
        """Record in the audit log that ``tasks`` tasks' rows never reached the store."""
        if tasks:
            self._audit.event(
                "metrics_rows_lost",
                tasks=tasks,
                reason="the metrics actor stopped before storing them; they are in this "
                "audit log (callboard metrics rebuild --from-audit restores them)",
            )


def task_context(
    task: TaskState, row: TaskRow, health_log: Iterable[tuple[float, str, str]]
) -> TaskContext:
    """Return what a task's trace shows beyond its rows (never its prompt).

    Its providers' changes of standing (a breaker opening...) while it ran are among them.
    """
    spec = task.spec
    began = row.ts - row.latency_ms / 1000
    by_slot = {task.routing.slots[p]: p for p in task.chain}
    changes = tuple(
        (wall, by_slot[slot], state)
        for wall, slot, state in health_log
        if slot in by_slot and began <= wall <= row.ts
    )
    return TaskContext(
        operation="chat" if spec.embed is None else "embeddings",
        streamed=spec.sink is not None,
        temperature=spec.tuning.temperature,
        max_tokens=spec.tuning.max_tokens,
        chain=task.chain,
        tenant=spec.tenant,
        traceparent=spec.traceparent,
        health_changes=changes,
        finish_reason=task.finish_reason,
    )
