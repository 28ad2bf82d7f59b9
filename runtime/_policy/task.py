"""One task's progress through its chain of providers, and how it ends.

Plain code: the router actor keeps a `TaskState` per task and asks it for the records,
the reply, the error and the terminal audit fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from runtime._audit import Redactor
from runtime._chat import (
    AttemptRecord,
    ChatRequest,
    ChatResult,
    EmbedReply,
    EmbedRequest,
    EmbedResult,
    Reply,
    Usage,
)
from runtime._config.schema import Config, ProviderSettings
from runtime._errors import (
    DeadlineExceededError,
    ErrorKind,
    ProviderError,
    StreamBrokenError,
    TaskFailedError,
)
from runtime._policy.hedging import ContentGate
from runtime._policy.provider_table import Routing
from runtime._policy.routing import Availability, Health, ProviderProgress
from runtime._rows import AttemptRow, TaskRow
from runtime._structured import OutputMismatchError
from runtime._task_spec import ReplyTo, TaskSpec
from runtime.protocols import PROTOCOLS

SCHEMA_MISMATCH = "schema_mismatch"
"""The code of an answer that does not match the task's schema: tried once more at once."""

QUOTA_ADVICE = (
    "its account's quota or credit is used up; settle the bill or raise the limit with the "
    "provider, then reload"
)

ALL_OPEN_ADVICE = (
    "every provider of the role is failing and resting behind its circuit breaker; retry "
    "once the first is tried again (see above), or cast another provider to the role"
)


