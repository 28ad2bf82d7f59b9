"""One attempt at one provider, run on the I/O loop: send, read, parse, bound in time.

An attempt is bounded in five ways, each named in the timeout it ends with:
``first_byte_s`` (a streamed answer's response headers), ``first_token_s`` (the first
content: a text delta, or the whole body of an answer that is not streamed; events that
carry no text, such as Anthropic's ``ping``, do not count), ``idle_s`` (the longest
silence between two frames of a stream), ``min_chars_per_s`` (after the first content,
the stream's rate over a sliding window, see `StreamRate`) and ``total_s`` (the whole
answer). One timer holds the earliest bound that applies at each moment.

Frames are read as the protocol says (server-sent events, JSON lines, or AWS event-stream
messages) and fed to its parser; the content of each frame (text, and the pieces of tool
calls) goes straight to the caller's ``on_content`` callback, if it streams, without
passing through any actor. Either way the attempt ends with a result or a
`ProviderError` (carrying the text already delivered, the tool calls delivered whole, and
the usage reported so far, when a stream breaks after its first chunk). A stream
read by URL (`StreamByUrl`, Replicate) takes up to three requests within the same
bounds: the create call, the stream it names, and the finished result, for its token
counts.

Two things let others act on an attempt while it runs: a `Cancellation` (the provider
actor ends it as ``cancelled``, keeping what it had used) and a ``claim`` of its task's
content (a hedged task's attempts race for their `ContentGate` at their first content;
the loser ends itself as ``cancelled``, so a streaming caller only sees the winner's text).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import httpx

from runtime._chat import ChatResult, EmbedResult, Usage
from runtime._errors import ErrorKind, ProviderError
from runtime._policy.stream_rate import StreamRate
from runtime._record import record
from runtime._tools import ToolCallBuilder, ToolCallDelta
from runtime._transport.http import ProviderClient, read_headers
from runtime.protocols import Embeddings, HttpCall, StreamByUrl, StreamParser, WireProtocol
from runtime.protocols._base import Headers
from runtime.protocols._common import is_error

ContentCallback = Callable[[str | ToolCallDelta], object]
"""Takes each piece of streamed content (text, or a piece of a tool call), on the I/O
thread; must return at once."""


RESULT_FETCH_S = 5.0
"""The longest wait for the finished result after a stream read by URL (for its usage)."""
RESULT_FETCH_MARGIN_S = 0.05


@record
class AttemptLimits:
    """Time bounds of one attempt, in seconds."""

    first_byte_s: float
    total_s: float
    idle_s: float | None = None
    """Longest silence between two frames of a stream (``None``: only ``total_s``)."""
    first_token_s: float | None = None
    """Longest wait from sending to the first content (``None``: only ``total_s``)."""
    min_chars_per_s: float = 0.0
    """After the first content, the slowest rate a stream may keep (0: no floor)..."""
    rate_window_s: float = 10.0
    """...measured over this sliding window."""
    total_why: str = ""
    """What set ``total_s``, for its timeout's message (``""``: ``request_s``)."""
    whole_why: str = ""
    """Why a streaming provider was asked for a whole answer, bounded by ``first_token_s``
    (``""``: it was not), for that bound's timeout message."""


class Cancellation:
    """Ends one attempt as ``cancelled`` at the request of another thread.

    The attempt's coroutine is cancelled on the I/O loop; it then raises a `ProviderError`
    of kind ``cancelled`` with the reason, the text it had delivered and the usage its
    stream had reported, so the attempt is recorded with what the provider billed.
    """

    __slots__ = ("_loop", "_task", "reason")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._task: asyncio.Task[Any] | None = None
        self.reason: str | None = None

    def cancel(self, reason: str) -> None:
        """Ask the attempt to end now (from any thread; nothing happens once the loop closed)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs any more
            self._loop.call_soon_threadsafe(self._cancel, reason)

    def _cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        if self._task is not None:
            self._task.cancel()

    def enter(self) -> None:
        """Note the attempt's task (on the loop), or raise if it was cancelled before it ran."""
        if self.reason is not None:
            raise ProviderError(ErrorKind.CANCELLED, self.reason)
        self._task = asyncio.current_task()

    def translate(self, error: asyncio.CancelledError) -> ProviderError:
        """Turn the cancellation this object asked for into the attempt's error; re-raise others."""
        task = self._task
        if self.reason is None or task is None:
            raise error
        task.uncancel()
        return ProviderError(ErrorKind.CANCELLED, self.reason)


