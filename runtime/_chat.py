"""The normalized shapes of a chat: what callers send, what providers answer.

Every value here is immutable, so it can travel between actors as a message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MessageRole = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation."""

    role: MessageRole
    content: str

    @classmethod
    def coerce(cls, value: Message | Mapping[str, Any]) -> Message:
        """Accept a `Message` or a ``{"role": ..., "content": ...}`` mapping."""
        if isinstance(value, Message):
            return value
        role = value.get("role")
        content = value.get("content")
        if role not in ("system", "user", "assistant"):
            msg = f"message role must be 'system', 'user' or 'assistant', not {role!r}"
            raise ValueError(msg)
        if not isinstance(content, str):
            msg = f"message content must be a string, not {type(content).__name__}"
            raise TypeError(msg)
        return cls(role=role, content=content)


@dataclass(frozen=True, slots=True)
class Tuning:
    """The parameters a role or a call may override; ``None`` means "not set here"."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] | None = None

    def over(self, base: Tuning) -> Tuning:
        """Return these values where set, else ``base``'s."""
        return Tuning(
            temperature=self.temperature if self.temperature is not None else base.temperature,
            max_tokens=self.max_tokens if self.max_tokens is not None else base.max_tokens,
            top_p=self.top_p if self.top_p is not None else base.top_p,
            stop=self.stop if self.stop is not None else base.stop,
        )


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What one attempt asks of one provider: the conversation, the model and the tuning."""

    messages: tuple[Message, ...]
    model: str
    system: str | None = None
    tuning: Tuning = field(default_factory=Tuning)

    @staticmethod
    def split_system(
        messages: Iterable[Message], system: str | None
    ) -> tuple[tuple[Message, ...], str | None]:
        """Lift system messages out of ``messages`` and join them after ``system``."""
        turns: list[Message] = []
        systems: list[str] = [system] if system else []
        for message in messages:
            if message.role == "system":
                systems.append(message.content)
            else:
                turns.append(message)
        return tuple(turns), ("\n\n".join(systems) if systems else None)

    def estimated_tokens(self) -> int:
        """A cheap upper-leaning estimate of the tokens this call will count against a TPM limit.

        Four characters to a token for the prompt, plus the completion budget
        (``max_tokens``, or 1,024 when unset), as providers themselves reserve.
        """
        chars = sum(len(m.content) for m in self.messages) + len(self.system or "")
        return chars // 4 + 1 + (self.tuning.max_tokens or 1024)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one call used, normalized across providers."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    """Input tokens served from the provider's prompt cache (part of ``input_tokens``)."""

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        """Return the counts as a JSON-ready mapping."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
        }


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What a provider's rate-limit headers said about its remaining budget."""

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_s: float | None = None
    """Seconds until the request budget refills."""
    reset_tokens_s: float | None = None
    """Seconds until the token budget refills."""

    def exhausted_for_s(self) -> float | None:
        """Seconds to hold off sending, when the provider says a budget is spent."""
        waits = []
        if self.remaining_requests == 0 and self.reset_requests_s is not None:
            waits.append(self.reset_requests_s)
        if self.remaining_tokens == 0 and self.reset_tokens_s is not None:
            waits.append(self.reset_tokens_s)
        return max(waits) if waits else None


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A provider's answer to one attempt, as its protocol parsed it."""

    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    rate_limits: RateLimitInfo = field(default_factory=RateLimitInfo)
    ttft_ms: float | None = None
    """Milliseconds from the start of the attempt to the first text (streamed answers)."""


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What one attempt of a task did: which provider, how it ended, how long it took."""

    provider: str
    model: str
    outcome: str
    """``"ok"`` or the error kind (see `ErrorKind`)."""
    status: int | None = None
    latency_ms: float = 0.0
    message: str = ""

    @property
    def ok(self) -> bool:
        """Whether this attempt answered."""
        return self.outcome == "ok"

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready mapping."""
        return {
            "provider": self.provider,
            "model": self.model,
            "outcome": self.outcome,
            "error_kind": None if self.ok else self.outcome,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 3),
            "message": self.message,
        }

    def __str__(self) -> str:
        if self.ok:
            return f"{self.provider} ({self.model}): ok in {self.latency_ms:.0f} ms"
        status = f" HTTP {self.status}" if self.status is not None else ""
        return f"{self.provider} ({self.model}): {self.outcome}{status}: {self.message}"


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to a task: the text, who gave it, and what it took."""

    text: str
    role: str
    provider: str
    model: str
    usage: Usage
    latency_ms: float
    attempts: tuple[AttemptRecord, ...]
    task_id: str
    finish_reason: str | None = None
    cost_usd: float | None = None
    """What the task's attempts cost, at the config's prices (``None``: no price known)."""

    def to_dict(self) -> dict[str, Any]:
        """Return the reply as the JSON object ``callboard ask --json`` prints."""
        return {
            "text": self.text,
            "role": self.role,
            "provider": self.provider,
            "model": self.model,
            "usage": self.usage.to_dict(),
            "latency_ms": round(self.latency_ms, 3),
            "attempts": [a.to_dict() for a in self.attempts],
            "finish_reason": self.finish_reason,
            "cost_usd": self.cost_usd,
            "task_id": self.task_id,
        }


ProgressState = Literal[
    "running", "retrying", "fallback", "attempt_failed", "waiting",
    "ok", "failed", "deadline", "cancelled",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Progress:
    """A step in a task's life, reported to the caller's ``on_progress`` as it happens.

    ``state`` is ``running`` (first attempt started), ``retrying`` (the same provider
    again), ``fallback`` (another provider), ``attempt_failed`` (``detail`` is the error
    kind), ``waiting`` (every provider resting or backing off; ``detail`` says how long),
    or how the task ended: ``ok``, ``failed``, ``deadline``, ``cancelled``.
    """

    task_id: str
    state: ProgressState
    provider: str | None = None
    model: str | None = None
    attempt: int = 0
    """The number of the attempt this is about (1 for the first)."""
    detail: str = ""
