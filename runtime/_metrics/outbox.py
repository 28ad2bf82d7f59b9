"""The rows of tasks that ended, kept by the router until the metrics store has them.

Plain code. Metrics are batched so that the metrics actor wakes once per batch, not per
task: a batch goes when it holds `MAX_EVENT_BATCH` tasks, when its timer fires
(`EVENT_BATCH_S` after the first task of it ended: one timer per batch, whether the board
is busy or idle), or when the router must pass everything on (a stats query, a store
sync, a stop). Each batch is numbered and kept until the metrics actor acknowledges it,
once written or once its loss is recorded; a batch told to a metrics actor that crashed
is sent again to the one that replaces it (the store ignores rows it already holds).
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime._rows import TaskEvent

MAX_EVENT_BATCH = 256
"""Tasks that ended are passed to the metrics actor in batches of at most this many..."""
EVENT_BATCH_S = 1.0
"""...and at most this long after the first of them ended."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows passed on at once; `number` is what the metrics actor acknowledges."""

    number: int
    events: tuple[TaskEvent, ...]


class EventOutbox:
    """The tasks that ended and are not yet in the store, held or sent."""

    def __init__(self) -> None:
        self._held: list[TaskEvent] = []
        self._sent: dict[int, Batch] = {}
        self._last_number = 0
        self._timer_set = False

    def add(self, event: TaskEvent) -> bool:
        """Hold ``event``; return whether the batch is full and must go now."""
        self._held.append(event)
        return len(self._held) >= MAX_EVENT_BATCH

    def set_timer(self) -> bool:
        """Return whether a flush timer must be set for the held tasks (none is running)."""
        if self._timer_set or not self._held:
            return False
        self._timer_set = True
        return True

    def timer_fired(self) -> None:
        """Note that the flush timer went off: the next task held sets a new one."""
        self._timer_set = False

    def take(self) -> Batch | None:
        """Number the held tasks as a batch, keep it until acknowledged, and return it."""
        if not self._held:
            return None
        self._last_number += 1
        batch = Batch(self._last_number, tuple(self._held))
        self._held.clear()
        self._sent[batch.number] = batch
        return batch

    def stored(self, numbers: tuple[int, ...]) -> None:
        """Forget the batches the metrics actor has written (or recorded as lost)."""
        for number in numbers:
            self._sent.pop(number, None)

    def unacknowledged(self) -> list[Batch]:
        """Return the batches sent but not acknowledged, oldest first."""
        return [self._sent[number] for number in sorted(self._sent)]

    def drop_all(self) -> int:
        """Forget every batch, held or sent; return how many tasks that was."""
        tasks = len(self._held) + sum(len(b.events) for b in self._sent.values())
        self._held.clear()
        self._sent.clear()
        return tasks
