"""How a streamed answer is cut into frames: server-sent events, JSON lines, AWS event-stream.

A protocol names its framing (`WireProtocol.framing`); the attempt asks that framing
whether a response is a stream at all (by its content type: an error or a whole answer
may come back instead) and reads the stream's frames with it. Each frame is
``(event, data)`` as `StreamParser.feed` takes it: the SSE event name and data; ``""``
and the JSON line; the AWS message's ``:event-type`` (or ``:exception-type``) and payload.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator

import httpx
from httpx_sse import EventSource

from runtime.protocols._aws_eventstream import EventStreamDecoder


class Framing(enum.StrEnum):
    """The framings of streamed answers."""

    SSE = "sse"
    """Server-sent events (``text/event-stream``): most APIs."""
    NDJSON = "ndjson"
    """Newline-delimited JSON (Ollama)."""
    AWS_EVENTSTREAM = "aws-eventstream"
    """Binary AWS event-stream messages (Bedrock's ConverseStream)."""

    def is_stream(self, content_type: str) -> bool:
        """Whether a response of ``content_type`` is a stream in this framing."""
        if self is Framing.SSE:
            return "text/event-stream" in content_type
        if self is Framing.NDJSON:
            return "json" in content_type  # Ollama says application/x-ndjson
        return "vnd.amazon.eventstream" in content_type

    async def frames(self, response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
        """Yield the ``(event, data)`` frames of a streamed answer as they arrive."""
        if self is Framing.SSE:
            async for sse in EventSource(response).aiter_sse():
                yield sse.event, sse.data
        elif self is Framing.NDJSON:
            async for line in response.aiter_lines():
                if line.strip():
                    yield "", line
        else:
            decoder = EventStreamDecoder()
            async for chunk in response.aiter_raw():
                for name, payload in decoder.feed(chunk):
                    yield name, payload
