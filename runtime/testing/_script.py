"""What a fake provider does with each chat request: behaviours, and the script that orders them.

A `Script` is a queue of behaviours. Each chat request that passes the fake's checks (key,
model, rate limit) takes the next one; when the queue is empty the fake gives its default
`Answer`. Tests append to the script from their own thread while the server runs.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime._chat import Usage

DEFAULT_TEXT = "Hello! This is a fake answer from a loopback test server."

PROXY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(frozen=True, slots=True)
class ToolUse:
    """A tool call the fake model makes: the tool's name and its input.

    ``id`` is made in the provider's own style (``call_...``, ``toolu_...``) unless given.
    The fake makes the call only when the request offered a tool of that name (and did
    not set the tool choice to ``none``), as a real model could.
    """

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer normally, in the provider's documented shape (streamed if the request asks).

    ``delay_s`` is the wait before the first byte (``None``: the fake's ``latency_s``);
    ``chunk_delay_s`` the wait between streamed chunks. ``think_s`` is the wait between
    the stream's opening events and its first text, as a reasoning model thinks, with one
    non-content event (see `Trickle`) every `THINK_EVENT_S` meanwhile; a whole answer comes
    that much later. ``usage`` replaces the counted
    tokens (otherwise about four characters to a token). ``finish`` replaces the finish
    reason, in the provider's own words (``"content_filter"``, ``"refusal"``, ``"SAFETY"``);
    otherwise it follows from the text, ``max_tokens`` and stop sequences. ``tool_calls``
    are calls to the tools the request offered (the text may be empty then; streamed, the
    arguments come in fragments); ``refusal`` answers a structured-output request with the
    provider's refusal, where it has one.
    """

    text: str = DEFAULT_TEXT
    delay_s: float | None = None
    usage: Usage | None = None
    finish: str | None = None
    chunk_delay_s: float = 0.0
    think_s: float = 0.0
    tool_calls: tuple[ToolUse, ...] = ()
    refusal: str | None = None


@dataclass(frozen=True, slots=True)
class Fail:
    """Answer an HTTP error with the provider's real body for ``status``.

    ``code`` picks a variant where a provider has several for one status: OpenAI's
    ``"insufficient_quota"`` (429), an Anthropic error type, a Google status name.
    ``retry_after_s`` adds a ``retry-after`` header (Gemini: the ``RetryInfo`` delay of a
    429, 1 s when not given; Gemini sends no such header). ``delay_s`` is the wait before
    the error is answered.
    """

    status: int
    code: str | None = None
    message: str | None = None
    retry_after_s: float | None = None
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Hang:
    """Accept the request and never answer; the connection closes when the server stops.

    With ``headers``, the response's status and headers go first (a stream's, or a whole
    answer's), then nothing: the body never comes. Replicate creates a streamed prediction
    and hangs its ``urls.stream`` so.
    """

    headers: bool = False


@dataclass(frozen=True, slots=True)
class Malformed:
    """Answer 200 with a body that is not the documented shape (one SSE event if streamed)."""

    body: str = '{"unexpected": "shape"}'


@dataclass(frozen=True, slots=True)
class ProxyError:
    """Answer a non-JSON error page, as a proxy or load balancer in front of the API does."""

    status: int = 502
    body: str = PROXY_PAGE
    content_type: str = "text/html"


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the connection without answering."""


@dataclass(frozen=True, slots=True)
class StreamError:
    """Start streaming, then fail after ``after_chunks`` text chunks.

    OpenAI sends ``data: {"error": ...}``, Anthropic an ``event: error`` (``code`` defaults
    to ``overloaded_error``); Gemini's stream is cut. Asked without streaming, the fake
    answers that error as a plain error response (Gemini: 503 UNAVAILABLE).
    """

    after_chunks: int = 1
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Stall:
    """Start streaming, then send nothing more after ``after_chunks`` text chunks.

    The stream's opening events come first (Anthropic's ``message_start`` and ``ping``,
    Bedrock's ``messageStart``...; Gemini, Ollama and Replicate open with none), then
    ``idle_events`` non-content events (see `Trickle`), then the text chunks:
    ``Stall(after_chunks=0, idle_events=1)`` is a stream whose first events carry no
    content. Asked without streaming, the fake hangs as with `Hang`.
    """

    after_chunks: int = 1
    idle_events: int = 0


@dataclass(frozen=True, slots=True)
class Reset:
    """Reset the connection (a TCP RST) without answering, as a crashed proxy or host does."""


@dataclass(frozen=True, slots=True)
class Trickle:
    """Start streaming, then send one non-content event every ``every_s`` seconds, forever.

    ``after_chunks`` text chunks come first. A non-content event is what the API sends
    that carries no answer text: Anthropic's ``ping``; an OpenAI or Azure chunk with an
    empty delta; a Gemini chunk with only usage metadata (whitespace between the items of
    its JSON-array form); a Bedrock reasoning delta; an Ollama line with empty content and
    some ``thinking``; a Cohere ``content-delta`` with ``thinking``; a Replicate SSE comment.
    Asked without streaming, the fake sends the headers of a whole answer and hangs.
    """

    every_s: float = 1.0
    after_chunks: int = 0


THINK_EVENT_S = 0.25
"""How often an `Answer` with ``think_s`` sends a non-content event while it thinks."""

Behaviour = (
    Answer | Fail | Hang | Malformed | ProxyError | Drop | Reset | StreamError | Stall | Trickle
)
"""Anything a script may hold."""

Cut = StreamError | Stall | Trickle | Hang
"""A behaviour that cuts a started answer short (`Hang` with ``headers``: before any event)."""


class Script:
    """A thread-safe queue of behaviours, consumed one per chat request, in order."""

    def __init__(self, behaviours: Iterable[Behaviour] = ()) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Behaviour] = deque(behaviours)

    def append(self, behaviour: Behaviour) -> None:
        """Queue one behaviour after those already queued."""
        with self._lock:
            self._queue.append(behaviour)

    def extend(self, behaviours: Iterable[Behaviour]) -> None:
        """Queue several behaviours, in order."""
        with self._lock:
            self._queue.extend(behaviours)

    def clear(self) -> None:
        """Drop every queued behaviour."""
        with self._lock:
            self._queue.clear()

    def pop_next(self) -> Behaviour | None:
        """Take the next behaviour, or ``None`` when the script is spent."""
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)