@dataclass(slots=True)
class TaskState:
    """Everything the router knows about one running task."""

    spec: TaskSpec
    reply: ReplyTo
    routing: Routing
    chain: tuple[str, ...]
    deadline: float
    progress: dict[str, ProviderProgress] = field(default_factory=dict)
    attempts: list[AttemptRecord] = field(default_factory=list)
    rows: list[AttemptRow] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    calls: dict[int, str] = field(default_factory=dict)
    """The attempts in flight, by call id: their provider. More than one while hedging."""
    dropped: dict[int, str] = field(default_factory=dict)
    """Calls in flight the router has cancelled, and why: they end as ``cancelled``."""
    gate: ContentGate | None = None
    """A hedged task's: which of its attempts sends content (claimed on the I/O thread)."""
    content_from: int | None = None
    """The call whose content the task took (known to the router once it is told)."""
    hedging: bool = False
    """A hedge started and no attempt has sent content since: the next to do so won it."""
    ended: TaskRow | None = None
    """The terminal row of a task that ended with calls still in flight (its metrics wait
    for their records)."""
    hedge_after_s: float | None = None
    """When a second provider starts beside a first that has sent no content (the role's)."""
    parsed: Any = None
    """The answer's value, validated against the task's schema (structured output)."""
    wake_token: int = 0
    restart_reason: str = ""
    """Set when a stream broke and the next attempt must tell the caller to start over."""
    finish_reason: str | None = None
    """Why the answering attempt's model stopped (for traces)."""
    requests: dict[str, ChatRequest | EmbedRequest] = field(default_factory=dict)
    """Each provider's request, built once (`request_for`): the budget's hold and the
    attempt both need it, and it depends only on the provider, the spec and the config."""

    def __post_init__(self) -> None:
        self.progress = {pid: ProviderProgress() for pid in self.chain}
        self.hedge_after_s = self.routing.config.hedge_after_s(self.spec.role)

    @property
    def config(self) -> Config:
        """The config snapshot the task started with."""
        return self.routing.config

    @property
    def task_id(self) -> str:
        """The task's id."""
        return self.spec.task_id

    @property
    def live_calls(self) -> list[int]:
        """The calls in flight the task still waits on (not those it cancelled)."""
        return [call_id for call_id in self.calls if call_id not in self.dropped]

    def request_for(self, provider: str) -> ChatRequest | EmbedRequest:
        """The request for ``provider``: call tuning over role's over provider's."""
        request = self.requests.get(provider)
        if request is None:
            request = self.requests[provider] = self._request(provider)
        return request

    def _request(self, provider: str) -> ChatRequest | EmbedRequest:
        embed = self.spec.embed
        if embed is not None:
            return EmbedRequest(
                embed.texts, self._model(provider), embed.dimensions, embed.input_type
            )
        spec = self.spec
        tuning = spec.tuning.over(self.config.tuning_for(spec.role, provider))
        return ChatRequest(
            spec.messages, self._model(provider), spec.system, tuning,
            spec.tools, spec.tool_choice, spec.output,
        )  # fmt: skip

    def checked(self, result: ChatResult) -> ProviderError | None:
        """Check an answer against the task's schema: keep the value, or return the mismatch.

        An answer that calls tools is not checked (its JSON comes in a later turn). The
        mismatch is a ``malformed_response`` the task tries once more on the same provider
        (`SCHEMA_MISMATCH`), carrying the tokens the answer was billed.
        """
        schema = self.spec.output
        if schema is None or result.tool_calls:
            return None
        try:
            self.parsed = schema.parse(result.text)
        except OutputMismatchError as exc:
            error = ProviderError(
                ErrorKind.MALFORMED_RESPONSE,
                f"the answer does not match the schema {schema.name!r}: {exc}",
                status=200,
                code=SCHEMA_MISMATCH,
            )
            error.partial_usage = result.usage
            return error
        return None

    def record(
        self,
        provider: str,
        *,
        result: ChatResult | EmbedResult | None,
        error: ProviderError | None,
        latency_ms: float,
        redactor: Redactor,
        wall: float,
        dropped: str | None = None,
    ) -> AttemptRow:
        """Add the records of an attempt that just ended (ending at ``wall``); return its row.

        An attempt the router ``dropped`` (cancelled, saying why) is ``cancelled`` however
        it ended, with the tokens it had used as far as they are known: all of them if it
        had answered, what its stream had reported if not, and then an unknown cost.
        """
        model = result.model if result is not None and result.model else self._model(provider)
        record = _record_of(provider, model, result, error, latency_ms, dropped)
        if record.message:
            record = dataclasses.replace(record, message=redactor.text(record.message))
        self.attempts.append(record)
        usage = result.usage if result is not None else _partial(error)
        self.usage = self.usage + usage
        settings = self.config.providers[provider]
        cost = self.config.price_table.cost(
            # Azure answers with its deployment's model, priced as the config names it
            self._model(provider) if settings.type == "azure_openai" else model,
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_tokens,
            usage.cache_write_tokens,
            provider_type=settings.type,
        )
        if isinstance(result, ChatResult) and not result.usage_known:
            cost = None  # tokens not counted: a price would make it zero, which it is not
        if record.outcome == ErrorKind.CANCELLED and usage == Usage():
            cost = None  # it may have been billed: unknown, never zero
        row = AttemptRow(
            ts=wall,
            task_id=self.task_id,
            workflow_id=self.spec.workflow_id,
            role=self.spec.role,
            attempt=len(self.attempts),
            provider=provider,
            model=model,
            outcome=record.outcome,
            status=record.status,
            latency_ms=round(latency_ms, 3),
            ttft_ms=_ttft(result),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            fallback=self.is_fallback(provider),
            cost_usd=None if cost is None else round(cost, 9),
            message=record.message,
            tenant=self.spec.tenant,
        )
        self.rows.append(row)
        return row

    def _model(self, provider: str) -> str:
        """The model ``provider`` is asked for: the pinned one, else its configured one."""
        settings = self.config.providers[provider]
        if self.spec.model is not None and provider == self.spec.provider:
            return self.spec.model
        if self.spec.embed is not None and settings.embedding_model:
            return settings.embedding_model
        return settings.model

    def is_fallback(self, provider: str) -> bool:
        """Whether ``provider`` serves this task only because an earlier one did not."""
        return bool(self.chain) and provider != self.chain[0]

    def answer(self, provider: str, result: ChatResult, now: float) -> Reply:
        """Build the caller's reply from the answering attempt."""
        self.finish_reason = result.finish_reason
        return Reply(
            text=result.text,
            role=self.spec.role,
            provider=provider,
            model=result.model or self._model(provider),
            usage=self.usage,
            latency_ms=self.latency_ms(now),
            attempts=tuple(self.attempts),
            task_id=self.task_id,
            finish_reason=result.finish_reason,
            cost_usd=self._cost(),
            ttft_ms=_ttft(result),
            tool_calls=result.tool_calls,
            parsed=self.parsed,
        )

    def embed_answer(self, provider: str, result: EmbedResult, now: float) -> EmbedReply:
        """Build the caller's embeddings from the answering attempt."""
        return EmbedReply(
            vectors=result.vectors,
            role=self.spec.role,
            provider=provider,
            model=result.model or self.rows[-1].model,
            usage=self.usage,
            latency_ms=self.latency_ms(now),
            attempts=tuple(self.attempts),
            task_id=self.task_id,
            cost_usd=self._cost(),
        )

    def broken(self, error: ProviderError) -> StreamBrokenError:
        """Build the error for a stream that broke after its first text."""
        return StreamBrokenError(
            partial_text=error.partial_text,
            tool_calls=error.partial_tool_calls,
            task_id=self.task_id,
            role=self.spec.role,
            reason=f"the stream from {error.provider} broke after its first text: {error}",
            attempts=tuple(self.attempts),
            advice=["retry the task, or ask with on_broken='restart' to go on elsewhere"],
        )

    def latency_ms(self, now: float) -> float:
        """Milliseconds since the task was submitted."""
        return (now - self.spec.submitted_at) * 1000.0

    def failure(self, reason: str, *, deadline: bool, health: dict[str, Health]) -> TaskFailedError:
        """Build the error for a task that got no answer, with advice per provider."""
        kind = DeadlineExceededError if deadline else TaskFailedError
        return kind(
            task_id=self.task_id,
            role=self.spec.role,
            reason=reason,
            attempts=tuple(self.attempts),
            advice=self.advice(health),
        )

    def advice(self, health: dict[str, Health]) -> list[str]:
        """Say, per provider that needs it, what to do."""
        lines: list[str] = []
        for pid in self.chain:
            kinds = [a.outcome for a in self.attempts if a.provider == pid]
            settings = self.config.providers[pid]
            state = health.get(pid)
            if ErrorKind.AUTH in kinds or (state is not None and not state.usable):
                lines.append(_advice_out(pid, settings.key_hint(), state))
            elif ErrorKind.QUOTA in kinds:
                lines.append(f"{pid}: {QUOTA_ADVICE}")
            elif ErrorKind.NOT_FOUND in kinds:
                lines.append(f'{pid}: check its model "{self._model(pid)}" and base_url')
            elif ErrorKind.PERMISSION in kinds:
                lines.append(
                    f"{pid}: the account lacks access to this model or feature; check its plan"
                )
            elif ErrorKind.BAD_REQUEST in kinds:
                lines.append(f"{pid}: the provider rejected the request; see its message above")
            elif ErrorKind.NETWORK in kinds:
                lines.append(f"{pid}: check that {settings.base_url or 'its API'} is reachable")
        return lines or self._general_advice(health)

    def _general_advice(self, health: dict[str, Health]) -> list[str]:
        """What to do when no provider needs anything of its own."""
        if self.chain and all(_breaker_open(health.get(pid)) for pid in self.chain):
            return [ALL_OPEN_ADVICE]
        if self.attempts:
            return ["the providers are failing or slow; retry later or raise the deadline"]
        return []

    def task_row(
        self, outcome: str, provider: str | None, now: float, wall: float, error: str | None
    ) -> TaskRow:
        """Return the task's one terminal row (ended at monotonic ``now``, Unix ``wall``)."""
        model = self._model(provider) if provider is not None else None
        if provider is not None and self.attempts and self.attempts[-1].provider == provider:
            model = self.attempts[-1].model
        return TaskRow(
            ts=wall,
            task_id=self.task_id,
            workflow_id=self.spec.workflow_id,
            role=self.spec.role,
            outcome=outcome,
            provider=provider,
            model=model,
            attempts=len(self.attempts),
            input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens,
            cached_tokens=self.usage.cached_tokens,
            latency_ms=round(self.latency_ms(now), 3),
            fallback=provider is not None and self.is_fallback(provider),
            cost_usd=self._cost(),
            error=error,
        )

    def _cost(self) -> float | None:
        known = [row.cost_usd for row in self.rows if row.cost_usd is not None]
        return round(sum(known), 9) if known else None

    def trail(self) -> list[str]:
        """Return ``provider:outcome`` for each attempt, in order."""
        return [f"{a.provider}:{a.outcome}" for a in self.attempts]


