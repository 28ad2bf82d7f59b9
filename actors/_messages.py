"""The messages actors send each other: small frozen values, one class per kind.

```
caller ──Submit / CancelTask──▶ Router ──StartAttempt / CancelAttempt──▶ Provider
I/O loop ──IoDone──▶ Provider ──AttemptDone──▶ Router
I/O loop ──ContentStarted (hedged tasks)──▶ Router
Provider ──HealthChanged──▶ Router (and Supervisor, while unchecked)
timers ──Wake──▶ Router, Provider; HedgeDue──▶ Router
timers ──CheckDue──▶ Provider (unchecked) ──check──▶ I/O loop ──CheckDone──▶ Provider
Supervisor ──RouterIs──▶ Provider
shared store (I/O loop) ──LeaseDone / SharedHealth──▶ Provider
Router ──TaskEvents (batched) / GetStats──▶ Metrics
Supervisor ──ApplyRouting──▶ Router ──RetireSlots──▶ Supervisor ──Reloaded──▶ Provider
children ──ChildDied──▶ Supervisor ──ProviderReplaced / ProviderDown / MetricsReplaced──▶ Router
caller ──AwaitChild / Reconfigure / ListChildren──▶ Supervisor
timers ──FlushEvents──▶ Router ──TaskEvents (numbered)──▶ Metrics ──EventsStored──▶ Router
```
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime._chat import (
    ChatRequest,
    ChatResult,
    EmbedRequest,
    EmbedResult,
)
from runtime._errors import ProviderError
from runtime._record import record
from runtime._rows import TaskEvent
from runtime._task_spec import ReplyTo, StreamSink, TaskSpec

if TYPE_CHECKING:
    from pykka import ActorRef

    from runtime._config.schema import Config
    from runtime._metrics.stats import Stats
    from runtime._policy.budget_ledger import BudgetStatus
    from runtime._policy.hedging import ContentGate
    from runtime._policy.provider_table import ProviderHealth, Routing
    from runtime._policy.routing import Health
    from runtime._transport.credentials import CheckFailure


@dataclass(frozen=True, slots=True)
class Submit:
    """Caller → router: run this task and resolve ``reply`` with its reply or an error."""

    task: TaskSpec
    reply: ReplyTo


@dataclass(frozen=True, slots=True)
class CancelTask:
    """Caller → router: the caller gave up on this task (``reason`` goes in its record)."""

    task_id: str
    reason: str = "the caller cancelled it"


@record
class StartAttempt:
    """Router → provider: make one attempt, report to ``reply_to`` with `AttemptDone`."""

    call_id: int
    task_id: str
    role: str
    request: ChatRequest | EmbedRequest
    deadline: float
    """Monotonic time by which the attempt must be over: the task's deadline, less the
    time kept for the next provider (see ``deadline_why``)."""
    first_byte_s: float
    request_s: float
    reply_to: ActorRef[Any]
    idle_s: float | None = None
    sink: StreamSink | None = None
    """Takes the attempt's streamed text (`StreamSink.delta`, on the I/O thread)."""
    first_token_s: float | None = None
    min_chars_per_s: float = 0.0
    rate_window_s: float = 10.0
    deadline_why: str = "the task's deadline"
    """What set ``deadline``, for the message of a timeout it causes."""
    gate: ContentGate | None = None
    """Shared by the attempts of a hedged task: the first to send content claims it."""
    whole_bound_s: float | None = None
    """Ask for a whole answer, not a stream, and bound it by this (``first_byte_s``): the
    provider's last answers were all fast (see `runtime._policy.answer_mode`)."""
    whole_why: str = ""
    """Why it was asked for whole, for the message of a timeout it causes."""


@dataclass(frozen=True, slots=True)
class CancelAttempt:
    """Router → provider: drop this attempt, queued or in flight, saying ``reason``.

    The provider answers with an `AttemptDone` of kind ``cancelled`` (unless the attempt
    ended first and its `AttemptDone` is already on its way).
    """

    call_id: int
    reason: str = "its task ended"


@dataclass(frozen=True, slots=True)
class ContentStarted:
    """I/O loop → router: ``call_id`` claimed its hedged task's content (it won the race)."""

    task_id: str
    call_id: int


@dataclass(frozen=True, slots=True)
class HedgeDue:
    """Timer → router: if ``call_id`` has sent no content yet, start the next provider too."""

    task_id: str
    call_id: int


@record
class AttemptDone:
    """Provider → router: how an attempt ended."""

    call_id: int
    task_id: str
    provider: str
    result: ChatResult | EmbedResult | None
    error: ProviderError | None
    latency_ms: float


@dataclass(frozen=True, slots=True)
class IoDone:
    """I/O loop → provider: an attempt's HTTP exchange is over (or was cancelled)."""

    call_id: int
    result: ChatResult | EmbedResult | None
    error: ProviderError | None
    latency_ms: float


@dataclass(frozen=True, slots=True)
class HealthChanged:
    """Provider → router: the provider's availability changed.

    Also provider → supervisor when it becomes or stops being unchecked, so that a
    restart after a crash starts the provider as it stood.
    """

    slot: str
    health: Health


@dataclass(frozen=True, slots=True)
class CheckDue:
    """Timer → provider: check the unchecked provider again (``token``: which timer)."""

    token: int


@dataclass(frozen=True, slots=True)
class CheckDone:
    """I/O loop → provider: a background check ended; ``error`` is ``None`` if it passed."""

    token: int
    error: ProviderError | None


