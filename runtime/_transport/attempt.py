"""One attempt at one provider, run on the I/O loop: send, read, parse, bound in time.

An attempt is bounded three ways: the provider must start answering (response headers)
within ``first_byte_s`` when the answer is streamed, a stream must not stall longer
than ``idle_s`` between frames, and the whole answer must arrive within ``total_s``.
Frames are read as the protocol says (server-sent events, JSON lines, or AWS
event-stream messages) and fed to its parser; the text of each frame goes straight to
the caller's ``on_text`` callback, if it streams, without passing through any actor. Either way
the attempt ends with a result or a `ProviderError` (carrying the text already
delivered, when a stream breaks after its first chunk). A stream read by URL
(`StreamByUrl`, Replicate) takes up to three requests within the same bounds: the
create call, the stream it names, and the finished result, for its token counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from runtime._chat import ChatResult, EmbedResult
from runtime._errors import ErrorKind, ProviderError
from runtime._transport.http import ProviderClient
from runtime.protocols import Embeddings, HttpCall, StreamByUrl, StreamParser, WireProtocol
from runtime.protocols._common import is_error

TextCallback = Callable[[str], object]
"""Takes each piece of streamed text, on the I/O thread; must return at once."""


RESULT_FETCH_S = 5.0
"""The longest wait for the finished result after a stream read by URL (for its usage)."""
RESULT_FETCH_MARGIN_S = 0.05


@dataclass(frozen=True, slots=True)
class AttemptLimits:
    """Time bounds of one attempt, in seconds."""

    first_byte_s: float
    total_s: float
    idle_s: float | None = None
    """Longest silence between two frames of a stream (``None``: only ``total_s``)."""


async def run_attempt(
    client: ProviderClient,
    protocol: WireProtocol,
    call: HttpCall,
    limits: AttemptLimits,
    on_text: TextCallback | None = None,
) -> ChatResult:
    """Send ``call`` and return the parsed answer, handing streamed text to ``on_text``.

    Raises:
        ProviderError: for every way the attempt can fail, transport errors included.
    """
    reader = _Reader(protocol, call, limits, on_text)
    return await reader.run(client)


async def run_embed(
    client: ProviderClient, embed: Embeddings, call: HttpCall, limits: AttemptLimits
) -> EmbedResult:
    """Send an embeddings request and return the vectors.

    Raises:
        ProviderError: for every way the attempt can fail.
    """
    try:
        async with asyncio.timeout(limits.total_s):
            answer = await client.fetch(call)
    except TimeoutError:
        host = httpx.URL(call.url).host
        raise ProviderError(
            ErrorKind.TIMEOUT, f"{host} did not answer within {limits.total_s:g} s"
        ) from None
    return embed.parse(answer.status, answer.headers, answer.body)


class _Reader:
    """Reads one chat answer, tracking the phase and the text already delivered."""

    def __init__(
        self,
        protocol: WireProtocol,
        call: HttpCall,
        limits: AttemptLimits,
        on_text: TextCallback | None,
    ) -> None:
        self.protocol = protocol
        self.call = call
        self.limits = limits
        self.on_text = on_text
        self.phase = "headers"
        self.delivered: list[str] = []
        self.first_text: float | None = None

    async def run(self, client: ProviderClient) -> ChatResult:
        self.client = client
        loop = asyncio.get_running_loop()
        self.start = loop.time()
        self.end = self.start + self.limits.total_s
        first_byte = min(self.start + self.limits.first_byte_s, self.end)
        try:
            async with asyncio.timeout_at(first_byte if self.call.stream else self.end) as scope:
                self.scope = scope
                async with client.open(self.call) as response:
                    self.phase = "body"
                    answered_at = loop.time()
                    scope.reschedule(self.end)
                    result = await self._read(response)
                    return dataclasses.replace(result, answered_at=answered_at)
        except TimeoutError:
            raise self._broken(self._timeout()) from None
        except ProviderError as exc:
            raise self._broken(exc) from None

    async def _read(self, response: httpx.Response) -> ChatResult:
        status, headers = response.status_code, response.headers
        if is_error(status):
            raise self.protocol.parse_error(status, headers, await response.aread())
        by_url = self.protocol.stream_by_url
        if self.call.stream and by_url is not None:
            return await self._read_by_url(by_url, status, headers, await response.aread())
        framing = self.protocol.framing
        if not (self.call.stream and framing.is_stream(headers.get("content-type", ""))):
            return self.protocol.parse_chat(status, headers, await response.aread())
        return self._timed(await self._read_stream(response))

    async def _read_stream(self, response: httpx.Response) -> ChatResult:
        parser = self.protocol.stream_parser(response.headers)
        async for event, data in self.protocol.framing.frames(response):
            self._fed(parser, event, data)
        return parser.finish()

    def _timed(self, result: ChatResult) -> ChatResult:
        if self.first_text is None:
            return result
        return dataclasses.replace(result, ttft_ms=(self.first_text - self.start) * 1000.0)

    async def _read_by_url(
        self, by_url: StreamByUrl, status: int, headers: httpx.Headers, body: bytes
    ) -> ChatResult:
        """Read the stream the first answer names, then fetch the result for its usage."""
        call = by_url.stream_call(self.call, body)
        if call is None:
            return self.protocol.parse_chat(status, headers, body)
        async with self.client.open(call) as response:
            if is_error(response.status_code):
                error_body = await response.aread()
                raise self.protocol.parse_error(response.status_code, response.headers, error_body)
            streamed = await self._read_stream(response)
        return self._timed(await self._with_usage(by_url.result_call(self.call, body), streamed))

    async def _with_usage(self, call: HttpCall, streamed: ChatResult) -> ChatResult:
        """Add the finished result's usage and model; the text streamed stands either way.

        The fetch gets at most `RESULT_FETCH_S`, and ends before the attempt's own time
        is up, so a stream that arrived whole is never failed by it.
        """
        self.scope.reschedule(None)  # the attempt's time is up only if the fetch's is
        left = self.end - asyncio.get_running_loop().time() - RESULT_FETCH_MARGIN_S
        try:
            async with asyncio.timeout(max(0.0, min(RESULT_FETCH_S, left))):
                answer = await self.client.fetch(call)
            whole = self.protocol.parse_chat(answer.status, answer.headers, answer.body)
        except (ProviderError, TimeoutError):
            return dataclasses.replace(streamed, usage_known=False)
        return dataclasses.replace(streamed, usage=whole.usage, model=whole.model or streamed.model)

    def _fed(self, parser: StreamParser, event: str, data: str) -> None:
        loop = asyncio.get_running_loop()
        if self.limits.idle_s is not None:
            self.scope.reschedule(min(self.end, loop.time() + self.limits.idle_s))
        self.phase = "stream"
        for text in parser.feed(event, data):
            if not text:
                continue
            if self.first_text is None:
                self.first_text = loop.time()
            self.delivered.append(text)
            if self.on_text is not None:
                self.on_text(text)

    def _timeout(self) -> ProviderError:
        host = httpx.URL(self.call.url).host
        limits = self.limits
        if self.phase == "headers" and self.call.stream and limits.first_byte_s < limits.total_s:
            message = f"{host} sent nothing back within {limits.first_byte_s:g} s (first_byte_s)"
        elif self.phase == "stream" and limits.idle_s is not None:
            message = f"{host} stalled: nothing for {limits.idle_s:g} s mid-stream (stream_idle_s)"
        else:
            message = f"{host} did not finish within {limits.total_s:g} s"
        return ProviderError(ErrorKind.TIMEOUT, message)

    def _broken(self, error: ProviderError) -> ProviderError:
        """Attach the text delivered so far to an error that broke a started stream."""
        if self.delivered:
            error.partial_text = "".join(self.delivered)
        return error