def _record_of(  # noqa: PLR0917 - the parts of one record
    provider: str,
    model: str,
    result: ChatResult | EmbedResult | None,
    error: ProviderError | None,
    latency_ms: float,
    dropped: str | None,
) -> AttemptRecord:
    if dropped is not None:
        said = "it had answered" if result is not None else str(error.message if error else "")
        message = f"cancelled ({dropped}); {said}" if said else f"cancelled ({dropped})"
        return AttemptRecord(provider, model, ErrorKind.CANCELLED.value, None, latency_ms, message)
    if result is not None:
        return AttemptRecord(provider, model, "ok", 200, latency_ms)
    assert error is not None  # noqa: S101 - an attempt ends with one or the other
    return AttemptRecord(provider, model, error.kind.value, error.status, latency_ms, error.message)


def _partial(error: ProviderError | None) -> Usage:
    """The tokens a failed attempt had used, as far as its provider reported them."""
    if error is None or error.partial_usage is None:
        return Usage()
    return error.partial_usage


def _ttft(result: ChatResult | EmbedResult | None) -> float | None:
    if isinstance(result, ChatResult) and result.ttft_ms:
        return round(result.ttft_ms, 3)
    return None


def _breaker_open(state: Health | None) -> bool:
    return state is not None and state.state in (Availability.OPEN, Availability.HALF_OPEN)