LOST_THE_RACE = "another provider's attempt sent content first (hedging)"


async def run_attempt(
    client: ProviderClient,
    protocol: WireProtocol,
    call: HttpCall,
    limits: AttemptLimits,
    on_content: ContentCallback | None = None,
    *,
    cancellation: Cancellation | None = None,
    claim: Callable[[], bool] | None = None,
) -> ChatResult:
    """Send ``call`` and return the parsed answer, handing streamed content to ``on_content``.

    ``claim`` is asked at the first content whether this attempt may deliver it (see
    `ContentGate`); when it says no, the attempt ends as ``cancelled``.

    Raises:
        ProviderError: for every way the attempt can fail, transport errors included.
    """
    reader = _Reader(protocol, call, limits, on_content, claim)
    if cancellation is None:
        return await reader.run(client)
    cancellation.enter()
    try:
        return await reader.run(client)
    except asyncio.CancelledError as cancelled:
        raise reader.broken(cancellation.translate(cancelled)) from None


async def run_embed(
    client: ProviderClient,
    embed: Embeddings,
    call: HttpCall,
    limits: AttemptLimits,
    *,
    cancellation: Cancellation | None = None,
) -> EmbedResult:
    """Send an embeddings request and return the vectors (its whole body is its content).

    Raises:
        ProviderError: for every way the attempt can fail.
    """
    first_token_s = limits.first_token_s or math.inf
    bound_s = min(limits.total_s, first_token_s)
    if cancellation is not None:
        cancellation.enter()
    try:
        async with asyncio.timeout(bound_s):
            answer = await client.fetch(call)
    except TimeoutError:
        host = httpx.URL(call.url).host
        if first_token_s < limits.total_s:
            message = f"{host} sent no answer within {first_token_s:g} s (first_token_s)"
        else:
            message = f"{host} did not answer within {limits.total_s:g} s"
        raise ProviderError(ErrorKind.TIMEOUT, message) from None
    except asyncio.CancelledError as cancelled:
        if cancellation is None:
            raise
        raise cancellation.translate(cancelled) from None
    return embed.parse(answer.status, answer.headers, answer.body)


