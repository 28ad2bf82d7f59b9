"""The router actor: casts each task to its role's providers, retries and falls back.

It keeps every running task and drives it from `Submit` to one reply and one terminal
record. What it knows of its provider actors (which actor serves each provider, and their
health) is a `ProviderTable`; the tasks that ended reach the metrics actor through a
`MetricsDelivery`, which keeps them until they are stored. It never waits: it reacts to
`AttemptDone` from the providers, to `HealthChanged`, to its own timers (`Wake`,
`FlushEvents`), to the metrics actor's `EventsStored` and to the supervisor's news of
actors.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import itertools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pykka

from actors._budgets import BudgetKeeper, OnBudget
from actors._child import SupervisedActor, tell_quietly
from actors._messages import (
    ApplyRouting,
    AttemptDone,
    CancelAttempt,
    CancelTask,
    ContentStarted,
    EventsStored,
    FlushEvents,
    GetBudgets,
    GetExposition,
    GetHealth,
    GetStats,
    HealthChanged,
    HedgeDue,
    MetricsReplaced,
    ProviderDown,
    ProviderReplaced,
    RetireSlots,
    StartAttempt,
    Submit,
    SyncStore,
    Wake,
)
from actors._metrics_delivery import MetricsDelivery, task_context
from runtime._audit import AuditLog
from runtime._chat import ChatResult, EmbedReply, EmbedResult, Progress, ProgressState, Reply
from runtime._errors import (
    BudgetExceededError,
    DeadlineExceededError,
    ErrorKind,
    ProviderError,
    TaskCancelledError,
    TaskFailedError,
    UnknownProviderError,
    UnknownRoleError,
)
from runtime._policy.answer_mode import WINDOW as WHOLE_AFTER
from runtime._policy.answer_mode import AnswerModes
from runtime._policy.budget_gate import refused_error
from runtime._policy.budget_ledger import BudgetLedger, BudgetStatus, LocalLedger, Refusal
from runtime._policy.hedging import ContentGate, hedge_choice
from runtime._policy.held_replies import HeldReplies
from runtime._policy.latency import LatencyBook, attempt_end
from runtime._policy.planner import Plan, RoutePlanner
from runtime._policy.provider_table import ProviderTable, Routing
from runtime._policy.routing import Dispatch, GiveUp, Health, next_fallback, next_step
from runtime._policy.task import SCHEMA_MISMATCH, TaskState, eligible_chain
from runtime._rows import AttemptRow, TaskEvent, TaskRow, wall_time
from runtime._task_spec import ReplyTo, TaskSpec
from runtime._transport.io_loop import IoLoop

HEALTH_LOG = 64
"""Changes of providers' standing kept for the traces of the tasks that saw them."""
_Held = tuple[ReplyTo, Reply | EmbedReply | None, BaseException | None]
"""A caller's reply slot, and the answer or the error it gets once its record is written."""


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
        ledger: BudgetLedger | None = None,
        on_budget: OnBudget | None = None,
    ) -> None:
        super().__init__("router", supervisor)
        self._providers = ProviderTable(routing, refs, health or {})
        self._io = io
        self._audit = audit.writer()
        self._clock = clock
        self._random = rand
        self._wall = wall
        self._health_log: collections.deque[tuple[float, str, str]] = collections.deque(
            maxlen=HEALTH_LOG
        )
        """The latest changes of providers' standing (wall time, slot, state), for traces."""
        self._tasks: dict[str, TaskState] = {}
        self._calls: dict[int, _Call] = {}
        """Every attempt in flight, by call id (its task may have ended and wait for it)."""
        self._call_ids = itertools.count(1)
        self._held: HeldReplies[_Held] = HeldReplies()
        """Replies of ended tasks, sent once their terminal records are written (`flush`)."""
        self._latency = LatencyBook()
        self._answer_modes = AnswerModes()
        self._planner = RoutePlanner(self._latency)
        self._budgets = BudgetKeeper(
            ledger or LocalLedger(), routing.config, self._audit, wall, on_budget
        )
        self._delivery = MetricsDelivery(
            metrics, self.actor_ref, io, self._audit, self._budget_levels
        )
        self.handlers = {
            AttemptDone: self._attempt_done,
            ContentStarted: self._content_started,
            HedgeDue: self._hedge_due,
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
            GetExposition: self._forward_to_metrics,
            ApplyRouting: self._apply,
            GetHealth: self._report_health,
            GetBudgets: self._report_budgets,
        }

    # -- tasks -------------------------------------------------------------------------

    def _submit(self, message: Submit) -> None:
        spec, config = message.task, self._providers.routing.config
        if spec.provider is not None and spec.provider not in config.providers:
            known = sorted(config.providers)
            _settle(message.reply, error=UnknownProviderError(spec.provider, known))
            return
        chain = config.chain_for(spec.role, spec.tenant) if spec.provider is None else ()
        if chain is None:
            _settle(message.reply, error=UnknownRoleError(spec.role, sorted(config.roles)))
            return
        deadline = spec.submitted_at + (spec.deadline_s or config.timeouts.task_s)
        plan = self._plan(spec, chain)
        usable, skipped = eligible_chain(config, spec, plan.chain)
        task = TaskState(spec, message.reply, self._providers.routing, usable, deadline)
        self._tasks[spec.task_id] = task
        self._audit.event(
            "task_started",
            task_id=spec.task_id,
            workflow_id=spec.workflow_id,
            role=spec.role,
            tenant=spec.tenant,
            request_id=spec.request_id,
            chain=list(usable),
            deadline_s=round(deadline - spec.submitted_at, 3),
            **plan.audit_fields(),
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

    def _plan(self, spec: TaskSpec, chain: tuple[str, ...]) -> Plan:
        """Order the task's chain by its role's rules and strategy (see `RoutePlanner`).

        A pinned task's chain is its provider alone.
        """
        if spec.provider is not None:
            return Plan((spec.provider,), "pinned")
        routing = self._providers.routing

        def health(ids: Sequence[str]) -> dict[str, Health]:
            return self._providers.health_of(routing, ids)

        return self._planner.plan(routing.config, spec, chain, health, self._clock(), self._random)

    def _advance(self, task: TaskState, now: float) -> None:
        health = self._task_health(task)
        step = next_step(task.chain, task.progress, health, task.config.retry, now, task.deadline)
        if isinstance(step, Dispatch):
            self._dispatch(task, step.provider, now, health)
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

    def _dispatch(
        self,
        task: TaskState,
        provider: str,
        now: float,
        health: dict[str, Health],
        *,
        hedge: bool = False,
    ) -> None:
        hold = self._budgets.reserve(task, provider)
        if isinstance(hold, Refusal):
            self._budget_refused(task, provider, hold, now, hedge=hedge)
            return
        state: ProgressState = "hedging" if hedge else "running"
        if task.attempts and not hedge:
            state = self._announce_next(task, provider)
        if task.spec.on_progress is not None:  # built only for a caller who listens
            model = task.spec.model or task.config.providers[provider].model
            attempt = len(task.attempts) + 1
            _tell_progress(task, Progress(task.task_id, state, provider, model, attempt))
        stream = task.spec.sink
        if stream is not None and task.restart_reason:
            stream.restart(provider, task.restart_reason)
            task.restart_reason = ""
        call_id = next(self._call_ids)
        self._budgets.held(call_id, hold)
        task.calls[call_id] = provider
        self._calls[call_id] = _Call(task, now)
        self._planner.dispatched(provider)
        if task.gate is None and task.hedge_after_s is not None and task.spec.embed is None:
            task.gate = ContentGate(functools.partial(self._tell_content, task.task_id))
        call = self._start_attempt(task, call_id, provider, now, health)
        slot = task.routing.slots[provider]
        self._providers.dispatching(slot, now)
        if not self._send(self._providers.ref(slot), call):
            self._end_call(call_id, ErrorKind.INTERNAL, "the provider actor is not running")
            return
        if task.hedge_after_s is not None and len(task.live_calls) == 1:
            due = HedgeDue(task.task_id, call_id)
            self._io.call_later(task.hedge_after_s, tell_quietly, self.actor_ref, due)

    def _budget_refused(
        self, task: TaskState, provider: str, refusal: Refusal, now: float, *, hedge: bool
    ) -> None:
        """A budget cannot hold the call: skip the provider (``downgrade``), else refuse."""
        if hedge:
            task.hedging = False
            return
        if refusal.retry_s is not None:  # a fleet's lease of the budget is on its way
            task.wake_token += 1
            wake = Wake(task.task_id, task.wake_token)
            self._io.call_later(refusal.retry_s, tell_quietly, self.actor_ref, wake)
            return
        rest = tuple(p for p in task.chain if p != provider)
        if refusal.budget.on_exceed == "downgrade" and rest:
            task.chain = rest
            reason = f"budget {refusal.budget.name!r} is spent (downgrade)"
            self._audit.event(
                "provider_skipped", task_id=task.task_id, provider=provider, reason=reason
            )
            self._advance(task, now)
            return
        model = task.request_for(provider).model
        self._fail(task, refused_error(refusal, task.spec, model, task.attempts), now)

    def _announce_next(self, task: TaskState, provider: str) -> ProgressState:
        """Record that the task retries or falls back after its last attempt; say which."""
        last = task.attempts[-1]
        event = "retry" if last.provider == provider else "fallback"
        self._audit.event(
            event,
            task_id=task.task_id,
            role=task.spec.role,
            from_provider=last.provider,
            to_provider=provider,
            after=last.outcome,
        )
        return "retrying" if event == "retry" else "fallback"

    def _start_attempt(
        self, task: TaskState, call_id: int, provider: str, now: float, health: dict[str, Health]
    ) -> StartAttempt:
        """Build the attempt, within its share of the task's deadline."""
        config, timeouts = task.config, task.config.timeouts
        busy = [task.calls[live] for live in task.live_calls]
        fallback = next_fallback(task.chain, task.progress, health, busy)
        reserve = None if fallback is None else self._latency.reserve_s(fallback)
        end = attempt_end(now, task.deadline, reserve)
        why = "the task's deadline"
        if end < task.deadline:
            kept = task.deadline - end
            why = f"its share of the task's deadline, keeping {kept:.1f} s for {fallback}"
        whole_bound_s, whole_why = self._whole_bound(task, provider)
        return StartAttempt(
            call_id=call_id,
            task_id=task.task_id,
            role=task.spec.role,
            request=task.request_for(provider),
            deadline=end,
            first_byte_s=timeouts.first_byte_s,
            request_s=timeouts.request_s,
            reply_to=self.actor_ref,
            idle_s=timeouts.stream_idle_s,
            sink=task.spec.sink,
            first_token_s=config.first_token_s(provider),
            min_chars_per_s=config.min_chars_per_s(provider),
            rate_window_s=timeouts.rate_window_s,
            deadline_why=why,
            gate=task.gate,
            whole_bound_s=whole_bound_s,
            whole_why=whole_why,
        )

    def _whole_bound(self, task: TaskState, provider: str) -> tuple[float | None, str]:
        """Bound an ask to a provider that answers fast by ``first_byte_s``, asked whole.

        See `runtime._policy.answer_mode`; ``(None, "")``: stream as configured.
        """
        if task.spec.sink is not None or task.spec.embed is not None:
            return None, ""
        bound_s = task.config.timeouts.first_byte_s
        hedge_s = task.hedge_after_s
        slowest = self._answer_modes.slowest_if_fast(
            provider, bound_s if hedge_s is None else min(bound_s, hedge_s)
        )
        if slowest is None:
            return None, ""
        why = (
            f"first_byte_s; asked for a whole answer, not a stream, as its last {WHOLE_AFTER} "
            f"answers took at most {slowest * 1000:.0f} ms; it streams until it shows itself "
            "fast again"
        )
        return bound_s, why

    def _tell_content(self, task_id: str, call_id: int) -> None:
        """Runs on the I/O thread when an attempt of a hedged task claims its content."""
        tell_quietly(self.actor_ref, ContentStarted(task_id, call_id))

    @staticmethod
    def _send(ref: pykka.ActorRef[Any] | None, message: object) -> bool:
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def _end_call(self, call_id: int, kind: ErrorKind, reason: str) -> None:
        """End an attempt its provider cannot report on, as ``kind``, timed from its start."""
        call = self._calls.get(call_id)
        if call is None:
            return
        provider = call.task.calls[call_id]
        latency_ms = (self._clock() - call.started) * 1000.0
        error = ProviderError(kind, reason, provider=provider)
        self._attempt_done(
            AttemptDone(call_id, call.task.task_id, provider, None, error, latency_ms)
        )

    def _attempt_done(self, done: AttemptDone) -> None:
        call = self._calls.pop(done.call_id, None)
        if call is None:
            return
        task = call.task
        task.calls.pop(done.call_id, None)
        dropped = task.dropped.pop(done.call_id, None)
        now = self._clock()
        latency_s = done.latency_ms / 1000.0
        self._planner.attempt_ended(
            task.config, task.spec.role, done.provider, done.result, latency_s=latency_s, now=now
        )
        if done.result is not None:
            self._learn(done, now)
            if dropped is None and task.ended is None:
                done = _checked(task, done)
        elif done.error is not None and done.error.kind is ErrorKind.TIMEOUT:
            self._answer_modes.timed_out(done.provider)
        row = task.record(
            done.provider,
            result=done.result,
            error=done.error,
            latency_ms=done.latency_ms,
            redactor=self._audit.redactor,
            wall=wall_time(self._wall()),
            dropped=dropped,
        )
        self._audit.event("attempt", **row.audit_fields())
        self._budgets.settle(done.call_id, row)
        if task.ended is not None:
            if not task.calls:
                self._batch_rows(task, task.ended)
            return
        if dropped is not None:
            return
        if done.result is not None:
            if task.hedging:  # an answer no gate saw start (embeddings): it won the race
                self._won(task, done.call_id, done.provider)
            self._succeed(task, done.provider, done.result, now)
            return
        assert done.error is not None  # noqa: S101 - an attempt ends with one or the other
        self._attempt_failed(task, done.call_id, done.error, row, now)

    def _attempt_failed(
        self, task: TaskState, call_id: int, error: ProviderError, row: AttemptRow, now: float
    ) -> None:
        if task.content_from == call_id:  # the content it had claimed is void
            task.content_from = None
            if task.gate is not None:
                task.gate = ContentGate(functools.partial(self._tell_content, task.task_id))
        if error.delivered and task.spec.sink is not None:
            if task.spec.on_broken != "restart":
                self._fail(task, task.broken(error), now)
                return
            task.restart_reason = f"{row.provider} broke off mid-stream ({error.kind})"
        failed = Progress(
            task.task_id, "attempt_failed", row.provider, row.model, row.attempt, row.outcome
        )
        _tell_progress(task, failed)
        if not self._turned_away(task, row.provider, error, now):
            task.progress[row.provider].record_failure(
                error.kind,
                error.retry_after_s,
                task.config.retry,
                now,
                self._random,
                again=error.code == SCHEMA_MISMATCH,
            )
        if not task.live_calls:  # else another attempt is still in flight: it may answer
            self._advance(task, now)

    def _learn(self, done: AttemptDone, now: float) -> None:
        """Learn the provider's latency from an answered attempt."""
        result = done.result
        ttft_ms = result.ttft_ms if isinstance(result, ChatResult) else None
        ttft_s = None if ttft_ms is None else ttft_ms / 1000.0
        self._latency.observe(done.provider, done.latency_ms / 1000.0, ttft_s, now)
        self._answer_modes.answered(done.provider, done.latency_ms / 1000.0)

    def _content_started(self, message: ContentStarted) -> None:
        """An attempt of a hedged task sent content first: cancel the others."""
        task = self._tasks.get(message.task_id)
        if task is None or message.call_id not in task.calls:
            return
        task.content_from = message.call_id
        self._won(task, message.call_id, task.calls[message.call_id])

    def _won(self, task: TaskState, call_id: int, winner: str) -> None:
        """``call_id`` (on ``winner``) has the task's content: record a hedge won, cancel others."""
        losers = [cid for cid in task.live_calls if cid != call_id]
        if task.hedging:
            task.hedging = False
            self._audit.event(
                "hedge_won",
                task_id=task.task_id,
                role=task.spec.role,
                provider=winner,
                cancelled=[task.calls[cid] for cid in losers],
            )
        for cid in losers:
            self._drop(task, cid, f"{winner} sent content first")

    def _hedge_due(self, message: HedgeDue) -> None:
        """The attempt in flight has sent no content yet: start the next provider beside it."""
        task = self._tasks.get(message.task_id)
        if task is None or task.content_from is not None or task.live_calls != [message.call_id]:
            return
        now = self._clock()
        busy = [task.calls[message.call_id]]
        health = self._task_health(task)
        hedge = hedge_choice(
            task.chain, busy, task.progress, health, task.config.retry, now, task.deadline
        )
        if hedge is None:
            return
        task.hedging = True
        self._audit.event(
            "hedge_started",
            task_id=task.task_id,
            role=task.spec.role,
            provider=task.calls[message.call_id],
            hedge=hedge,
            after_s=task.hedge_after_s,
        )
        self._dispatch(task, hedge, now, health, hedge=True)

    def _drop(self, task: TaskState, call_id: int, reason: str) -> None:
        """Cancel one attempt in flight; it ends, and is recorded, as ``cancelled``."""
        if call_id in task.dropped:
            return
        task.dropped[call_id] = reason
        provider = task.calls[call_id]
        ref = self._providers.ref(task.routing.slots[provider])
        if not self._send(ref, CancelAttempt(call_id, reason)):
            self._end_call(call_id, ErrorKind.CANCELLED, reason)

    def _succeed(
        self, task: TaskState, provider: str, result: ChatResult | EmbedResult, now: float
    ) -> None:
        reply: Reply | EmbedReply
        if isinstance(result, EmbedResult):
            reply = task.embed_answer(provider, result, now)
        else:
            reply = task.answer(provider, result, now)
        self._planner.served(task.spec, provider, now)
        row = self._end(task, "ok", provider, now)
        self._hold(task.reply, reply, None)
        self._count(task, row)

    def _fail(self, task: TaskState, error: TaskFailedError, now: float) -> None:
        outcome = "failed"
        if isinstance(error, DeadlineExceededError):
            outcome = "deadline"
        elif isinstance(error, TaskCancelledError):
            outcome = "cancelled"
        elif isinstance(error, BudgetExceededError):
            outcome = "budget"
        row = self._end(task, outcome, None, now, error=str(error.reason))
        self._hold(task.reply, None, error)
        self._count(task, row)

    def _end(
        self,
        task: TaskState,
        outcome: str,
        provider: str | None,
        now: float,
        error: str | None = None,
    ) -> TaskRow:
        """Record the task's end; its caller hears of it once the record is written.

        The record is buffered, and the reply held (`_hold`) until the router writes its
        lines (`flush`), once its inbox is drained.
        """
        self._tasks.pop(task.task_id, None)
        reason = self._audit.redactor.text(error) if error is not None else None
        row = task.task_row(outcome, provider, now, wall_time(self._wall()), reason)
        spec = task.spec
        self._audit.event(
            "task_finished",
            **row.audit_fields(),
            tenant=spec.tenant,
            request_id=spec.request_id,
            trail=task.trail(),
        )
        state: ProgressState = outcome  # type: ignore[assignment]
        if task.spec.on_progress is not None:
            self.flush()  # the caller's callback hears of the end after the record too
            _tell_progress(task, Progress(task.task_id, state, provider, row.model, row.attempts))
        if self._providers.retiring:
            self._retire_idle()
        return row

    def _count(self, task: TaskState, row: TaskRow) -> None:
        """Pass the task's rows on to the metrics actor, after the caller has its answer.

        Attempts still in flight (a hedge's loser) are cancelled first; the rows wait for
        their records, which come in `_attempt_done`.
        """
        why = f"{row.provider} answered the task" if row.provider else f"the task {row.outcome}"
        for call_id in list(task.calls):
            self._drop(task, call_id, why)
        if task.calls:
            task.ended = row
            return
        self._batch_rows(task, row)

    def _batch_rows(self, task: TaskState, row: TaskRow) -> None:
        context = task_context(task, row, self._health_log) if task.config.otel.enabled else None
        self._delivery.add(TaskEvent(row, tuple(task.rows), context))

    def _budget_levels(self) -> tuple[BudgetStatus, ...] | None:
        return tuple(self._budgets.statuses()) if self._budgets.active else None

    def _flush_events(self, _message: FlushEvents) -> None:
        self._delivery.timer_fired()

    def _events_stored(self, message: EventsStored) -> None:
        self._delivery.stored(message.numbers)

    def _forward_to_metrics(self, message: GetStats | SyncStore | GetExposition) -> None:
        self._delivery.forward(message)

    def _wake(self, wake: Wake) -> None:
        task = self._tasks.get(wake.key)
        if task is not None and task.wake_token == wake.token and not task.live_calls:
            self._advance(task, self._clock())

    def _cancel(self, message: CancelTask) -> None:
        task = self._tasks.get(message.task_id)
        if task is not None:
            self._abandon(task, message.reason)

    def _abandon(self, task: TaskState, reason: str, *, cancelled: bool = True) -> None:
        kind = TaskCancelledError if cancelled else TaskFailedError
        error = kind(
            task_id=task.task_id, role=task.spec.role, reason=reason, attempts=task.attempts
        )
        self._fail(task, error, self._clock())

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

    def _report_budgets(self, message: GetBudgets) -> None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            message.reply.set_result(self._budgets.statuses())

    def _health_changed(self, message: HealthChanged) -> None:
        before = self._providers.set_health(message.slot, message.health)
        if message.health.state != before.state:
            self._health_log.append((self._wall(), message.slot, str(message.health.state)))
        if message.health.ready_at() < before.ready_at():
            self._wake_waiting_for(message.slot)

    def _wake_waiting_for(self, slot: str) -> None:
        """Decide again for the waiting tasks that can use ``slot``: it is ready sooner."""
        now = self._clock()
        for task in list(self._tasks.values()):
            if not task.live_calls and any(task.routing.slots[p] == slot for p in task.chain):
                self._advance(task, now)

    def _provider_replaced(self, message: ProviderReplaced) -> None:
        self._providers.replaced(message.slot, message.ref, message.health)
        self._fail_calls_on(message.slot, "the provider actor crashed and was restarted")

    def _metrics_replaced(self, message: MetricsReplaced) -> None:
        self._delivery.replaced(message.ref)

    def _provider_down(self, message: ProviderDown) -> None:
        if message.failed:
            self._providers.failed(message.slot, message.reason)
        self._fail_calls_on(message.slot, f"the provider actor {message.reason}")

    def _fail_calls_on(self, slot: str, reason: str) -> None:
        """End every attempt the actor of ``slot`` held (ended tasks' cancelled ones too)."""
        for call_id, call in list(self._calls.items()):
            provider = call.task.calls.get(call_id)
            if provider is not None and call.task.routing.slots.get(provider) == slot:
                self._end_call(call_id, ErrorKind.INTERNAL, reason)

    def _apply(self, message: ApplyRouting) -> None:
        self._providers.apply(message.routing, message.refs, message.health)
        self._latency.forget(set(message.routing.config.providers))
        self._answer_modes.forget(set(message.routing.config.providers))
        self._planner.forget(set(message.routing.config.providers))
        self._budgets.apply(message.routing.config)
        self._retire_idle()

    def _retire_idle(self) -> None:
        in_use = [t.routing.slots[p] for t in self._tasks.values() for p in t.chain]
        in_use += [c.task.routing.slots[c.task.calls[i]] for i, c in self._calls.items()]
        idle = self._providers.retire_idle(in_use)
        if idle and self.supervisor is not None:
            tell_quietly(self.supervisor, RetireSlots(idle))

    def _hold(
        self, reply: ReplyTo, result: Reply | EmbedReply | None, error: BaseException | None
    ) -> None:
        """Send an ended task's reply at the next `flush`, after its terminal record."""
        if self._held.hold((reply, result, error), self._clock()):
            self.flush()

    def on_receive(self, message: object) -> object:
        """Handle one message; flush once the inbox is drained, or replies waited too long."""
        result = super().on_receive(message)
        if self._held and self._held.due(self._clock()):  # no clock read when none are held
            self.flush()
        return result

    def flush(self) -> None:
        """Write the buffered audit lines, then send the replies held for them.

        A task's terminal record is written before its caller hears of it. The router
        writes when its inbox is drained, not at each task's end: the tasks that end
        together share one write, and their replies to one asyncio caller's loop share
        one wake-up of it; while new tasks keep the inbox from draining, replies wait a
        few milliseconds at most (`HeldReplies`). Should the write fail, the replies are
        sent all the same.
        """
        held = self._held.take()
        try:
            self._audit.flush()
        finally:
            for reply, result, error in held:
                _settle(reply, result=result, error=error)

    def release(self, reason: str) -> None:
        """End every task still running, each with its terminal record, and its attempts.

        The attempts still in flight are recorded as ``cancelled`` here, with their time
        so far and no usage (their cost unknown): their providers' reports would find no
        router. On a stop and on a crash alike, the rows held go to the metrics actor; rows
        it can no longer get (it is not running) are recorded as lost.
        """
        crashed = reason.startswith("crashed")
        for task in list(self._tasks.values()):
            self._abandon(task, f"the router {reason}", cancelled=not crashed)
        for call_id in list(self._calls):  # their providers' reports would come too late
            self._end_call(call_id, ErrorKind.CANCELLED, f"the router {reason} before it ended")
        self._delivery.release()


@dataclass(frozen=True, slots=True)
class _Call:
    """An attempt in flight: its task, and when the router sent it."""

    task: TaskState
    started: float


def _checked(task: TaskState, done: AttemptDone) -> AttemptDone:
    """Turn an answer that does not match the task's schema into the attempt's failure.

    A streaming caller saw its text already: it is the failure's partial text, so the
    task restarts elsewhere or raises as for a broken stream.
    """
    if not isinstance(done.result, ChatResult):
        return done
    mismatch = task.checked(done.result)
    if mismatch is None:
        return done
    error = mismatch.for_provider(done.provider)
    if task.spec.sink is not None:
        error.partial_text = done.result.text
        error.delivered = True
    return dataclasses.replace(done, result=None, error=error)


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
    future: ReplyTo,
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
