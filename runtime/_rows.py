"""The records of what calls did: one row per attempt, one per task.

The router builds them once; the same values become the audit log's ``attempt`` and
``task_finished`` lines and the metrics store's rows, so the store can be rebuilt from
the audit log exactly (`from_audit`). Times are Unix seconds rounded to microseconds,
which survive the trip through the audit log's ISO timestamps unchanged; costs are fixed
when the call ends, at the prices of the config the task started with.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Self

from runtime._record import record


def wall_time(seconds: float) -> float:
    """Round a Unix time to microseconds, as every row stores it."""
    return round(seconds, 6)


def iso(seconds: float, timespec: str = "microseconds") -> str:
    """Format a Unix time as ISO 8601 in UTC, ``Z``-suffixed (as the audit log writes it).

    Microseconds (every audit line's ``ts``) are rounded as `datetime` rounds them (half
    to even), onto the formatted second, which is kept from the last call.
    """
    global _last_second  # noqa: PLW0603 - a one-entry cache, replaced whole
    if timespec != "microseconds" or not 0 <= seconds < _YEAR_10000:
        text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec=timespec)
        return text.replace("+00:00", "Z")
    fraction, whole = math.modf(seconds)
    micros = round(fraction * 1e6)
    second = int(whole)
    if micros >= _MICROS:
        second, micros = second + 1, micros - _MICROS
    cached_second, prefix = _last_second
    if cached_second != second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = (second, prefix)
    return f"{prefix}.{micros:06d}Z"


_MICROS = 1_000_000
_YEAR_10000 = 253402300800
_last_second: tuple[int, str] = (-1, "")


def from_iso(text: str) -> float:
    """Parse an audit-log timestamp back into the Unix time it was made from."""
    return wall_time(datetime.fromisoformat(text).timestamp())


@record
class AttemptRow:
    """One attempt at one provider."""

    ts: float
    """When the attempt ended."""
    task_id: str
    workflow_id: str | None
    role: str
    attempt: int
    """1 for the task's first attempt, 2 for the next..."""
    provider: str
    model: str
    outcome: str
    """``"ok"`` or the error kind."""
    status: int | None
    latency_ms: float
    ttft_ms: float | None
    """Time to the first text of a streamed answer."""
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    fallback: bool
    """Whether this provider was not the first choice of the role."""
    cost_usd: float | None = None
    """At the prices in force when the call was made; ``None`` when the model has none."""
    message: str = ""
    tenant: str | None = None
    """Whose task it was (``ask(..., tenant=)``), for budgets read back at start."""

    def audit_fields(self) -> dict[str, Any]:
        """Return the fields of the audit ``attempt`` line."""
        values = _flat(self)
        values["ts"] = iso(self.ts)
        values["error_kind"] = None if self.outcome == "ok" else self.outcome
        return values

    @classmethod
    def from_audit(cls, line: dict[str, Any]) -> Self:
        """Rebuild the row from its audit ``attempt`` line."""
        return cls(**_known(cls, line), ts=from_iso(line["ts"]))


@record
class TaskRow:
    """One task, as it ended."""

    ts: float
    """When the task ended."""
    task_id: str
    workflow_id: str | None
    role: str
    outcome: str
    """``"ok"``, ``"failed"``, ``"deadline"`` or ``"cancelled"``."""
    provider: str | None
    """Who answered (``None`` when nobody did)."""
    model: str | None
    attempts: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    latency_ms: float
    fallback: bool
    """Whether the answer came from a provider other than the role's first choice."""
    cost_usd: float | None = None
    """The known costs of the task's attempts (``None`` when none had a price)."""
    error: str | None = None

    def audit_fields(self) -> dict[str, Any]:
        """Return the fields of the audit ``task_finished`` line."""
        values = _flat(self)
        values["ts"] = iso(self.ts)
        return values

    @classmethod
    def from_audit(cls, line: dict[str, Any]) -> Self:
        """Rebuild the row from its audit ``task_finished`` line."""
        return cls(**_known(cls, line), ts=from_iso(line["ts"]))


def _flat(row: AttemptRow | TaskRow) -> dict[str, Any]:
    """Return a row's fields by name (every field is a plain value: no copy needed)."""
    names, values = _READERS[type(row)]
    return dict(zip(names, values(row), strict=True))


def _reader(kind: type) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    names = tuple(f.name for f in fields(kind))
    return names, operator.attrgetter(*names)


_READERS = {kind: _reader(kind) for kind in (AttemptRow, TaskRow)}
"""Each row type's field names, and one getter of all its values at once."""


def _known(cls: type, line: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)} - {"ts"}
    return {k: v for k, v in line.items() if k in names}


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """Router → metrics: one task ended; its row and the rows of its attempts."""

    task: TaskRow
    attempts: tuple[AttemptRow, ...]
    context: TaskContext | None = None
    """What traces need beyond the rows (``None``: not known, as from an audit log)."""


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What a task asked for, as traces show it: no prompt text."""

    operation: str
    """``"chat"`` or ``"embeddings"``."""
    streamed: bool
    temperature: float | None
    max_tokens: int | None
    chain: tuple[str, ...]
    tenant: str | None
    traceparent: str | None
    health_changes: tuple[tuple[float, str, str], ...] = ()
    """Its providers' changes of standing while it ran: (wall time, provider, state)."""
    finish_reason: str | None = None
    """Why the answering model stopped (``stop``, ``length``, ``tool_calls``...)."""
