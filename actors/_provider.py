"""The provider actor: admits calls to one provider and runs them on the I/O loop.

It owns the provider's HTTP client, rate limiter, circuit breaker, concurrency cap and
bounded wait queue. It never blocks: an admitted call becomes a coroutine on the I/O loop,
whose end comes back here as `IoDone`; the actor reports it to the router that asked
(`AttemptDone`) before it updates its own state.
"""

from __future__ import annotations

import concurrent.futures
import functools
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pykka

from actors._child import SupervisedActor, tell_quietly
from actors._messages import AttemptDone, CancelAttempt, HealthChanged, IoDone, StartAttempt, Wake
from runtime._audit import AuditLog
from runtime._chat import ChatResult, EmbedRequest, EmbedResult
from runtime._config.schema import BreakerSettings, ProviderSettings
from runtime._errors import ErrorKind, ProviderError
from runtime._policy.breaker import Breaker, BreakerState
from runtime._policy.rate_limits import RateLimiter
from runtime._policy.routing import Availability, Health
from runtime._policy.wait_queue import WaitQueue
from runtime._transport.attempt import AttemptLimits, Cancellation, run_attempt, run_embed
from runtime._transport.http import ProviderClient, proxy_for
from runtime._transport.io_loop import IoLoop
from runtime._transport.signing import request_signer
from runtime.protocols import PROTOCOLS

DEFAULT_COOLDOWN_S = 1.0
"""How long to rest after a 429 that did not say how long."""


@dataclass(slots=True)
class _InFlight:
    call: StartAttempt
    future: concurrent.futures.Future[ChatResult | EmbedResult]
    tokens: int
    cancellation: Cancellation


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
    ) -> None:
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
            self._out_reason = f"{error.message}; then reload"
            self._audit.event(
                "provider_out", now=True, provider=provider_id, reason=self._out_reason
            )
        self._client = ProviderClient(
            settings.max_concurrency, connect_s, proxy_for(self._endpoint.base_url), signer
        )
        self._breaker = Breaker(breaker.failures, breaker.cooldown_s)
        self._limiter = RateLimiter.per_minute(settings.rpm, settings.tpm, clock())
        self._in_flight: dict[int, _InFlight] = {}
        self._queue: WaitQueue[StartAttempt] = WaitQueue()
        self._router: pykka.ActorRef[Any] | None = None
        self._health = Health()
        self._wake_at = float("inf")
        self._wake_token = 0

        self.handlers = {
            StartAttempt: self._admit,
            IoDone: self._finish,
            CancelAttempt: self._cancel,
            Wake: self._woken,
        }

    def _woken(self, message: Wake) -> None:
        if message.token == self._wake_token:
            self._wake_at = float("inf")
        self._drain(self._clock())

    def _admit(self, call: StartAttempt) -> None:
        self._router = call.reply_to
        now = self._clock()
        refusal = self._refusal(now)
        if refusal is not None:
            self._announce(now)  # the router may not know yet (out since start-up)
            self._reject(call, ErrorKind.UNAVAILABLE, refusal)
            return
        if len(self._queue) >= self._settings.max_queue:
            self._reject(
                call, ErrorKind.UNAVAILABLE, f"its queue is full ({len(self._queue)} waiting)"
            )
            return
        tokens = call.request.estimated_tokens()
        idle = not self._queue and len(self._in_flight) < self._settings.max_concurrency
        if idle and self._limiter.wait_s(tokens, now) == 0:
            self._start(call, tokens, now)
            return
        wait = self._queue_wait_s(tokens, now)
        if now + wait >= call.deadline:
            self._reject(
                call,
                ErrorKind.UNAVAILABLE,
                f"its rate limits would hold the call {wait:.1f} s, past the task's deadline",
            )
            return
        self._queue.push(call, tokens, call.deadline)
        self._wake(min(now + wait, call.deadline))

    def _refusal(self, now: float) -> str | None:
        if self._out_reason is not None:
            return f"out of rotation: {self._out_reason}"
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
            wait = self._limiter.wait_s(self._queue.first().tokens, now)
            if wait > 0:
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
        if self._breaker.on_start(now) is BreakerState.HALF_OPEN:
            self._audit.event("breaker_half_open", now=True, provider=self.provider_id)
        self._limiter.take(tokens, now)
        cancellation = Cancellation(self._io.loop)
        future: concurrent.futures.Future[ChatResult | EmbedResult]
        try:
            future = self._io.submit(self._work(call, _limits(call, now), cancellation))
        except ProviderError as error:
            self._reject_started(call, tokens, error, now)
            return
        self._in_flight[call.call_id] = _InFlight(call, future, tokens, cancellation)
        future.add_done_callback(
            functools.partial(
                _tell_io_done, self.actor_ref, call, self.provider_id, time.perf_counter()
            )
        )

    def _work(
        self, call: StartAttempt, limits: AttemptLimits, cancellation: Cancellation
    ) -> Coroutine[Any, Any, ChatResult | EmbedResult]:
        """Build the attempt's coroutine (raising `ProviderError` for a request it cannot send)."""
        request = call.request
        if isinstance(request, EmbedRequest):
            embed = self._protocol.embed
            if embed is None:
                raise ProviderError(ErrorKind.BAD_REQUEST, "this provider has no embeddings")
            embed_call = embed.request(self._endpoint, request)
            return run_embed(self._client, embed, embed_call, limits, cancellation=cancellation)
        stream = self._settings.stream and (
            call.sink is not None or not self._protocol.stream_on_demand
        )
        http_call = self._protocol.chat_request(self._endpoint, request, stream)
        on_text = (
            None if call.sink is None else functools.partial(call.sink.delta, self.provider_id)
        )
        claim = None if call.gate is None else functools.partial(call.gate.claim, call.call_id)
        return run_attempt(
            self._client,
            self._protocol,
            http_call,
            limits,
            on_text,
            cancellation=cancellation,
            claim=claim,
        )

    def _reject_started(
        self, call: StartAttempt, tokens: int, error: ProviderError, now: float
    ) -> None:
        """Give back what `_start` took for a call that could not be sent, and report it."""
        self._limiter.settle(tokens, 0, now)
        self._breaker.on_neutral()
        self._reject(call, error.kind, error.message)

    def _finish(self, done: IoDone) -> None:
        entry = self._in_flight.pop(done.call_id, None)
        if entry is None:
            return
        call = entry.call
        report = AttemptDone(
            call.call_id, call.task_id, self.provider_id, done.result, done.error, done.latency_ms
        )
        tell_quietly(call.reply_to, report)
        now = self._clock()
        if done.result is not None:
            self._on_success(done.result, entry, now)
        elif done.error is not None:
            self._on_error(done.error, now)
        self._announce(now)
        self._drain(now)

    def _on_success(self, result: ChatResult | EmbedResult, entry: _InFlight, now: float) -> None:
        if self._breaker.on_success() is BreakerState.CLOSED:
            self._audit.event("breaker_closed", now=True, provider=self.provider_id)
        self._limiter.settle(entry.tokens, result.usage.total_tokens or None, now)
        rest = result.rate_limits.exhausted_for_s() if isinstance(result, ChatResult) else None
        if rest:
            self._limiter.hold(now + rest)

    def _on_error(self, error: ProviderError, now: float) -> None:
        kind = error.kind
        if kind is ErrorKind.AUTH:
            self._out_reason = (
                f"its key was rejected (HTTP {error.status}); set a valid key in "
                f"{self._settings.key_hint()} and reload"
            )
            self._audit.event(
                "provider_out",
                now=True,
                provider=self.provider_id,
                reason=self._out_reason,
                status=error.status,
            )
            self._breaker.on_neutral()
        elif kind is ErrorKind.RATE_LIMITED:
            rest = error.retry_after_s if error.retry_after_s is not None else DEFAULT_COOLDOWN_S
            self._limiter.hold(now + rest)
            self._audit.event(
                "provider_cooling", now=True, provider=self.provider_id, seconds=round(rest, 3)
            )
            self._breaker.on_neutral()
        elif kind.counts_against_health:
            if self._breaker.on_failure(now) is BreakerState.OPEN:
                self._audit.event(
                    "breaker_opened",
                    now=True,
                    provider=self.provider_id,
                    failures=self._breaker.streak,
                    cooldown_s=self._breaker.cooldown_s,
                    last_error=kind.value,
                )
        else:
            self._breaker.on_neutral()

    def _current_health(self, now: float) -> Health:
        if self._out_reason is not None:
            return Health(Availability.OUT, 0.0, self._out_reason)
        if self._breaker.state is not BreakerState.CLOSED:
            return Health(Availability.OPEN, self._breaker.available_at(), "breaker open")
        if self._limiter.hold_until > now:
            return Health(Availability.COOLING, self._limiter.hold_until, "cooling down")
        return Health()

    def _announce(self, now: float) -> None:
        health = self._current_health(now)
        if health == self._health:
            return
        self._health = health
        if self._router is not None:
            tell_quietly(self._router, HealthChanged(self.slot, health))

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

    def flush(self) -> None:
        """Write out buffered audit lines."""
        self._audit.flush()


