"""One attempt at one provider, run on the I/O loop: send, read, parse, bound in time.

An attempt is bounded twice: the provider must start answering (response headers)
within ``first_byte_s`` when the answer is streamed, and the whole answer must arrive
within ``total_s``. Either way it ends with a `ChatResult` or a `ProviderError`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

import httpx
from httpx_sse import EventSource

from runtime._chat import ChatResult
from runtime._errors import ErrorKind, ProviderError
from runtime._http import ProviderClient, transport_error
from runtime.protocols import HttpCall, WireProtocol


@dataclass(frozen=True, slots=True)
class AttemptLimits:
    """Time bounds of one attempt, in seconds from its start."""

    first_byte_s: float
    total_s: float


async def run_attempt(
    client: ProviderClient, protocol: WireProtocol, call: HttpCall, limits: AttemptLimits
) -> ChatResult:
    """Send ``call`` and return the parsed answer.

    Raises:
        ProviderError: for every way the attempt can fail, transport errors included.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + limits.total_s
    first_byte = min(start + limits.first_byte_s, end) if call.stream else end
    phase = "headers"
    try:
        async with asyncio.timeout_at(first_byte) as scope:
            response = await client.send(call)
            phase = "body"
            scope.reschedule(end)
            try:
                return await _read(protocol, response, call, start)
            finally:
                await response.aclose()
    except TimeoutError:
        raise _timeout(call, phase, limits) from None
    except httpx.HTTPError as exc:
        raise transport_error(exc, call.url, limits.total_s) from None


async def _read(
    protocol: WireProtocol, response: httpx.Response, call: HttpCall, start: float
) -> ChatResult:
    status, headers = response.status_code, response.headers
    if status >= 400:  # noqa: PLR2004
        raise protocol.parse_error(status, headers, await response.aread())
    content_type = headers.get("content-type", "")
    if not (call.stream and "text/event-stream" in content_type):
        return protocol.parse_chat(status, headers, await response.aread())
    parser = protocol.stream_parser(headers)
    first_text: float | None = None
    loop = asyncio.get_running_loop()
    async for event in EventSource(response).aiter_sse():
        if parser.feed(event.event, event.data) and first_text is None:
            first_text = loop.time()
    result = parser.finish()
    if first_text is None:
        return result
    return dataclasses.replace(result, ttft_ms=(first_text - start) * 1000.0)


def _timeout(call: HttpCall, phase: str, limits: AttemptLimits) -> ProviderError:
    host = httpx.URL(call.url).host
    if phase == "headers" and call.stream and limits.first_byte_s < limits.total_s:
        return ProviderError(
            ErrorKind.TIMEOUT,
            f"{host} sent nothing back within {limits.first_byte_s:g} s (first_byte_s)",
        )
    return ProviderError(ErrorKind.TIMEOUT, f"{host} did not finish within {limits.total_s:g} s")
