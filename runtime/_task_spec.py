"""What a caller asked for: one task's spec, as the board hands it to the router.

A `TaskSpec` is a frozen value: the role, the conversation, tuning, the tools the model
may call and the schema its answer must match, the deadline, and for a streaming task
the `StreamSink` its text goes to; an `EmbedSpec` for an embeddings task.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from uuid_utils import uuid7

from runtime._chat import Message, Progress, Tuning
from runtime._record import record
from runtime._structured import Schema
from runtime._tools import Tool, ToolCallDelta


def new_task_id() -> str:
    """Return a new task id: a UUIDv7 as 32 hex digits, in the order tasks were made.

    Time-ordered ids keep the metrics store's keys growing at one end of its indexes, so
    storing a task costs the same with a million rows as with none; with random (v4)
    ids each insert lands on a page of its own, and the cost grew fourfold by 300,000
    tasks (``python bench/bench_metrics.py``, "Writes as the store grows").
    """
    return uuid7().hex


@record
class TaskSpec:
    """What a caller asked for."""

    task_id: str
    role: str
    messages: tuple[Message, ...]
    system: str | None
    tuning: Tuning
    deadline_s: float | None
    workflow_id: str | None
    submitted_at: float
    """Monotonic time of the call."""
    on_progress: Callable[[Progress], object] | None = None
    """Called on the router's thread at each step; must return at once and never raise."""
    sink: StreamSink | None = None
    """Where streamed text goes, for `Callboard.stream`."""
    on_broken: str = "raise"
    """When a stream breaks after its first text: ``"raise"`` or ``"restart"`` elsewhere."""
    embed: EmbedSpec | None = None
    """Set for an embeddings task (then ``messages`` is empty)."""
    tools: tuple[Tool, ...] = ()
    """The tools the model may call."""
    tool_choice: str | None = None
    """``auto``, ``none``, ``required`` or a tool's name (``None``: the provider's default)."""
    output: Schema | None = None
    """The schema the answer must match (structured output)."""
    tags: tuple[str, ...] = ()
    """Labels the caller gives the task, for routing rules."""
    tenant: str | None = None
    """Whose task it is, for routing rules, budgets and metrics (``None``: nobody's)."""
    session: str | None = None
    """A conversation's key: tasks of one session stay on one provider while it serves."""
    traceparent: str | None = None
    """The caller's span as a W3C ``traceparent`` value (set only when OpenTelemetry is on)."""
    provider: str | None = None
    """The one provider the task may use (pinned): the role's chain and strategy are skipped."""
    model: str | None = None
    """The model the pinned provider is asked for, over its configured one."""
    request_id: str | None = None
    """The caller's id for the request (the gateway's ``x-request-id``), for the audit log."""


_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def is_traceparent(value: str) -> bool:
    """Whether ``value`` is a W3C ``traceparent`` of version 00 with real trace and span ids."""
    return _TRACEPARENT.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class EmbedSpec:
    """What an embeddings task asks for."""

    texts: tuple[str, ...]
    dimensions: int | None = None
    input_type: str | None = None


class ReplyTo(Protocol):
    """Where the router puts a task's reply, or its error, once (from the router's thread).

    A `concurrent.futures.Future` is one; an asyncio caller's is a `LoopReply`, which hands
    replies to its event loop in batches.
    """

    def set_result(self, result: Any) -> None:
        """Take the reply."""

    def set_exception(self, exception: BaseException | None) -> None:
        """Take the error instead."""


class StreamSink(Protocol):
    """Receives a streaming task's text as it arrives, and the news of a restart."""

    def delta(self, provider: str, text: str) -> None:
        """Take a piece of text from ``provider`` (called on the I/O thread)."""

    def tool_delta(self, provider: str, delta: ToolCallDelta) -> None:
        """Take a piece of a tool call from ``provider`` (called on the I/O thread)."""

    def restart(self, provider: str, reason: str) -> None:
        """Void the text so far: the task goes on with ``provider`` (router thread)."""
