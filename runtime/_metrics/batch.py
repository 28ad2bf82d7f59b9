"""Tasks that ended, held by the router until they are passed to the metrics actor.

Plain code with the time passed in. Metrics are live aggregates, not a record (the audit
log is), so batching them spares the metrics actor a wake-up per task: a batch goes when
it holds `MAX_EVENT_BATCH` tasks, when `EVENT_BATCH_S` has passed since the last one, or
whenever the router must pass everything on (a stats query, a store sync, a stop).
"""

from __future__ import annotations

from runtime._rows import TaskEvent

MAX_EVENT_BATCH = 256
"""Tasks that ended are passed to the metrics actor in batches of at most this many..."""
EVENT_BATCH_S = 1.0
"""...and at least once a second while the router is busy."""


class EventBatch:
    """The tasks that ended since the last batch was sent."""

    def __init__(self, now: float) -> None:
        self._events: list[TaskEvent] = []
        self._sent_at = now

    def add(self, event: TaskEvent) -> bool:
        """Hold ``event``; return whether the batch is full and must go now."""
        self._events.append(event)
        return len(self._events) >= MAX_EVENT_BATCH

    def due(self, now: float) -> bool:
        """Whether a second has passed since the last batch went."""
        return now - self._sent_at >= EVENT_BATCH_S

    def take(self, now: float) -> tuple[TaskEvent, ...]:
        """Return the held events (maybe none) and start a new batch at ``now``."""
        events = tuple(self._events)
        self._events.clear()
        self._sent_at = now
        return events
