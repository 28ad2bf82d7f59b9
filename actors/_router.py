"""The router actor: casts each task to its role's providers, retries and falls back.

It keeps every running task and drives it from `Submit` to one reply and one terminal
record. What it knows of its provider actors (which actor serves each provider, and their
health) is a `ProviderTable`; the tasks that ended wait in an `EventOutbox` until the
metrics actor has stored them. It never waits: it reacts to `AttemptDone` from the
providers, to `HealthChanged`, to its own timers (`Wake`, `FlushEvents`), to the metrics
actor's `EventsStored` and to the supervisor's news of actors.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import itertools
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import pykka

from actors._child import SupervisedActor, tell_quietly
from actors._messages import (
    ApplyRouting,
    AttemptDone,
    CancelAttempt,
    CancelTask,
    EventsStored,
    FlushEvents,
    GetHealth,
    GetStats,
    HealthChanged,
    MetricsReplaced,
    ProviderDown,
    ProviderReplaced,
    RetireSlots,
    StartAttempt,
    Submit,
    SyncStore,
    TaskEvents,
    Wake,
)
from runtime._audit import AuditLog
from runtime._chat import ChatResult, EmbedReply, EmbedResult, Progress, ProgressState, Reply
from runtime._errors import (
    DeadlineExceededError,
    ErrorKind,
    ProviderError,
    TaskCancelledError,
    TaskFailedError,
    UnknownRoleError,
)
from runtime._metrics.outbox import EVENT_BATCH_S, EventOutbox
from runtime._metrics.stats import Stats
from runtime._policy.provider_table import ProviderTable, Routing
from runtime._policy.routing import Dispatch, GiveUp, Health, next_step
from runtime._policy.task import TaskState, eligible_chain
from runtime._rows import TaskEvent, TaskRow, wall_time
from runtime._transport.io_loop import IoLoop


class RouterActor(SupervisedActor):
    """Drives every task from `Submit` to exactly one reply and one terminal record."""

    def __init__(
        self,
        *,
        routing: Routing,
        refs: Mapping[str, pykka.ActorRef[Any]],
        metrics: pykka.ActorRef[Any] | None,
        io: IoLoop,
        audit: AuditLog,
        supervisor: pykka.ActorRef[Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        wall: Callable[[], float] = time.time,
        health: Mapping[str, Health] | None = None,
    ) -> None:
        super().__init__("router", supervisor)
        self._providers = ProviderTable(routing, refs, health or {})
        self._metrics = metrics
        self._io = io
        self._audit = audit.writer()
        self._clock = clock
        self._random = rand
        self._wall = wall
        self._tasks: dict[str, TaskState] = {}
        self._call_ids = itertools.count(1)
        self._outbox = EventOutbox()
        self._metrics_failed = False
        self._unrecorded = 0
        """Tasks that ended after the metrics actor failed for good."""
        self.handlers = {
            AttemptDone: self._attempt_done,
            Submit: self._submit,
            Wake: self._wake,
            HealthChanged: self._health_changed,
            CancelTask: self._cancel,
            ProviderReplaced: self._provider_replaced,
            ProviderDown: self._provider_down,
            MetricsReplaced: self._metrics_replaced,
            EventsStored: self._events_stored,
            FlushEvents: self._flush_events,
            GetStats: self._forward_to_metrics,
            SyncStore: self._forward_to_metrics,
            ApplyRouting: self._apply,
            GetHealth: self._report_health,
        }

    # -- tasks -------------------------------------------------------------------------

    def _submit(self, message: Submit) -> None:
        spec, config = message.task, self._providers.routing.config
        chain = config.chain(spec.role)
        if chain is None:
            _settle(message.reply, error=UnknownRoleError(spec.role, sorted(config.roles)))
            return
        deadline = spec.submitted_at + (spec.deadline_s or config.timeouts.task_s)
        usable, skipped = eligible_chain(config, spec, chain)
        task = TaskState(spec, message.reply, self._providers.routing, usable, deadline)
        self._tasks[spec.task_id] = task
        self._audit.event(
            "task_started",
            task_id=spec.task_id,
            workflow_id=spec.workflow_id,
            role=spec.role,
            chain=list(usable),
            deadline_s=round(deadline - spec.submitted_at, 3),
        )
        for pid, reason in skipped:
            self._audit.event("provider_skipped", task_id=spec.task_id, provider=pid, reason=reason)
        if not usable:
            why = "; ".join(f"{pid}: {reason}" for pid, reason in skipped)
            error = TaskFailedError(
                task_id=spec.task_id,
                role=spec.role,
                reason=f"no provider of role {spec.role!r} can take this task ({why})",
            )
            self._fail(task, error, self._clock())
            return
        self._advance(task, self._clock())

    def _advance(self, task: TaskState, now: float) -> None:
        health = self._task_health(task)
        step = next_step(task.chain, task.progress, health, task.config.retry, now, task.deadline)
        if isinstance(step, Dispatch):
            self._dispatch(task, step.provider)
        elif isinstance(step, GiveUp):
            self._fail(task, task.failure(step.reason, deadline=step.deadline, health=health), now)
        else:
            task.wake_token += 1
            self._audit.event(
                "waiting",
                task_id=task.task_id,
                provider=step.provider,
                seconds=round(step.when - now, 3),
            )
            waiting = Progress(
                task.task_id,
                "waiting",
                step.provider,
                attempt=len(task.attempts),
                detail=f"{step.when - now:.1f} s",
            )
            _tell_progress(task, waiting)
            wake = Wake(task.task_id, task.wake_token)
            self._io.call_later(step.when - now, tell_quietly, self.actor_ref, wake)

    def _dispatch(self, task: TaskState, provider: str) -> None:
        state: ProgressState = "running"
        if task.attempts:
            last = task.attempts[-1]
            event = "retry" if last.provider == provider else "fallback"
            state = "retrying" if event == "retry" else "fallback"
            self._audit.event(
                event,
                task_id=task.task_id,
                role=task.spec.role,
                from_provider=last.provider,
                to_provider=provider,
                after=last.outcome,
            )
        model = task.config.providers[provider].model
        _tell_progress(task, Progress(task.task_id, state, provider, model, len(task.attempts) + 1))
        stream = task.spec.sink
        if stream is not None and task.restart_reason:
            stream.restart(provider, task.restart_reason)
            task.restart_reason = ""
        timeouts = task.config.timeouts
        call_id = next(self._call_ids)
        task.call_id, task.call_provider = call_id, provider
        slot = task.routing.slots[provider]
        call = StartAttempt(
            call_id=call_id,
            task_id=task.task_id,
            role=task.spec.role,
            request=task.request_for(provider),
            deadline=task.deadline,
            first_byte_s=timeouts.first_byte_s,
            request_s=timeouts.request_s,
            reply_to=self.actor_ref,
            idle_s=timeouts.stream_idle_s,
            sink=stream,
        )
        now = self._clock()
        self._providers.dispatching(slot, now)
        if not self._send(self._providers.ref(slot), call):
            error = ProviderError(ErrorKind.INTERNAL, "the provider actor is not running")
            self._attempt_done(AttemptDone(call_id, task.task_id, provider, None, error, 0.0))

    @staticmethod
    def _send(ref: pykka.ActorRef[Any] | None, message: object) -> bool:
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def _attempt_done(self, done: AttemptDone) -> None:
        task = self._tasks.get(done.task_id)
        if task is None or task.call_id != done.call_id:
            return
        task.call_id = task.call_provider = None
        now = self._clock()
        row = task.record(
            done.provider,
            result=done.result,
            error=done.error,
            latency_ms=done.latency_ms,
            redactor=self._audit.redactor,
            wall=wall_time(self._wall()),
        )
        self._audit.event("attempt", **row.audit_fields())
        if done.result is not None:
            self._succeed(task, done.provider, done.result, now)
            return
        assert done.error is not None  # noqa: S101 - an attempt ends with one or the other
        if done.error.partial_text and task.spec.sink is not None:
            if task.spec.on_broken != "restart":
                self._fail(task, task.broken(done.error), now)
                return
            task.restart_reason = f"{done.provider} broke off mid-stream ({done.error.kind})"
        failed = Progress(
            task.task_id, "attempt_failed", row.provider, row.model, row.attempt, row.outcome
        )
        _tell_progress(task, failed)
        if not self._turned_away(task, done.provider, done.error, now):
            task.progress[done.provider].record_failure(
                done.error.kind, done.error.retry_after_s, task.config.retry, now, self._random
            )
        self._advance(task, now)

    def _succeed(
        self, task: TaskState, provider: str, result: ChatResult | EmbedResult, now: float
    ) -> None:
        reply: Reply | EmbedReply
        if isinstance(result, EmbedResult):
            reply = task.embed_answer(provider, result, now)
        else:
            reply = task.answer(provider, result, now)
        row = self._end(task, "ok", provider, now)
        _settle(task.reply, result=reply)
        self._count(task, row)

    def _fail(self, task: TaskState, error: TaskFailedError, now: float) -> None:
        outcome = "failed"
        if isinstance(error, DeadlineExceededError):
            outcome = "deadline"
        elif isinstance(error, TaskCancelledError):
            outcome = "cancelled"
        row = self._end(task, outcome, None, now, error=str(error.reason))
        _settle(task.reply, error=error)
        self._count(task, row)

    def _end(
        self,
        task: TaskState,
        outcome: str,
        provider: str | None,
        now: float,
        error: str | None = None,
    ) -> TaskRow:
        """Write the task's terminal record, durably, before its caller hears of it."""
        self._tasks.pop(task.task_id, None)
        reason = self._audit.redactor.text(error) if error is not None else None
        row = task.task_row(outcome, provider, now, wall_time(self._wall()), reason)
        self._audit.event("task_finished", **row.audit_fields(), trail=task.trail())
        self._audit.flush()
        state: ProgressState = outcome  # type: ignore[assignment]
        _tell_progress(task, Progress(task.task_id, state, provider, row.model, row.attempts))
        if self._providers.retiring:
            self._retire_idle()
        return row

    def _count(self, task: TaskState, row: TaskRow) -> None:
        """Pass the task's rows on to the metrics actor, after the caller has its answer."""
        if self._metrics_failed:
            self._unrecorded += 1
            return
        if self._outbox.add(TaskEvent(row, tuple(task.rows))):
            self._send_events()
        elif self._outbox.set_timer():
            self._io.call_later(EVENT_BATCH_S, tell_quietly, self.actor_ref, FlushEvents())

    def _send_events(self) -> None:
        """Send the held tasks as a batch; it is kept until the metrics actor stores it."""
        batch = self._outbox.take()
        if batch is not None and self._metrics is not None:
            tell_quietly(self._metrics, TaskEvents(batch.number, batch.events, self.actor_ref))

    def _flush_events(self, _message: FlushEvents) -> None:
        self._outbox.timer_fired()
        self._send_events()

    def _events_stored(self, message: EventsStored) -> None:
        self._outbox.stored(message.numbers)

    def _forward_to_metrics(self, message: GetStats | SyncStore) -> None:
        """Pass on the tasks that ended, then the caller's question, in that order."""
        self._send_events()
        if self._metrics is not None and self._send(self._metrics, message):
            return
        answer = Stats(providers={}, roles={}) if isinstance(message, GetStats) else None
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            message.reply.set_result(answer)  # type: ignore[arg-type]

    def _wake(self, wake: Wake) -> None:
        task = self._tasks.get(wake.key)
        if task is not None and task.wake_token == wake.token and task.call_id is None:
            self._advance(task, self._clock())

    def _cancel(self, message: CancelTask) -> None:
        task = self._tasks.get(message.task_id)
        if task is not None:
            self._abandon(task, message.reason)

    def _abandon(self, task: TaskState, reason: str, *, cancelled: bool = True) -> None:
        self._cancel_call(task)
        kind = TaskCancelledError if cancelled else TaskFailedError
        error = kind(
            task_id=task.task_id, role=task.spec.role, reason=reason, attempts=task.attempts
        )
        self._fail(task, error, self._clock())

    def _cancel_call(self, task: TaskState) -> None:
        if task.call_id is None or task.call_provider is None:
            return
        ref = self._providers.ref(task.routing.slots[task.call_provider])
        if ref is not None:
            tell_quietly(ref, CancelAttempt(task.call_id))

    # -- providers and config ------------------------------------------------------------

    def _turned_away(
        self, task: TaskState, provider: str, error: ProviderError, now: float
    ) -> bool:
        """Whether the provider refused the call for a change of health the router now knows.

        The provider tells its health before its refusal, so a call sent just as its breaker
        opened comes back with the reason already known: the task tries elsewhere or waits,
        and the refusal costs it no attempt.
        """
        if error.kind is not ErrorKind.UNAVAILABLE:
            return False
        (health,) = self._providers.health_of(task.routing, (provider,)).values()
        return health.ready_at() > now

    def _task_health(self, task: TaskState) -> dict[str, Health]:
        return self._providers.health_of(task.routing, task.chain)

    def _report_health(self, message: GetHealth) -> None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            message.reply.set_result(self._providers.standing(self._clock()))

    def _health_changed(self, message: HealthChanged) -> None:
        before = self._providers.set_health(message.slot, message.health)
        if message.health.ready_at() < before.ready_at():
            self._wake_waiting_for(message.slot)

    def _wake_waiting_for(self, slot: str) -> None:
        """Decide again for the waiting tasks that can use ``slot``: it is ready sooner."""
        now = self._clock()
        for task in list(self._tasks.values()):
            if task.call_id is None and any(task.routing.slots[p] == slot for p in task.chain):
                self._advance(task, now)

    def _provider_replaced(self, message: ProviderReplaced) -> None:
        self._providers.replaced(message.slot, message.ref, message.health)
        self._fail_calls_on(message.slot, "the provider actor crashed and was restarted")

    def _metrics_replaced(self, message: MetricsReplaced) -> None:
        """Send the new metrics actor every batch its predecessor did not store."""
        self._metrics = message.ref
        if message.ref is None:
            self._metrics_failed = True
            self._rows_lost(self._outbox.drop_all())
            return
        resent = self._outbox.unacknowledged()
        for batch in resent:
            tell_quietly(message.ref, TaskEvents(batch.number, batch.events, self.actor_ref))
        if resent:
            tasks = sum(len(batch.events) for batch in resent)
            self._audit.event("metrics_rows_resent", tasks=tasks, batches=len(resent))

    def _rows_lost(self, tasks: int) -> None:
        if tasks:
            self._audit.event(
                "metrics_rows_lost",
                tasks=tasks,
                reason="the metrics actor stopped before storing them; they are in this "
                "audit log (callboard metrics rebuild --from-audit restores them)",
            )

    def _provider_down(self, message: ProviderDown) -> None:
        if message.failed:
            self._providers.failed(message.slot, message.reason)
        self._fail_calls_on(message.slot, f"the provider actor {message.reason}")

    def _fail_calls_on(self, slot: str, reason: str) -> None:
        for task in list(self._tasks.values()):
            provider = task.call_provider
            if provider is not None and task.routing.slots.get(provider) == slot:
                error = ProviderError(ErrorKind.INTERNAL, reason)
                assert task.call_id is not None  # noqa: S101
                self._attempt_done(
                    AttemptDone(task.call_id, task.task_id, provider, None, error, 0.0)
                )

    def _apply(self, message: ApplyRouting) -> None:
        self._providers.apply(message.routing, message.refs, message.health)
        self._retire_idle()

    def _retire_idle(self) -> None:
        in_use = (t.routing.slots[p] for t in self._tasks.values() for p in t.chain)
        idle = self._providers.retire_idle(in_use)
        if idle and self.supervisor is not None:
            tell_quietly(self.supervisor, RetireSlots(idle))

    def flush(self) -> None:
        """Write out buffered audit lines."""
        self._audit.flush()

    def release(self, reason: str) -> None:
        """End every task still running, each with its terminal record; pass the rows on.

        On a stop and on a crash alike, the rows held go to the metrics actor; rows it
        can no longer get (it is not running) are recorded as lost.
        """
        crashed = reason.startswith("crashed")
        for task in list(self._tasks.values()):
            self._abandon(task, f"the router {reason}", cancelled=not crashed)
        self._send_events()
        lost, self._unrecorded = self._unrecorded, 0
        if self._metrics is None or not self._metrics.is_alive():
            lost += self._outbox.drop_all()
        self._rows_lost(lost)


def _tell_progress(task: TaskState, progress: Progress) -> None:
    """Tell the caller's progress callback, which must never take the router down."""
    callback = task.spec.on_progress
    if callback is None:
        return
    try:
        callback(progress)
    except Exception:  # noqa: BLE001 - the caller's code; the task goes on regardless
        task.spec = dataclasses.replace(task.spec, on_progress=None)


def _settle(
    future: concurrent.futures.Future[Any],
    *,
    result: Reply | EmbedReply | None = None,
    error: BaseException | None = None,
) -> None:
    """Resolve a caller's future unless the caller already cancelled it."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
