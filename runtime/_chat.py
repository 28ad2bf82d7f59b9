"""The normalized shapes of a chat: what callers send, what providers answer.

Every value here is immutable, so it can travel between actors as a message.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from runtime._record import record
from runtime._tools import Tool, ToolCall, ToolCallDelta

if TYPE_CHECKING:
    from runtime._structured import Schema

MessageRole = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text in a message; ``cache`` marks the end of a prefix worth caching."""

    text: str
    cache: bool = False


_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image in a message: a URL, or base64 ``data`` with its ``media_type``.

    ``cache`` marks the end of a prefix worth caching, as for text.
    """

    url: str | None = None
    data: str | None = None
    """Base64, without a ``data:`` prefix."""
    media_type: str | None = None
    """E.g. ``image/png``; needed with ``data``."""
    cache: bool = False

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            msg = "an image part needs exactly one of url and data"
            raise ValueError(msg)
        if self.data is not None and not self.media_type:
            msg = "an image given as data needs its media_type, e.g. image/png"
            raise ValueError(msg)

    def data_url(self) -> str:
        """Return the image as a URL (``data:`` URL for inline images)."""
        return self.url if self.url is not None else f"data:{self.media_type};base64,{self.data}"

    def inline(self) -> tuple[str, str] | None:
        """Return ``(media_type, base64 data)`` for inline data or a ``data:`` URL, else None."""
        if self.data is not None:
            return self.media_type or "", self.data
        found = _DATA_URL.fullmatch(self.url or "")
        return (found["type"], found["data"]) if found else None

    @property
    def remote(self) -> bool:
        """Whether the image is a URL to fetch (not inline data or a ``data:`` URL)."""
        return self.inline() is None


Part = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The answer to a `ToolCall`, to send back in the next turn: ``ToolResult(call.id, ...)``.

    ``content`` is the tool's output as text (or message parts); ``is_error`` says the tool
    failed, which providers that can show it to the model do.
    """

    call_id: str
    content: str | tuple[Part, ...]
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation: text, or parts (text, images, cache marks).

    An ``assistant`` turn may hold the ``tool_calls`` the model made; a ``tool`` turn is
    the result of one of them (``tool_call_id``, and ``tool_name``, which callboard fills
    in from the call), ``is_error`` when the tool failed.
    """

    role: MessageRole
    content: str | tuple[Part, ...]
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    tool_name: str | None = None
    is_error: bool = False

    @property
    def parts(self) -> tuple[Part, ...]:
        """Return the content as parts (plain text is one `TextPart`)."""
        return (TextPart(self.content),) if isinstance(self.content, str) else self.content

    @property
    def text(self) -> str:
        """Return the text of the message, parts joined by blank lines."""
        if isinstance(self.content, str):
            return self.content
        return "\n\n".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def has_images(self) -> bool:
        """Whether the message holds an image."""
        return any(isinstance(p, ImagePart) for p in self.parts)

    @property
    def has_remote_images(self) -> bool:
        """Whether the message holds an image given by a URL to fetch."""
        return any(isinstance(p, ImagePart) and p.remote for p in self.parts)

    @classmethod
    def coerce(cls, value: Message | ToolResult | Mapping[str, Any]) -> Message:
        """Accept a `Message`, a `ToolResult`, or a ``{"role": ..., "content": ...}`` mapping.

        Content is a string, or a list of parts: `TextPart` / `ImagePart` values or
        mappings ``{"type": "text", "text": ..., "cache": true}``,
        ``{"type": "image", "url": ...}`` or ``{"type": "image", "data": ...,
        "media_type": "image/png"}``. OpenAI's shapes are taken too: an assistant turn's
        ``tool_calls`` (``{"id", "function": {"name", "arguments"}}`` or `ToolCall`
        values), and ``{"role": "tool", "tool_call_id": ..., "content": ...}``.
        """
        if isinstance(value, Message):
            return value
        if isinstance(value, ToolResult):
            return cls("tool", _content(value.content), tool_call_id=value.call_id,
                       is_error=value.is_error)  # fmt: skip
        role = value.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            msg = f"message role must be 'system', 'user', 'assistant' or 'tool', not {role!r}"
            raise ValueError(msg)
        content = value.get("content")
        if role == "tool":
            call_id = value.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                msg = "a tool message needs the tool_call_id of the call it answers"
                raise ValueError(msg)
            return cls("tool", _content(content), tool_call_id=call_id,
                       is_error=bool(value.get("is_error", False)))  # fmt: skip
        calls = tuple(_tool_call(c) for c in value.get("tool_calls") or ())
        if calls and role != "assistant":
            msg = "only an assistant message may hold tool_calls"
            raise ValueError(msg)
        if content is None and calls:
            content = ""
        return cls(role=role, content=_content(content), tool_calls=calls)


def _content(content: object) -> str | tuple[Part, ...]:
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        return tuple(_part(p) for p in content)
    msg = f"message content must be a string or a list of parts, not {type(content).__name__}"
    raise TypeError(msg)


def _tool_call(value: object) -> ToolCall:
    if isinstance(value, ToolCall):
        return value
    if not isinstance(value, Mapping):
        msg = f"a tool call must be a ToolCall or a mapping, not {type(value).__name__}"
        raise TypeError(msg)
    function = value.get("function", value)
    if not isinstance(function, Mapping):
        function = {}
    call_id, name = value.get("id"), function.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        msg = f"a tool call needs an id and a function name: {dict(value)!r}"
        raise ValueError(msg)  # noqa: TRY004 - a bad value, reported as such
    arguments = function.get("arguments", {})
    return ToolCall.of(call_id, name, arguments if isinstance(arguments, str) else dict(arguments))


def with_tool_names(messages: Iterable[Message]) -> tuple[Message, ...]:
    """Fill each tool turn's ``tool_name`` from the call it answers, earlier on.

    Raises:
        ValueError: a tool turn answers no call made earlier in the conversation.
    """
    names: dict[str, str] = {}
    turns = []
    for message in messages:
        for call in message.tool_calls:
            names[call.id] = call.name
        if message.role == "tool":
            name = names.get(message.tool_call_id or "")
            if name is None:
                msg = (
                    f"the tool result for call {message.tool_call_id!r} answers no tool call "
                    "made earlier in the conversation"
                )
                raise ValueError(msg)
            turns.append(dataclasses.replace(message, tool_name=name))
        else:
            turns.append(message)
    return tuple(turns)


def _part(value: object) -> Part:
    if isinstance(value, (TextPart, ImagePart)):
        return value
    if not isinstance(value, Mapping):
        msg = f"a message part must be a mapping or a part, not {type(value).__name__}"
        raise TypeError(msg)
    kind = value.get("type")
    cache = bool(value.get("cache", False))
    if kind == "text" and isinstance(value.get("text"), str):
        return TextPart(value["text"], cache)
    if kind == "image":
        return ImagePart(value.get("url"), value.get("data"), value.get("media_type"), cache)
    msg = f"unknown message part {dict(value)!r}: use type 'text' or 'image'"
    raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Tuning:
    """The parameters a role or a call may override; ``None`` means "not set here"."""

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] | None = None

    def over(self, base: Tuning) -> Tuning:
        """Return these values where set, else ``base``'s."""
        if self == NO_TUNING:  # a call that sets nothing: the base as it is
            return base
        return Tuning(
            temperature=self.temperature if self.temperature is not None else base.temperature,
            max_tokens=self.max_tokens if self.max_tokens is not None else base.max_tokens,
            top_p=self.top_p if self.top_p is not None else base.top_p,
            stop=self.stop if self.stop is not None else base.stop,
        )