@dataclass(frozen=True, slots=True)
class LeaseDone:
    """The shared store's answer to a provider's lease ask (``grant`` ``None``: it failed)."""

    asked_at: float
    grant: Any
    """A `runtime._policy.leases.Grant`, or ``None``."""
    error: str = ""


@dataclass(frozen=True, slots=True)
class TrialAnswer:
    """The shared store's answer to a trial token ask (``won`` ``None``: it failed)."""

    won: bool | None


@dataclass(frozen=True, slots=True)
class SharedHealth:
    """Another process's note about this provider's health, and when it arrived."""

    note: Any
    """A `runtime._transport.shared_store.HealthNote`."""
    arrived: float


@dataclass(frozen=True, slots=True)
class RouterIs:
    """Supervisor → provider: tell ``ref`` of every health change (it just started)."""

    ref: ActorRef[Any]


@dataclass(frozen=True, slots=True)
class Wake:
    """A timer fired; ``token`` tells which wait it ends (stale tokens are ignored)."""

    key: str
    token: int


@dataclass(frozen=True, slots=True)
class ApplyRouting:
    """Supervisor → router: new tasks use ``routing``; ``refs`` adds the actors it needs.

    ``health`` holds the new slots that start unchecked (by slot).
    """

    routing: Routing
    refs: Mapping[str, ActorRef[Any]]
    health: Mapping[str, Health]


@dataclass(frozen=True, slots=True)
class Reloaded:
    """Supervisor → provider: a reload kept this provider as it was.

    A provider taken out of rotation mid-run (a key rejected, a quota spent) comes back:
    the reload is how the user says it was seen to.
    """


@dataclass(frozen=True, slots=True)
class ProviderReplaced:
    """Supervisor → router: the actor of ``slot`` was restarted as ``ref``.

    ``health`` is how it starts, when not ready (still unchecked).
    """

    slot: str
    ref: ActorRef[Any]
    health: Health | None = None


@dataclass(frozen=True, slots=True)
class ProviderDown:
    """Supervisor → router: the actor of ``slot`` died; ``failed`` if it will not return."""

    slot: str
    reason: str
    failed: bool


@dataclass(frozen=True, slots=True)
class MetricsReplaced:
    """Supervisor → router: the metrics actor is now ``ref`` (``None``: gone for good)."""

    ref: ActorRef[Any] | None


@dataclass(frozen=True, slots=True)
class RetireSlots:
    """Router → supervisor: no task uses these provider actors any more; stop them."""

    slots: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChildDied:
    """Child → supervisor: the child crashed with ``reason``."""

    child: str
    reason: str


@dataclass(frozen=True, slots=True)
class RestartChild:
    """Timer → supervisor: restart ``child`` now (its backoff is over)."""

    child: str


@dataclass(frozen=True, slots=True)
class TaskEvents:
    """Router → metrics: batch ``number`` of the tasks that ended.

    The metrics actor tells ``reply_to`` `EventsStored` once the batch is in the store (or
    its loss is recorded); until then the router keeps it, to send again after a crash.
    """

    number: int
    events: tuple[TaskEvent, ...]
    reply_to: ActorRef[Any] | None = None


@dataclass(frozen=True, slots=True)
class EventsStored:
    """Metrics → router: these batches are written (or their loss is recorded)."""

    numbers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FlushEvents:
    """Timer → router: pass the tasks that ended on to the metrics actor now."""


@dataclass(frozen=True, slots=True)
class GetStats:
    """Caller → router → metrics: resolve ``reply`` with a `Stats` snapshot.

    Going through the router first means the snapshot counts every task whose reply
    was delivered before the caller asked.
    """

    reply: concurrent.futures.Future[Stats]


@dataclass(frozen=True, slots=True)
class GetExposition:
    """Caller → router → metrics: resolve ``reply`` with the Prometheus exposition text.

    ``None`` when the metrics actor keeps no Prometheus registry (see `MetricsActorSettings`).
    """

    reply: concurrent.futures.Future[bytes | None]


@dataclass(frozen=True, slots=True)
class GetHealth:
    """Caller → router: resolve ``reply`` with each provider's standing, by provider id."""

    reply: concurrent.futures.Future[dict[str, ProviderHealth]]


@dataclass(frozen=True, slots=True)
class BudgetLevels:
    """Router → metrics: every budget account as it stands, for the Prometheus gauges."""

    statuses: tuple[BudgetStatus, ...]


@dataclass(frozen=True, slots=True)
class GetBudgets:
    """Caller → router: resolve ``reply`` with every budget account as it stands."""

    reply: concurrent.futures.Future[list[BudgetStatus]]


@dataclass(frozen=True, slots=True)
class SyncStore:
    """Caller → router → metrics: write every finished task to the store, then resolve.

    ``reply`` gets the store's file or URL, or ``None`` when there is no store or it cannot
    be written now.
    """

    reply: concurrent.futures.Future[Path | str | None]


@dataclass(frozen=True, slots=True)
class AwaitChild:
    """Caller → supervisor: resolve ``reply`` with ``child``'s ref once it runs.

    With ``replacing``, wait for a ref other than that one (the child's restart).
    """

    child: str
    reply: concurrent.futures.Future[ActorRef[Any]]
    replacing: ActorRef[Any] | None = None


@dataclass(frozen=True, slots=True)
class Reconfigure:
    """Caller → supervisor (ask): apply a new validated config to tasks started after.

    ``unchecked`` maps the new or changed providers whose check found them in trouble
    to that failure: they start out of rotation, checked again in the background.
    """

    config: Config
    unchecked: Mapping[str, CheckFailure]


@dataclass(frozen=True, slots=True)
class ListChildren:
    """Caller → supervisor (ask): return the live children in the order to stop them."""
