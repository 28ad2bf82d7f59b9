"""What every actor of callboard shares: one dispatch style, and telling its supervisor it died.

Every actor handles its messages through a table from message type to handler
(`DispatchingActor.handlers`); a message of any other type crashes it, as a bug should.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pykka
from pykka._actor import ActorInbox  # the type of the hook below (pykka does not export it)

from actors._messages import ChildDied

Handler = Callable[[Any], object]
"""Handles one message; what it returns answers an ``ask``."""


class DispatchingActor(pykka.ThreadingActor):
    """A threading actor that hands each message to the handler its type names in `handlers`.

    Its inbox is a `queue.SimpleQueue`. Its thread is a daemon thread: Python joins every
    other thread before it runs the ``atexit`` hooks, so actors on ordinary threads would
    keep a program that never closed its board from ever reaching the hook that closes it.
    The board's exit hook stops every actor in order, which writes every record, before
    the process ends.
    """

    use_daemon_thread = True

    def __init__(self) -> None:
        super().__init__()
        self.handlers: dict[type, Handler] = {}

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        """The inbox: a `queue.SimpleQueue` (C), a third cheaper a hand-off than pykka's Queue.

        pykka needs only ``put``, ``get`` and ``empty``, which it has.
        """
        return queue.SimpleQueue()

    def on_receive(self, message: object) -> object:
        """Handle one message by its type."""
        return self.handle(message)

    def handle(self, message: object) -> object:
        """Run the handler of ``message``'s type (an unknown type is a bug: it raises)."""
        handler = self.handlers.get(type(message))
        if handler is None:
            raise unexpected(self, message)
        return handler(message)


class SupervisedActor(DispatchingActor):
    """A dispatching actor that reports its crash to its supervisor as `ChildDied`.

    Pykka calls `on_failure` (not `on_stop`) when a told message raises; subclasses
    release what they hold in `release` and call it from both hooks.
    """

    def __init__(self, child_id: str, supervisor: pykka.ActorRef[Any] | None) -> None:
        super().__init__()
        self.child_id = child_id
        self.supervisor = supervisor

    def on_receive(self, message: object) -> object:
        """Handle one message, then flush buffered output once the inbox is drained."""
        result = self.handle(message)
        if self.actor_inbox.empty():
            self.flush()
        return result

    def flush(self) -> None:
        """Write out what the actor buffered (its audit lines)."""

    def release(self, reason: str) -> None:
        """Give back what the actor holds; ``reason`` says why it stops."""

    def on_stop(self) -> None:
        """Release on a normal stop."""
        self.release("stopped")
        self.flush()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,  # noqa: ARG002 - pykka's hook signature
    ) -> None:
        """Release, then tell the supervisor this actor died and why."""
        reason = f"{exception_type.__name__ if exception_type else 'error'}: {exception_value}"
        try:
            self.release(f"crashed ({reason})")
            self.flush()
        finally:
            if self.supervisor is not None:
                tell_quietly(self.supervisor, ChildDied(self.child_id, reason))


def tell_quietly(ref: pykka.ActorRef[Any], message: object) -> None:
    """Tell ``ref`` a message; an actor that is gone misses it (its supervisor knows)."""
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)


def unexpected(actor: pykka.Actor, message: object) -> TypeError:
    """Return the error for a message an actor does not handle (it crashes the actor)."""
    return TypeError(f"{type(actor).__name__} cannot handle {type(message).__name__}")