NO_TUNING = Tuning()
"""A tuning that sets nothing (a call's, when it sets none: the role's and provider's apply)."""


@record
class ChatRequest:
    """What one attempt asks of one provider: the conversation, the model and the tuning.

    ``tools`` the model may call, ``tool_choice`` (``auto``, ``none``, ``required`` or a
    tool's name), and ``output``, the `Schema` the answer must match.
    """

    messages: tuple[Message, ...]
    model: str
    system: str | None = None
    tuning: Tuning = field(default_factory=Tuning)
    tools: tuple[Tool, ...] = ()
    tool_choice: str | None = None
    output: Schema | None = None

    @staticmethod
    def split_system(
        messages: Iterable[Message], system: str | None
    ) -> tuple[tuple[Message, ...], str | None]:
        """Lift system messages out of ``messages`` and join them after ``system``."""
        turns: list[Message] = []
        systems: list[str] = [system] if system else []
        for message in messages:
            if message.role == "system":
                systems.append(message.text)
            else:
                turns.append(message)
        return tuple(turns), ("\n\n".join(systems) if systems else None)

    @property
    def has_images(self) -> bool:
        """Whether any message holds an image."""
        return any(m.has_images for m in self.messages)

    def estimated_tokens(self) -> int:
        """A cheap upper-leaning estimate of the tokens this call will count against a TPM limit.

        The prompt (`estimated_prompt_tokens`) plus the completion budget (``max_tokens``,
        or 1,024 when unset), as providers reserve.
        """
        return self.estimated_prompt_tokens() + (self.tuning.max_tokens or 1024)

    def estimated_prompt_tokens(self) -> int:
        """Estimate the prompt's tokens: four characters to a token, about 1,500 an image."""
        chars = len(self.system or "")
        for message in self.messages:  # a plain loop: this runs for every attempt
            content = message.content
            if isinstance(content, str):
                chars += len(content)
            else:
                chars += len(message.text) + 4 * 1500 * sum(
                    isinstance(p, ImagePart) for p in content
                )
        if self.tools:
            chars += sum(
                len(t.name) + len(t.description) + len(str(t.parameters)) for t in self.tools
            )
        return chars // 4 + 1


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """What one embeddings attempt asks of one provider."""

    texts: tuple[str, ...]
    model: str
    dimensions: int | None = None
    """Ask for shorter vectors, where the model allows it."""
    input_type: str | None = None
    """``"document"`` or ``"query"`` where a provider distinguishes them (Cohere, Gemini)."""

    @property
    def has_images(self) -> bool:
        """Embeddings of text never hold images."""
        return False

    def estimated_tokens(self) -> int:
        """Four characters to a token, as for chats."""
        return sum(len(t) for t in self.texts) // 4 + 1


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one call used, normalized across providers."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    """Input tokens served from the provider's prompt cache (part of ``input_tokens``)."""
    cache_write_tokens: int = 0
    """Input tokens written to the provider's prompt cache (part of ``input_tokens``):
    Anthropic's and Bedrock's cache writes, which cost more than plain input."""

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        """Return the counts as a JSON-ready mapping."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
        }


@record
class RateLimitInfo:
    """What a provider's rate-limit headers said about its remaining budget."""

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_s: float | None = None
    """Seconds until the request budget refills."""
    reset_tokens_s: float | None = None
    """Seconds until the token budget refills."""
    limit_requests: int | None = None
    """The request budget's size, when the provider says."""
    limit_tokens: int | None = None
    """The token budget's size, when the provider says."""

    def exhausted_for_s(self) -> float | None:
        """Seconds to hold off sending, when the provider says a budget is spent."""
        waits = []
        if self.remaining_requests == 0 and self.reset_requests_s is not None:
            waits.append(self.reset_requests_s)
        if self.remaining_tokens == 0 and self.reset_tokens_s is not None:
            waits.append(self.reset_tokens_s)
        return max(waits) if waits else None


