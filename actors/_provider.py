"""The provider actor: admits calls to one provider and runs them on the I/O loop.

It owns the provider's HTTP client, rate limiter, circuit breaker, concurrency cap and
bounded wait queue. It never blocks: an admitted call becomes a coroutine on the I/O loop,
whose end comes back here as `IoDone`. The actor updates its own state first and tells the
router of any change in its health (`HealthChanged`) before it reports the attempt
(`AttemptDone`): both go into the router's mailbox in that order, so the router never
decides a task's next step on a view of this provider older than the provider's own.

A provider whose check found it in trouble (unreachable, 5xx...) starts unchecked: it
refuses calls, and checks itself again with its own client, on the I/O loop, after a
capped and jittered exponential wait (`CheckDue`, then `CheckDone`), until a check
passes (it joins the rotation) or finds the user's mistake (it goes out).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pykka

from actors._child import SupervisedActor, tell_quietly
from actors._messages import (
    AttemptDone,
    CancelAttempt,
    CheckDone,
    CheckDue,
    HealthChanged,
    IoDone,
    LeaseDone,
    Reloaded,
    RouterIs,
    SharedHealth,
    StartAttempt,
    TrialAnswer,
    Wake,
)
from runtime._audit import AuditLog
from runtime._chat import ChatResult, EmbedRequest, EmbedResult
from runtime._config.schema import BreakerSettings, ProviderSettings, StartupSettings
from runtime._errors import ErrorKind, ProviderError
from runtime._policy.backoff import recheck_wait_s
from runtime._policy.breaker import Breaker, BreakerState
from runtime._policy.leases import LeaseLedger, Spent
from runtime._policy.rate_limits import RateLimiter, Taken
from runtime._policy.routing import TRIAL, Availability, Health
from runtime._policy.task import QUOTA_ADVICE
from runtime._policy.trial_gate import TrialGate
from runtime._policy.wait_queue import WaitQueue
from runtime._task_spec import StreamSink
from runtime._tools import ToolCallDelta
from runtime._transport.attempt import (
    AttemptLimits,
    Cancellation,
    ContentCallback,
    run_attempt,
    run_embed,
)
from runtime._transport.credentials import check_provider, judge
from runtime._transport.http import ProviderClient, provider_client
from runtime._transport.io_loop import IoLoop
from runtime._transport.shared_store import HealthNote, SharedStore
from runtime._transport.signing import request_signer
from runtime.protocols import PROTOCOLS

DEFAULT_COOLDOWN_S = 1.0
"""How long to rest after a 429 that did not say how long."""


@dataclass(slots=True)
class _InFlight:
    call: StartAttempt
    taken: Taken
    """What the rate limiter counted for the call, to correct with its real usage."""
    ticket: int
    """The breaker's ticket: only its holder's outcome may move the breaker."""
    cancellation: Cancellation
    spent: Spent | None = None
    """What the call took from the fleet's lease (``None``: nothing is shared)."""


@dataclass(frozen=True, slots=True)
class Rechecks:
    """How an unchecked provider is checked again: the backoff, and each check's bound."""

    startup: StartupSettings
    validate_s: float


