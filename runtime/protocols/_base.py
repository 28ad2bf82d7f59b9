"""What a wire protocol is: pure functions from normalized values to HTTP and back.

A protocol never performs I/O. The I/O layer asks it for the `HttpCall` to send, then hands
it what came back: a whole body (`WireProtocol.parse_chat`), or a stream of server-sent
events fed one by one to the `StreamParser` it makes. Failures come out as `ProviderError`
with one of the kinds of `ErrorKind`, so nothing above this layer knows any wire format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime._chat import (
    ChatRequest,
    ChatResult,
    EmbedRequest,
    EmbedResult,
    RateLimitInfo,
    Usage,
)
from runtime._errors import ProviderError
from runtime._record import record
from runtime._tools import ToolCallDelta
from runtime.protocols._framing import Framing

Headers = Mapping[str, str]
"""Response headers; lookups must be case-insensitive (``httpx.Headers`` and `HeaderMap` are)."""


class HeaderMap(Mapping[str, str]):
    """A response's headers read once: a lookup, in any case, is one dictionary lookup.

    Built from ``(name, value)`` items with the names lowercased and a repeated header's
    values joined by ``", "``, as ``httpx.Headers.items()`` gives them, so that a lookup
    answers what ``httpx.Headers.get`` would. httpx decodes and scans every header at
    each lookup: the six rate-limit headers of an OpenAI answer cost 20 µs that way.
    """

    __slots__ = ("_values",)

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._values = dict(items)

    @classmethod
    def from_ascii(cls, raw: Sequence[tuple[bytes, bytes]]) -> HeaderMap:
        """Read headers as received (``httpx.Headers.raw``), every byte of them ASCII.

        One pass: ``httpx.Headers.items()`` first scans every header to choose their
        encoding, then decodes each one again (19.7 µs for an OpenAI answer's sixteen
        headers, measured; this takes 8). Repeated names are joined as it joins them.

        Raises:
            UnicodeDecodeError: a name or value is not ASCII; decode those headers as
                httpx does instead (``HeaderMap(headers.items())``).
        """
        pairs = [(name.decode("ascii").lower(), value.decode("ascii")) for name, value in raw]
        headers = cls(pairs)
        if len(headers._values) < len(pairs):  # a repeated name
            joined: dict[str, str] = {}
            for name, value in pairs:
                joined[name] = f"{joined[name]}, {value}" if name in joined else value
            headers._values = joined
        return headers

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"HeaderMap({sorted(self._values)!r})"  # names only: a value may be a secret


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to reach one provider: the settings a protocol needs, secret included."""

    base_url: str
    """The API root including its version path, without a trailing slash."""
    model: str
    api_key: str | None = field(default=None, repr=False)
    extra_headers: tuple[tuple[str, str], ...] = ()
    auth: str = "default"
    """How the key is sent when a protocol allows several: ``"default"`` (the protocol's
    own header), ``"bearer"`` (``Authorization: Bearer``), ``"none"``."""
    options: tuple[tuple[str, str], ...] = ()
    """Protocol settings that are not secrets: Azure's ``api_version`` and
    ``deployment``, Bedrock's ``region``, quirks of an OpenAI-compatible service."""
    embedding_model: str | None = None

    def option(self, name: str, default: str | None = None) -> str | None:
        """Return one of ``options``."""
        return dict(self.options).get(name, default)

    def __repr__(self) -> str:
        key = "set" if self.api_key else "none"
        return f"Endpoint(base_url={self.base_url!r}, model={self.model!r}, api_key=<{key}>)"