@record
class ChatResult:
    """A provider's answer to one attempt, as its protocol parsed it."""

    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    rate_limits: RateLimitInfo = field(default_factory=RateLimitInfo)
    ttft_ms: float | None = None
    """Milliseconds from the start of the attempt to the first text (streamed answers)."""
    answered_at: float | None = None
    """When the answer's headers arrived (``time.monotonic()``): the provider had the
    request by then, so its rate limits counted it by then."""
    usage_known: bool = True
    """``False`` when the provider's token counts could not be had (``usage`` is zero):
    the call's cost is then unknown, never zero."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The tools the model called, in order (its ``text`` may be empty then)."""


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """A provider's embeddings: one vector per input text, in order."""

    vectors: tuple[tuple[float, ...], ...]
    model: str
    usage: Usage = field(default_factory=Usage)


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
    ttft_ms: float | None = None
    """Milliseconds from the task's start to the first text of the answering attempt."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The tools the model asked to call: answer each with a `ToolResult` in the next turn."""
    parsed: Any = None
    """With ``output=Schema(...)``: the answer validated (a model instance, or JSON)."""

    def as_message(self) -> Message:
        """Return this answer as the assistant turn to put back in the conversation."""
        return Message("assistant", self.text, tool_calls=self.tool_calls)

    def to_dict(self) -> dict[str, Any]:
        """Return the reply as the JSON object ``callboard ask --json`` prints."""
        parsed = (
            self.parsed.model_dump(mode="json")
            if hasattr(self.parsed, "model_dump")
            else self.parsed
        )
        return {
            "text": self.text,
            "tool_calls": [call.to_dict() for call in self.tool_calls],
            "parsed": parsed,
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
    "running", "retrying", "fallback", "hedging", "attempt_failed", "waiting",
    "ok", "failed", "deadline", "cancelled", "budget",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Progress:
    """A step in a task's life, reported to the caller's ``on_progress`` as it happens.

    ``state`` is ``running`` (first attempt started), ``retrying`` (the same provider
    again), ``fallback`` (another provider), ``hedging`` (another provider beside the
    one in flight, see ``hedge_after_s``), ``attempt_failed`` (``detail`` is the error
    kind), ``waiting`` (every provider resting or backing off; ``detail`` says how long),
    or how the task ended: ``ok``, ``failed``, ``deadline``, ``cancelled``, ``budget``.
    """

    task_id: str
    state: ProgressState
    provider: str | None = None
    model: str | None = None
    attempt: int = 0
    """The number of the attempt this is about (1 for the first)."""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class EmbedReply:
    """The answer to an embeddings task: one vector per text, all from one model."""

    vectors: tuple[tuple[float, ...], ...]
    role: str
    provider: str
    model: str
    usage: Usage
    latency_ms: float
    attempts: tuple[AttemptRecord, ...]
    task_id: str
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class StreamDelta:
    """A piece of streamed text, from ``provider``."""

    text: str
    provider: str


@dataclass(frozen=True, slots=True)
class StreamToolDelta:
    """A piece of a streamed tool call from ``provider``: its name first, then arguments.

    The whole calls are in the `StreamEnd`'s reply (``reply.tool_calls``); pieces are for
    showing progress.
    """

    delta: ToolCallDelta
    provider: str


@dataclass(frozen=True, slots=True)
class StreamRestart:
    """The text streamed so far is void: the task starts again with ``provider``.

    Yielded only with ``on_broken="restart"``, when a stream broke after its first text.
    """

    provider: str
    reason: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The stream is complete: ``reply`` holds the whole text, usage, provider, timings."""

    reply: Reply


StreamEvent = StreamDelta | StreamToolDelta | StreamRestart | StreamEnd
