"""The metrics actor: the only writer of live statistics."""

from __future__ import annotations

from typing import Any

import pykka

from actors._child import SupervisedActor, unexpected
from runtime._messages import AttemptEvent, GetStats, TaskEvent
from runtime._stats import StatsBook


class MetricsActor(SupervisedActor):
    """Folds every attempt and task event into a `StatsBook`; answers `GetStats`."""

    def __init__(self, supervisor: pykka.ActorRef[Any] | None = None) -> None:
        super().__init__("metrics", supervisor)
        self._book = StatsBook()

    def on_receive(self, message: object) -> object:
        """Handle one message."""
        if isinstance(message, AttemptEvent):
            self._book.add_attempt(message)
        elif isinstance(message, TaskEvent):
            self._book.add_task(message)
        elif isinstance(message, GetStats):
            return self._book.snapshot()
        else:
            raise unexpected(self, message)
        return None