@record
class HttpCall:
    """One HTTP request to send, fully built. Its repr never shows header values."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    json: Any = None
    stream: bool = False
    """Whether the answer comes back as server-sent events."""

    def __repr__(self) -> str:
        names = ", ".join(name for name, _ in self.headers)
        return f"HttpCall({self.method} {self.url}, headers=[{names}], stream={self.stream})"


class StreamParser(Protocol):
    """Turns one streamed answer, event by event, into deltas and a final result."""

    def feed(self, event: str, data: str) -> Sequence[str | ToolCallDelta]:
        """Take one frame; return the content it adds (often none), in order.

        Content is text (a ``str``) or a piece of a tool call (`ToolCallDelta`): its name
        first, then fragments of its JSON arguments.

        Raises:
            ProviderError: the event reports an error (for example Anthropic's
                ``overloaded_error`` mid-stream), or it cannot be parsed
                (``malformed_response``).
        """
        ...

    def finish(self) -> ChatResult:
        """Return the whole answer once the stream has ended.

        Raises:
            ProviderError: the stream ended before the provider said it was complete
                (``malformed_response``).
        """
        ...

    def usage_so_far(self) -> Usage:
        """Return the tokens the events so far reported (what a stream cut short had used).

        Most APIs report usage only at the end (zero until then); Anthropic's
        ``message_start`` and every Gemini chunk carry it as they go.
        """
        ...


@dataclass(frozen=True, slots=True)
class WireProtocol:
    """The pure functions that speak one provider API, grouped under its name."""

    name: str
    chat_request: Callable[[Endpoint, ChatRequest, bool], HttpCall]
    """Build the request for one chat attempt; the flag asks for a streamed answer."""
    parse_chat: Callable[[int, Headers, bytes], ChatResult]
    """Parse a whole (non-streamed) answer; raise `ProviderError` for an error status or
    a body that cannot be understood."""
    parse_error: Callable[[int, Headers, bytes], ProviderError]
    """Map an error response (any status >= 400, any body, JSON or not) to a `ProviderError`."""
    stream_parser: Callable[[Headers], StreamParser]
    """Start parsing a streamed answer whose response headers are given."""
    rate_limits: Callable[[Headers], RateLimitInfo]
    """Read the provider's rate-limit headers (absent ones stay ``None``)."""
    models_request: Callable[[Endpoint], HttpCall]
    """Build the cheap authenticated request used to check credentials at start-up."""
    check_models: Callable[[Endpoint, int, Headers, bytes], ProviderError | None]
    """Judge the answer to `models_request`: ``None`` when the key works and the
    configured model exists, else the error (``auth`` for a rejected key, ``not_found``
    for a model the provider does not offer, naming close matches)."""
    framing: Framing = Framing.SSE
    """How a streamed answer is framed: server-sent events, newline-delimited JSON (Ollama),
    or AWS event-stream messages (Bedrock). Each frame goes to `StreamParser.feed` as
    ``(event, data)``: the SSE event name and data; ``""`` and the JSON line; the
    message's ``:event-type`` (or ``:exception-type``) and its payload."""
    list_models: ListModels | None = None
    """Build the request that lists every model, and read the ids from its answer."""
    embed: Embeddings | None = None
    """Build an embeddings request and parse its answer; ``None``: no embeddings."""
    images: bool = True
    """Whether messages may hold images."""
    tools: bool = False
    """Whether the API takes tool definitions and answers with tool calls."""
    image_urls: bool = True
    """Whether an image may be a URL for the provider to fetch (else only inline data)."""
    cache_points: bool = False
    """Whether `TextPart.cache` / `ImagePart.cache` become explicit cache points
    (Anthropic, Bedrock); elsewhere the provider caches prefixes on its own."""
    stream_by_url: StreamByUrl | None = None
    """For an API whose streamed answer is read by a second request (Replicate)."""
    stream_on_demand: bool = False
    """Stream only for callers who stream (`Callboard.stream`), not to time the first
    token of every answer: for an API whose streamed answer costs extra requests."""


@dataclass(frozen=True, slots=True)
class StreamByUrl:
    """A streamed answer read by URL (Replicate): create, read the stream, fetch the result.

    The first request (`WireProtocol.chat_request` with ``stream``) creates the work and
    its answer names where to read the stream and, once it ends, the finished result
    (which carries the token counts a stream does not).
    """

    stream_call: Callable[[HttpCall, bytes], HttpCall | None]
    """From the first call and its (2xx) answer body, the request that reads the stream;
    ``None`` when the answer is already whole (`WireProtocol.parse_chat` reads it). Raises
    `ProviderError` for an answer that cannot be streamed."""
    result_call: Callable[[HttpCall, bytes], HttpCall]
    """From the first call and its answer body, the request whose answer
    (`WireProtocol.parse_chat`) gives the usage and model once the stream has ended."""


@dataclass(frozen=True, slots=True)
class ListModels:
    """Listing a provider's models (`Callboard.models`)."""

    request: Callable[[Endpoint], HttpCall]
    parse: Callable[[int, Headers, bytes], list[str]]
    """Return the model ids; raise `ProviderError` for an error status or a bad body."""


@dataclass(frozen=True, slots=True)
class Embeddings:
    """Embeddings: the request for some texts, and the parse of the answer."""

    request: Callable[[Endpoint, EmbedRequest], HttpCall]
    parse: Callable[[int, Headers, bytes], EmbedResult]
    """Return the vectors in input order; raise `ProviderError` for an error or bad body."""