def _advice_out(pid: str, key_hint: str, state: Health | None) -> str:
    if state is not None and state.state is Availability.UNCHECKED:
        return (
            f"{pid}: not checked yet ({state.reason}); it is checked again in the "
            "background and joins once a check passes"
        )
    if state is not None and not state.usable and "key" not in state.reason:
        return f"{pid}: {state.reason}"
    return f"{pid}: its key was rejected; set a valid key in {key_hint}, then reload"


def eligible_chain(
    config: Config, spec: TaskSpec, chain: tuple[str, ...]
) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """Return the providers of ``chain`` that can take the task, and why others cannot.

    An embeddings task keeps only providers with an embeddings API and an
    ``embedding_model``, and only those whose model is the first one's, so vectors
    never mix. A task with images keeps only providers that take images, and one with
    images by URL only those that can fetch them; a task with tools only providers that
    take tools.
    """
    kept: list[str] = []
    skipped: list[tuple[str, str]] = []
    first_model: str | None = None
    for pid in chain:
        settings = config.providers[pid]
        if spec.embed is not None:
            reason = _cannot_embed(settings, first_model)
            first_model = first_model or (settings.embedding_model if reason is None else None)
        else:
            reason = _cannot_chat(settings, spec)
        if reason is None:
            kept.append(pid)
        else:
            skipped.append((pid, reason))
    return tuple(kept), skipped


def _cannot_embed(settings: ProviderSettings, first_model: str | None) -> str | None:
    """Say why a provider cannot serve an embeddings task (``None``: it can)."""
    model = settings.embedding_model
    if PROTOCOLS[settings.kind.protocol].embed is None:
        return f"{settings.type} has no embeddings API"
    if not model:
        return "it has no embedding_model set"
    if first_model is not None and model != first_model:
        return f"its embedding model {model} is not {first_model} (vectors never mix)"
    return None


def _cannot_chat(settings: ProviderSettings, spec: TaskSpec) -> str | None:
    """Say why a provider cannot serve a chat task (``None``: it can)."""
    protocol = PROTOCOLS[settings.kind.protocol]
    if spec.tools and not (protocol.tools and settings.tools is not False):
        return "it does not take tools"
    if not any(m.has_images for m in spec.messages):
        return None
    if not (protocol.images and settings.images is not False):
        return "it does not take images"
    if any(m.has_remote_images for m in spec.messages) and not protocol.image_urls:
        return "it cannot fetch images by URL (give them as base64 data)"
    return None