class ProviderActor(SupervisedActor):
    """One provider: admission, limits, breaker and the attempts in flight."""

    def __init__(
        self,
        *,
        slot: str,
        provider_id: str,
        settings: ProviderSettings,
        breaker: BreakerSettings,
        connect_s: float,
        io: IoLoop,
        audit: AuditLog,
        supervisor: pykka.ActorRef[Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rechecks: Rechecks,
        unchecked: Health | None = None,
        rand: Callable[[], float] = random.random,
        shared: SharedStore | None = None,
        lease_s: float = 1.0,
        trial_s: float = 30.0,
        client: ProviderClient | None = None,
    ) -> None:
        # client: the one the start-up check used and left open, with its connection
        super().__init__(f"provider:{slot}", supervisor)
        self.slot = slot
        self.provider_id = provider_id
        self._settings = settings
        self._protocol = PROTOCOLS[settings.kind.protocol]
        self._endpoint = settings.endpoint()
        self._io = io
        self._audit = audit.writer()
        self._clock = clock
        self._out_reason: str | None = None
        try:
            signer = request_signer(settings)
        except ProviderError as error:
            signer = None
            self._take_out(f"{error.message}; then reload", None)
        self._client = client or provider_client(settings, connect_s, signer)
        self._signable = signer is not None or not settings.signs()
        """Whether this actor can send requests at all (a signer, if its requests need one)."""
        self._breaker = Breaker(
            breaker.failures, breaker.cooldown_s, breaker.failure_rate, breaker.window_s
        )
        self._limiter = RateLimiter.per_minute(settings.rpm, settings.tpm, clock())
        self._shared = shared
        limited = shared is not None and (settings.rpm or settings.tpm)
        self._leases = LeaseLedger(settings.rpm, settings.tpm, lease_s) if limited else None
        """The fleet's share of this provider's limits (``None``: limits are this process's)."""
        self._trial = TrialGate(trial_s) if shared is not None else None
        """One trial call for the fleet after a shared rest (``None``: nothing is shared)."""
        self._in_flight: dict[int, _InFlight] = {}
        self._queue: WaitQueue[StartAttempt] = WaitQueue()
        self._router: pykka.ActorRef[Any] | None = None
        self._health = Health()
        self._wake_at = float("inf")
        self._wake_token = 0
        self._rechecks = rechecks
        self._random = rand
        self._unchecked = unchecked if self._out_reason is None else None
        """While unchecked: why, and when the next check is (``until``)."""
        self._checks = 1
        self._check_token = 0
        self._since = clock()

        self.handlers = {
            StartAttempt: self._admit,
            IoDone: self._finish,
            CancelAttempt: self._cancel,
            Wake: self._woken,
            CheckDue: self._check_due,
            CheckDone: self._check_done,
            RouterIs: self._router_is,
            Reloaded: self._reloaded,
            LeaseDone: self._lease_done,
            SharedHealth: self._shared_health,
            TrialAnswer: self._trial_answer,
        }
        if shared is not None:
            shared.watch(provider_id, self._tell_shared_health)
            # what the fleet published before this process started (a rest, a revoked key)
            shared.last(provider_id).add_done_callback(self._tell_last_health)

    def on_start(self) -> None:
        """Record an unchecked start, and schedule its next check."""
        unchecked = self._unchecked
        if unchecked is None:
            return
        self._health = unchecked
        now = self._clock()
        self._audit.event(
            "provider_unchecked",
            now=True,
            provider=self.provider_id,
            reason=unchecked.reason,
            next_check_s=round(max(0.0, unchecked.until - now), 3),
        )
        self._schedule_check(unchecked.until, now)

    # -- checks while unchecked ------------------------------------------------------

    def _schedule_check(self, when: float, now: float) -> None:
        self._check_token += 1
        due = CheckDue(self._check_token)
        self._io.call_later(when - now, tell_quietly, self.actor_ref, due)

    def _check_due(self, message: CheckDue) -> None:
        if self._unchecked is None or message.token != self._check_token:
            return
        check = check_provider(self._client, self._settings, self._rechecks.validate_s)
        future = self._io.submit(check)
        future.add_done_callback(functools.partial(_tell_check_done, self.actor_ref, message.token))

    def _check_done(self, done: CheckDone) -> None:
        unchecked = self._unchecked
        if unchecked is None or done.token != self._check_token:
            return
        now = self._clock()
        self._checks += 1
        if done.error is None:
            self._unchecked = None
            self._audit.event(
                "provider_joined",
                now=True,
                provider=self.provider_id,
                checks=self._checks,
                unchecked_s=round(now - self._since, 3),
            )
        else:
            self._still_failing(done.error, unchecked, now)
        self._announce(now)

    def _still_failing(self, error: ProviderError, unchecked: Health, now: float) -> None:
        failure = judge(self.provider_id, self._settings, error, self._rechecks.validate_s)
        if not failure.trouble:
            self._unchecked = None
            self._take_out(f"{failure.problem}; then reload", error.status)
            return
        startup, retry_after_s = self._rechecks.startup, failure.retry_after_s
        wait = recheck_wait_s(startup, self._checks, self._random, retry_after_s)
        self._unchecked = Health(Availability.UNCHECKED, now + wait, failure.problem)
        if failure.problem != unchecked.reason:
            self._audit.event(
                "provider_unchecked",
                now=True,
                provider=self.provider_id,
                reason=failure.problem,
                next_check_s=round(wait, 3),
            )
        self._schedule_check(now + wait, now)

    def _router_is(self, message: RouterIs) -> None:
        """Tell the router that just started how this provider stands, whatever it is."""
        self._router = message.ref
        self._health = self._current_health(self._clock())
        tell_quietly(message.ref, HealthChanged(self.slot, self._health))

    def _woken(self, message: Wake) -> None:
        if message.token == self._wake_token:
            self._wake_at = float("inf")
        self._drain(self._clock())

    def _reloaded(self, _message: Reloaded) -> None:
        """Come back into rotation after a reload, unless out for want of a signer.

        A key rejected or a quota spent is the user's to see to; the reload says it was.
        A signer that could not be made (no AWS credentials) is made only by a new actor.
        """
        if self._out_reason is not None and self._signable:
            self._audit.event(
                "provider_back", now=True, provider=self.provider_id, after=self._out_reason
            )
            self._publish("ok", 0.0, "back in rotation after a reload")  # forget the last note
            self._out_reason = None
        self._announce(self._clock(), again=True)

    def _admit(self, call: StartAttempt) -> None:
        self._router = call.reply_to
        now = self._clock()
        refusal = self._refusal(now)
        if refusal is not None:
            self._announce(now, again=True)  # the router may not know (out since start-up)
            self._reject(call, ErrorKind.UNAVAILABLE, refusal)
            return
        if len(self._queue) >= self._settings.max_queue:
            self._refuse(call, f"its queue is full ({len(self._queue)} waiting)", now)
            return
        tokens = call.request.estimated_tokens()
        idle = not self._queue and len(self._in_flight) < self._settings.max_concurrency
        if (
            idle
            and self._limiter.wait_s(tokens, now) == 0
            and self._shared_wait_s(tokens, now) == 0
        ):
            self._start(call, tokens, now)
            return
        wait = self._queue_wait_s(tokens, now)
        if now + wait >= call.deadline:
            self._refuse(
                call,
                f"its rate limits would hold the call {wait:.1f} s, past the task's deadline",
                now,
            )
            return
        self._queue.push(call, tokens, call.deadline)
        self._renew(now)
        self._wake(min(now + wait, call.deadline))

    def _refuse(self, call: StartAttempt, reason: str, now: float) -> None:
        """Turn a call away unstarted; an open breaker's trial it was not, so say so again."""
        self._announce(now, again=self._breaker.state is BreakerState.OPEN)
        self._reject(call, ErrorKind.UNAVAILABLE, reason)

    def _refusal(self, now: float) -> str | None:
        if self._out_reason is not None:
            return f"out of rotation: {self._out_reason}"
        if self._unchecked is not None:
            left = max(0.0, self._unchecked.until - now)
            return f"not checked yet ({self._unchecked.reason}); next check in {left:.1f} s"
        if not self._breaker.admits(now):
            if self._breaker.state is BreakerState.HALF_OPEN:
                return "its breaker is half-open and a trial call is in flight"
            left = self._breaker.available_at() - now
            return f"its breaker is open for {left:.1f} s more"
        return None

    def _queue_wait_s(self, tokens: int, now: float) -> float:
        queue = self._queue
        return self._limiter.backlog_wait_s(len(queue) + 1, queue.tokens + tokens, now)

    def _drain(self, now: float) -> None:
        for call in self._queue.expire(now):
            self._reject(
                call, ErrorKind.TIMEOUT, "its deadline passed while it waited in the queue"
            )
        while self._queue and len(self._in_flight) < self._settings.max_concurrency:
            refusal = self._refusal(now)
            if refusal is not None:
                for call in self._queue.clear():
                    self._reject(call, ErrorKind.UNAVAILABLE, refusal)
                return
            first = self._queue.first().tokens
            wait = max(self._limiter.wait_s(first, now), self._shared_wait_s(first, now))
            if wait > 0:
                self._renew(now)
                if wait != float("inf"):
                    self._wake(now + wait)
                break
            entry = self._queue.pop()
            self._start(entry.item, entry.tokens, now)
        if self._queue:
            self._wake(self._queue.next_deadline())

    def _wake(self, when: float) -> None:
        if when >= self._wake_at:
            return
        self._wake_at = when
        self._wake_token += 1
        delay = when - self._clock()
        self._io.call_later(delay, tell_quietly, self.actor_ref, Wake(self.slot, self._wake_token))

    def _start(self, call: StartAttempt, tokens: int, now: float) -> None:
        ticket, change = self._breaker.on_start(now)
        if change is BreakerState.HALF_OPEN:
            self._audit.event("breaker_half_open", now=True, provider=self.provider_id)
            self._announce(now)
        taken = self._limiter.take(tokens, now)
        spent = None if self._leases is None else self._leases.take(tokens, now)
        if self._trial is not None and self._trial.started(call.call_id):
            self._audit.event("trial_call", now=True, provider=self.provider_id)
        cancellation = Cancellation(self._io.loop)
        try:
            whole = call.whole_bound_s is not None and self._answers_whole_on_demand(call)
            work = self._work(call, _limits(call, now, whole=whole), cancellation, whole=whole)
        except ProviderError as error:
            self._reject_started(call, taken, ticket, error, now)
            if spent is not None and self._leases is not None:
                self._leases.refund(spent)
            return
        self._in_flight[call.call_id] = _InFlight(call, taken, ticket, cancellation, spent)
        self._renew(now)
        started = time.perf_counter()
        self._io.spawn(work, _tell_io_done, self.actor_ref, call, self.provider_id, started)

    def _answers_whole_on_demand(self, call: StartAttempt) -> bool:
        """Whether ``call`` streams only because the provider streams (an ask, not a stream)."""
        return (
            call.sink is None
            and not isinstance(call.request, EmbedRequest)
            and self._settings.stream
            and not self._protocol.stream_on_demand
        )

    def _work(
        self,
        call: StartAttempt,
        limits: AttemptLimits,
        cancellation: Cancellation,
        *,
        whole: bool = False,
    ) -> Coroutine[Any, Any, ChatResult | EmbedResult]:
        """Build the attempt's coroutine (raising `ProviderError` for a request it cannot send).

        ``whole``: ask for a whole answer where the provider would stream.
        """
        request = call.request
        if isinstance(request, EmbedRequest):
            embed = self._protocol.embed
            if embed is None:
                raise ProviderError(ErrorKind.BAD_REQUEST, "this provider has no embeddings")
            embed_call = embed.request(self._endpoint, request)
            return run_embed(self._client, embed, embed_call, limits, cancellation=cancellation)
        stream = (
            self._settings.stream
            and (call.sink is not None or not self._protocol.stream_on_demand)
            and not whole
        )
        http_call = self._protocol.chat_request(self._endpoint, request, stream)
        on_content = None if call.sink is None else _deliverer(call.sink, self.provider_id)
        claim = None if call.gate is None else functools.partial(call.gate.claim, call.call_id)
        return run_attempt(
            self._client,
            self._protocol,
            http_call,
            limits,
            on_content,
            cancellation=cancellation,
            claim=claim,
        )

    def _reject_started(
        self, call: StartAttempt, taken: Taken, ticket: int, error: ProviderError, now: float
    ) -> None:
        """Give back what `_start` took for a call that could not be sent, and report it."""
        self._limiter.refund(taken, now)
        self._breaker.on_neutral(ticket)
        self._announce(now)
        self._reject(call, error.kind, error.message)

    def _finish(self, done: IoDone) -> None:
        entry = self._in_flight.pop(done.call_id, None)
        if entry is None:
            return
        call = entry.call
        now = self._clock()
        if done.result is not None:
            self._on_success(done.result, entry, now)
        elif done.error is not None:
            self._limiter.settle(entry.taken, None, now, now)
            self._on_error(done.error, entry.ticket, now)
        self._trial_ended(call.call_id)
        self._announce(now)
        report = AttemptDone(
            call.call_id, call.task_id, self.provider_id, done.result, done.error, done.latency_ms
        )
        tell_quietly(call.reply_to, report)
        self._drain(now)

    def _on_success(self, result: ChatResult | EmbedResult, entry: _InFlight, now: float) -> None:
        if self._breaker.on_success(entry.ticket, now) is BreakerState.CLOSED:
            self._audit.event("breaker_closed", now=True, provider=self.provider_id)
        answered_at = result.answered_at if isinstance(result, ChatResult) else None
        used = result.usage.total_tokens or None
        self._limiter.settle(entry.taken, used, answered_at or now, now)
        if entry.spent is not None and self._leases is not None:
            self._leases.settle(entry.spent, used)
        rest = result.rate_limits.exhausted_for_s() if isinstance(result, ChatResult) else None
        if rest:
            self._limiter.hold(now + rest)

    def _on_error(self, error: ProviderError, ticket: int, now: float) -> None:
        kind = error.kind
        if kind is ErrorKind.AUTH:
            self._take_out(
                f"its key was rejected (HTTP {error.status}); set a valid key in "
                f"{self._settings.key_hint()} and reload",
                error.status,
            )
            self._breaker.on_neutral(ticket)
            self._publish("out", 0.0, self._out_reason or "")
        elif kind is ErrorKind.QUOTA:
            self._take_out(f"{QUOTA_ADVICE} (it said: {error.message})", error.status)
            self._breaker.on_neutral(ticket)
        elif kind is ErrorKind.RATE_LIMITED:
            rest = error.retry_after_s if error.retry_after_s is not None else DEFAULT_COOLDOWN_S
            self._limiter.hold(now + rest)
            self._audit.event(
                "provider_cooling", now=True, provider=self.provider_id, seconds=round(rest, 3)
            )
            self._breaker.on_neutral(ticket)
            self._rest(now + rest)
            self._publish("cooling", rest, "rate limited (429)")
        elif kind.counts_against_health:
            if self._breaker.on_failure(ticket, now) is BreakerState.OPEN:
                self._audit.event(
                    "breaker_opened",
                    now=True,
                    provider=self.provider_id,
                    failures=self._breaker.streak,
                    cooldown_s=self._breaker.cooldown_s,
                    last_error=kind.value,
                )
                self._rest(now + self._breaker.cooldown_s)
                self._publish("open", self._breaker.cooldown_s, f"breaker opened ({kind.value})")
        else:
            self._breaker.on_neutral(ticket)

    # -- the fleet's shared state ----------------------------------------------------

    def _shared_wait_s(self, tokens: int, now: float) -> float:
        """How long the fleet's lease and its trial gate hold a call (``inf``: until told)."""
        lease = 0.0 if self._leases is None else self._leases.wait_s(tokens, now)
        return lease if self._trial is None else max(lease, self._trial.wait_s(now))

    def _renew(self, now: float) -> None:
        """Ask the shared store for a lease, or the trial token, if due (never waits)."""
        self._claim_trial(now)
        leases, shared = self._leases, self._shared
        if leases is None or shared is None:
            return
        queued = len(self._queue)
        if queued and leases.wait_s(self._queue.first().tokens, now) == 0:
            queued = 0  # the first call is covered: only top up
        ask = leases.ask(now, queued, self._queue.tokens if queued else 0)
        if ask is None:
            return
        settings = self._settings
        future = shared.lease(self.provider_id, settings.rpm, settings.tpm, ask, leases.lease_s)
        future.add_done_callback(functools.partial(_tell_lease_done, self.actor_ref, now))

    def _lease_done(self, done: LeaseDone) -> None:
        leases = self._leases
        if leases is None:
            return
        now = self._clock()
        if done.grant is not None:
            if leases.granted(done.grant, done.asked_at, now):
                self._audit.event("shared_store_back", now=True, provider=self.provider_id)
        elif leases.failed(now):
            self._audit.event(
                "shared_store_lost",
                now=True,
                provider=self.provider_id,
                reason=done.error,
                processes=leases.processes,
            )
        self._drain(now)
        if self._queue:
            wait = self._shared_wait_s(self._queue.first().tokens, now)
            if wait != float("inf"):
                self._wake(now + max(wait, 0.001))

    def _claim_trial(self, now: float) -> None:
        trial, shared = self._trial, self._shared
        if trial is None or shared is None or not trial.due(now):
            return
        trial.asked()
        future = shared.claim_trial(self.provider_id, trial.token_s)
        future.add_done_callback(functools.partial(_tell_trial_answer, self.actor_ref))

    def _trial_answer(self, answer: TrialAnswer) -> None:
        if self._trial is None:
            return
        now = self._clock()
        self._trial.answered(answer.won, now)
        if answer.won is not None:
            event = "trial_taken" if answer.won else "trial_elsewhere"
            self._audit.event(event, now=True, provider=self.provider_id)
        self._drain(now)

    def _trial_ended(self, call_id: int) -> None:
        """After the fleet's trial call: give the token back; if it passed, say so to all."""
        trial, shared = self._trial, self._shared
        if trial is None or shared is None or trial.trial_call != call_id:
            return
        passed = trial.ended(call_id)
        shared.release_trial(self.provider_id)
        if passed:
            self._publish("ok", 0.0, "the trial call after a rest succeeded")

    def _rest(self, until: float) -> None:
        if self._trial is not None:
            self._trial.rest(until)

    def _tell_last_health(self, future: concurrent.futures.Future[Any]) -> None:
        """Runs on the I/O loop: hand the fleet's last note, if any, to this actor."""
        if not future.cancelled() and future.exception() is None and future.result() is not None:
            tell_quietly(self.actor_ref, SharedHealth(future.result(), time.time()))

    def _publish(self, kind: str, for_s: float, reason: str) -> None:
        if self._shared is not None:
            note = HealthNote(
                self.provider_id, kind, for_s, reason, self._shared.origin, time.time()
            )
            self._shared.publish(note)

    def _tell_shared_health(self, note: HealthNote, arrived: float) -> None:
        """Runs on the I/O loop: hand another process's note to this actor."""
        tell_quietly(self.actor_ref, SharedHealth(note, arrived))

    def _shared_health(self, message: SharedHealth) -> None:
        """Rest, open the breaker or go out as another process found, for what is left of it."""
        note: HealthNote = message.note
        now = self._clock()
        left = max(0.0, note.for_s - (message.arrived - note.sent_at))
        seen = {
            "provider": self.provider_id,
            "seen_by": note.origin,
            "propagation_ms": round((message.arrived - note.sent_at) * 1000, 3),
        }
        if note.kind == "cooling" and left > 0:
            self._limiter.hold(now + left)
            self._rest(now + left)
            self._audit.event("provider_cooling", now=True, seconds=round(left, 3), **seen)
        elif note.kind == "open" and self._breaker.trip(now - (note.for_s - left)):
            self._rest(now + left)
            self._audit.event("breaker_opened", now=True, cooldown_s=round(left, 3), **seen)
        elif note.kind == "ok" and self._trial is not None:
            self._trial.recovered()
            self._audit.event("trial_passed", now=True, **seen)
        elif note.kind == "out" and self._out_reason is None:
            self._take_out(f"{note.reason} (seen by {note.origin})", None)
        self._announce(now)
        self._drain(now)

    def _take_out(self, reason: str, status: int | None) -> None:
        """Take the provider out of rotation until a reload, saying why."""
        self._out_reason = reason
        self._audit.event(
            "provider_out", now=True, provider=self.provider_id, reason=reason, status=status
        )

    def _current_health(self, now: float) -> Health:
        if self._out_reason is not None:
            return Health(Availability.OUT, 0.0, self._out_reason)
        if self._unchecked is not None:
            return self._unchecked
        if self._breaker.state is BreakerState.HALF_OPEN:
            return TRIAL
        if self._breaker.state is BreakerState.OPEN:
            return Health(Availability.OPEN, self._breaker.available_at(), "breaker open")
        if self._limiter.hold_until > now:
            return Health(Availability.COOLING, self._limiter.hold_until, "cooling down")
        return Health()

    def _announce(self, now: float, *, again: bool = False) -> None:
        """Tell the router of a change in health (``again``: even when unchanged)."""
        health = self._current_health(now)
        if health == self._health and not again:
            return
        checking = Availability.UNCHECKED in (health.state, self._health.state)
        self._health = health
        message = HealthChanged(self.slot, health)
        if self._router is not None:
            tell_quietly(self._router, message)
        if checking and self.supervisor is not None:
            tell_quietly(self.supervisor, message)  # to restart a crash as it stood

    def _cancel(self, message: CancelAttempt) -> None:
        """End an attempt in flight as ``cancelled``, or take a queued one out and say so."""
        call_id = message.call_id
        entry = self._in_flight.get(call_id)
        if entry is not None:
            entry.cancellation.cancel(message.reason)
            return
        queued = self._queue.remove(lambda call: call.call_id == call_id)
        if queued is not None:
            self._reject(queued, ErrorKind.CANCELLED, message.reason)

    def _reject(self, call: StartAttempt, kind: ErrorKind, reason: str) -> None:
        error = ProviderError(kind, reason, provider=self.provider_id)
        tell_quietly(
            call.reply_to,
            AttemptDone(call.call_id, call.task_id, self.provider_id, None, error, 0.0),
        )

    def release(self, reason: str) -> None:
        """Fail queued calls, cancel those in flight, and close the HTTP client."""
        for call in self._queue.clear():
            self._reject(call, ErrorKind.INTERNAL, f"the provider actor {reason}")
        for entry in list(self._in_flight.values()):
            entry.cancellation.cancel(f"the provider actor {reason}")  # it ends on the loop
        self._io.submit(self._client.aclose())
        if self._shared is not None:
            self._shared.unwatch(self.provider_id, self._tell_shared_health)

    def flush(self) -> None:
        """Write out buffered audit lines."""
        self._audit.flush()


def _limits(call: StartAttempt, now: float, *, whole: bool = False) -> AttemptLimits:
    """The bounds of an attempt started at ``now``: its own, within its share of the deadline."""
    left = max(0.001, call.deadline - now)
    total_s, why = (call.request_s, "") if call.request_s <= left else (left, call.deadline_why)
    first_token_s, whole_why = call.first_token_s, ""
    if whole and call.whole_bound_s is not None:
        first_token_s = min(call.whole_bound_s, first_token_s or call.whole_bound_s)
        whole_why = call.whole_why
    return AttemptLimits(
        call.first_byte_s,
        total_s,
        call.idle_s,
        first_token_s,
        call.min_chars_per_s,
        call.rate_window_s,
        why,
        whole_why,
    )


def _deliverer(sink: StreamSink, provider: str) -> ContentCallback:
    """Hand a stream's content to the caller's sink, each piece as ``provider``'s."""

    def deliver(piece: str | ToolCallDelta) -> None:
        if isinstance(piece, str):
            sink.delta(provider, piece)
        else:
            sink.tool_delta(provider, piece)

    return deliver


def _tell_io_done(
    provider_ref: pykka.ActorRef[Any],
    call: StartAttempt,
    provider_id: str,
    started: float,
    future: asyncio.Future[ChatResult | EmbedResult],
) -> None:
    """Runs on the I/O loop when an attempt ends: tell the provider actor how."""
    latency_ms = (time.perf_counter() - started) * 1000.0
    result: ChatResult | EmbedResult | None = None
    error = _failure_of(future, "the attempt")
    if error is None:
        result = future.result()
    else:
        error = error.for_provider(provider_id)
    tell_quietly(provider_ref, IoDone(call.call_id, result, error, latency_ms))


def _tell_lease_done(
    provider_ref: pykka.ActorRef[Any], asked_at: float, future: concurrent.futures.Future[Any]
) -> None:
    """Runs on the I/O loop when a lease ask ends: tell the provider actor how."""
    if future.cancelled() or future.exception() is not None:
        error = "cancelled" if future.cancelled() else str(future.exception())
        tell_quietly(provider_ref, LeaseDone(asked_at, None, error))
    else:
        tell_quietly(provider_ref, LeaseDone(asked_at, future.result()))


def _tell_trial_answer(
    provider_ref: pykka.ActorRef[Any], future: concurrent.futures.Future[bool]
) -> None:
    """Runs on the I/O loop when a trial token ask ends: tell the provider actor how."""
    won = None if future.cancelled() or future.exception() is not None else future.result()
    tell_quietly(provider_ref, TrialAnswer(won))


def _tell_check_done(
    provider_ref: pykka.ActorRef[Any],
    token: int,
    future: concurrent.futures.Future[ProviderError | None],
) -> None:
    """Runs on the I/O loop when a background check ends: tell the provider actor how."""
    error = _failure_of(future, "the check")
    if error is None:
        error = future.result()
    tell_quietly(provider_ref, CheckDone(token, error))


def _failure_of(
    future: concurrent.futures.Future[Any] | asyncio.Future[Any], what: str
) -> ProviderError | None:
    """Return why ``future`` (an attempt or a check) failed to finish, or ``None`` if it did."""
    if future.cancelled():
        return ProviderError(
            ErrorKind.INTERNAL, f"{what} was cancelled: the provider actor stopped"
        )
    exc = future.exception()
    if exc is None or isinstance(exc, ProviderError):
        return exc
    return ProviderError(
        ErrorKind.MALFORMED_RESPONSE,
        f"the answer could not be understood ({type(exc).__name__}: {exc})",
    )