class _Reader:
    """Reads one chat answer, tracking the phase, the bound in force and what was delivered."""

    def __init__(
        self,
        protocol: WireProtocol,
        call: HttpCall,
        limits: AttemptLimits,
        on_content: ContentCallback | None,
        claim: Callable[[], bool] | None,
    ) -> None:
        self.protocol = protocol
        self.call = call
        self.limits = limits
        self.on_content = on_content
        self.calls = ToolCallBuilder()
        """The tool-call pieces delivered, to say which calls were whole if it breaks."""
        self.claim = claim
        self.phase = "headers"
        self.delivered: list[str] = []
        self.first_text: float | None = None
        self.frames = 0
        self.bound = "total"
        """Which bound the timer holds: ``first_byte``, ``first_token``, ``idle``, ``rate``
        or ``total``."""
        self.rate: StreamRate | None = None
        self.parser: StreamParser | None = None

    async def run(self, client: ProviderClient) -> ChatResult:
        self.client = client
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.time()
        limits = self.limits
        self.end = self.start + limits.total_s
        first_token_s = limits.first_token_s
        self.first_token_at = math.inf if first_token_s is None else self.start + first_token_s
        try:
            async with asyncio.timeout_at(self._earliest(self.start)) as scope:
                self.scope = scope
                async with client.open(self.call) as response:
                    self.phase = "body"
                    answered_at = self.loop.time()
                    bound = self._earliest(self.start)
                    if bound != scope.when():  # a whole answer's bound rarely moves
                        scope.reschedule(bound)
                    result = await self._read(response)
                    return dataclasses.replace(result, answered_at=answered_at)
        except TimeoutError:
            raise self.broken(self._timeout()) from None
        except ProviderError as exc:
            raise self.broken(exc) from None

    def _earliest(self, now: float) -> float:
        """Return the earliest bound in force ``now``, remembering which it is (`bound`).

        The timer holds it: reset at each frame, since the bounds change as answers go on.
        """
        when, bound = self.end, "total"
        if self.first_text is None:
            if self.first_token_at < when:
                when, bound = self.first_token_at, "first_token"
            if self.phase == "headers" and self.call.stream:
                first_byte = self.start + self.limits.first_byte_s
                if first_byte < when:
                    when, bound = first_byte, "first_byte"
        elif self.rate is not None:
            floor = self.rate.deadline()
            if floor < when:
                when, bound = floor, "rate"
        idle_s = self.limits.idle_s
        if self.phase == "stream" and idle_s is not None and now + idle_s < when:
            when, bound = now + idle_s, "idle"
        self.bound = bound
        return when

    async def _read(self, response: httpx.Response) -> ChatResult:
        status, headers = response.status_code, read_headers(response)
        if is_error(status):
            raise self.protocol.parse_error(status, headers, await response.aread())
        by_url = self.protocol.stream_by_url
        if self.call.stream and by_url is not None:
            return await self._read_by_url(by_url, status, headers, await response.aread())
        framing = self.protocol.framing
        if not (self.call.stream and framing.is_stream(headers.get("content-type", ""))):
            return self._whole(self.protocol.parse_chat(status, headers, await response.aread()))
        return self._timed(await self._read_stream(response, headers))

    def _whole(self, result: ChatResult) -> ChatResult:
        """Take a whole answer: its content arrives at once."""
        self._first_content(self.loop.time())
        return result

    async def _read_stream(self, response: httpx.Response, headers: Headers) -> ChatResult:
        parser = self.parser = self.protocol.stream_parser(headers)
        async for frames in self.protocol.framing.chunks(response):
            self._fed(parser, frames)
        return parser.finish()

    def _timed(self, result: ChatResult) -> ChatResult:
        if self.first_text is None:
            return result
        return dataclasses.replace(result, ttft_ms=(self.first_text - self.start) * 1000.0)

    async def _read_by_url(
        self, by_url: StreamByUrl, status: int, headers: Headers, body: bytes
    ) -> ChatResult:
        """Read the stream the first answer names, then fetch the result for its usage."""
        call = by_url.stream_call(self.call, body)
        if call is None:
            return self._whole(self.protocol.parse_chat(status, headers, body))
        async with self.client.open(call) as response:
            stream_headers = read_headers(response)
            if is_error(response.status_code):
                error_body = await response.aread()
                raise self.protocol.parse_error(response.status_code, stream_headers, error_body)
            streamed = await self._read_stream(response, stream_headers)
        return self._timed(await self._with_usage(by_url.result_call(self.call, body), streamed))

    async def _with_usage(self, call: HttpCall, streamed: ChatResult) -> ChatResult:
        """Add the finished result's usage and model; the text streamed stands either way.

        The fetch gets at most `RESULT_FETCH_S`, and ends before the attempt's own time
        is up, so a stream that arrived whole is never failed by it.
        """
        self.scope.reschedule(None)  # the attempt's time is up only if the fetch's is
        left = self.end - self.loop.time() - RESULT_FETCH_MARGIN_S
        try:
            async with asyncio.timeout(max(0.0, min(RESULT_FETCH_S, left))):
                answer = await self.client.fetch(call)
            whole = self.protocol.parse_chat(answer.status, answer.headers, answer.body)
        except (ProviderError, TimeoutError):
            return dataclasses.replace(streamed, usage_known=False)
        return dataclasses.replace(streamed, usage=whole.usage, model=whole.model or streamed.model)

    def _fed(self, parser: StreamParser, frames: list[tuple[str, str]]) -> None:
        """Take the frames one read of the stream completed; the bounds move once for all."""
        now = self.loop.time()
        self.phase = "stream"
        self.frames += len(frames)
        for event, data in frames:
            for piece in parser.feed(event, data):
                if not piece:
                    continue
                if self.first_text is None:
                    self._first_content(now)
                self._deliver(piece, now)
        self.scope.reschedule(self._earliest(now))

    def _deliver(self, piece: str | ToolCallDelta, now: float) -> None:
        if isinstance(piece, str):
            if self.rate is not None:
                self.rate.add(len(piece), now)
            self.delivered.append(piece)
        else:
            if self.rate is not None:
                self.rate.add(len(piece.arguments), now)
            self.calls.add(piece)
        if self.on_content is not None:
            self.on_content(piece)

    def _first_content(self, now: float) -> None:
        """Start the content: claim it (a hedged task's), start the floor's clock.

        Raises:
            ProviderError: ``cancelled``, when another attempt of the task claimed it first.
        """
        if self.claim is not None and not self.claim():
            raise ProviderError(ErrorKind.CANCELLED, LOST_THE_RACE)
        self.first_text = now
        limits = self.limits
        if limits.min_chars_per_s > 0:
            self.rate = StreamRate(limits.min_chars_per_s, limits.rate_window_s, now)

    def _timeout(self) -> ProviderError:
        host = httpx.URL(self.call.url).host
        limits = self.limits
        if self.bound == "first_byte":
            message = f"{host} sent nothing back within {limits.first_byte_s:g} s (first_byte_s)"
        elif self.bound == "first_token" and limits.whole_why:
            bound_s = limits.first_token_s
            message = f"{host} sent no answer within {bound_s:g} s ({limits.whole_why})"
        elif self.bound == "first_token":
            message = (
                f"{host} sent no content within {limits.first_token_s:g} s (first_token_s; "
                f"{self._got()}): raise first_token_s for a model that thinks before it answers"
            )
        elif self.bound == "rate" and self.rate is not None:
            chars = self.rate.recent_chars(self.loop.time())
            message = (
                f"{host} streamed {chars} characters in the last {limits.rate_window_s:g} s, "
                f"under the floor of {limits.min_chars_per_s:g} a second (min_chars_per_s)"
            )
        elif self.bound == "idle" and limits.idle_s is not None:
            message = f"{host} stalled: nothing for {limits.idle_s:g} s mid-stream (stream_idle_s)"
        else:
            why = limits.total_why or "request_s"
            message = f"{host} did not finish within {limits.total_s:g} s ({why})"
        return ProviderError(ErrorKind.TIMEOUT, message)

    def _got(self) -> str:
        """Say what did arrive before the first content."""
        if self.phase == "headers":
            return "not even its response headers"
        if self.phase == "body" or not self.frames:
            return "its response headers, then nothing"
        noun = "event" if self.frames == 1 else "events"
        return f"{self.frames} {noun} without text"

    def broken(self, error: ProviderError) -> ProviderError:
        """Attach what a started answer had delivered (text, and usage so far) to its error."""
        if self.delivered:
            error.partial_text = "".join(self.delivered)
        error.delivered = self.first_text is not None and self.on_content is not None
        if self.calls:
            error.partial_tool_calls = self.calls.whole_calls()
        if self.parser is not None:
            usage = self.parser.usage_so_far()
            if usage != Usage():
                error.partial_usage = usage
        return error