def _limits(call: StartAttempt, now: float) -> AttemptLimits:
    """The bounds of an attempt started at ``now``: its own, within its share of the deadline."""
    left = max(0.001, call.deadline - now)
    total_s, why = (call.request_s, "") if call.request_s <= left else (left, call.deadline_why)
    return AttemptLimits(
        call.first_byte_s,
        total_s,
        call.idle_s,
        call.first_token_s,
        call.min_chars_per_s,
        call.rate_window_s,
        why,
    )


def _tell_io_done(
    provider_ref: pykka.ActorRef[Any],
    call: StartAttempt,
    provider_id: str,
    started: float,
    future: concurrent.futures.Future[ChatResult | EmbedResult],
) -> None:
    """Runs on the I/O loop when an attempt ends: tell the provider actor how."""
    latency_ms = (time.perf_counter() - started) * 1000.0
    result: ChatResult | EmbedResult | None = None
    error: ProviderError | None = None
    if future.cancelled():
        error = ProviderError(
            ErrorKind.INTERNAL, "the attempt was cancelled: the provider actor stopped"
        )
    else:
        exc = future.exception()
        if exc is None:
            result = future.result()
        elif isinstance(exc, ProviderError):
            error = exc
        else:
            error = ProviderError(
                ErrorKind.MALFORMED_RESPONSE,
                f"the answer could not be understood ({type(exc).__name__}: {exc})",
            )
    if error is not None:
        error = error.for_provider(provider_id)
    tell_quietly(provider_ref, IoDone(call.call_id, result, error, latency_ms))
