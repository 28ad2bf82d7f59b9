"""The metrics actor: the only writer of live statistics."""

from __future__ import annotations

from typing import Any

import pykka

from actors._child import SupervisedActor, unexpected
from runtime._messages import GetStats, TaskEvents
from runtime._stats import StatsBook


class MetricsActor(SupervisedActor):
    """Folds every task event into a `StatsBook`; answers `GetStats`."""

    def __init__(self, supervisor: pykka.ActorRef[Any] | None = None) -> None:
        super().__init__("metrics", supervisor)
        self._book = StatsBook()

    def handle(self, message: object) -> object:
        """Handle one message."""
        if isinstance(message, TaskEvents):
            for event in message.events:
                self._book.add_task(event)
        elif isinstance(message, GetStats):
            if not message.reply.done():
                message.reply.set_result(self._book.snapshot())
        else:
            raise unexpected(self, message)
        return None
