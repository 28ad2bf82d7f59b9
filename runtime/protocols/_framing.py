"""How a streamed answer is cut into frames: server-sent events, JSON lines, AWS event-stream.

A protocol names its framing (`WireProtocol.framing`); the attempt asks that framing
whether a response is a stream at all (by its content type: an error or a whole answer
may come back instead) and reads the stream's frames with it. Each frame is
``(event, data)`` as `StreamParser.feed` takes it: the SSE event name and data; ``""``
and the JSON line; the AWS message's ``:event-type`` (or ``:exception-type``) and payload.

Frames are decoded from the bytes as they come off the connection, a whole network read
at a time (`Framing.chunks`): a stream's bytes arrive in a few reads, each holding many
frames, and handling them together costs a fraction of passing each line through a stack
of async iterators. The decoding itself is the libraries': httpx-sse's line splitting and
event parsing (as its `EventSource` uses them), JSON lines split on newlines, and the
event-stream messages of `EventStreamDecoder`.
"""

from __future__ import annotations

import codecs
import enum
from collections.abc import AsyncIterator
from typing import Protocol

import httpx

# httpx-sse's own decoders, as its EventSource drives them (the version is pinned <0.5).
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

from runtime.protocols._aws_eventstream import EventStreamDecoder

Frame = tuple[str, str]


class FrameDecoder(Protocol):
    """Turns a stream's bytes, read by read, into whole frames."""

    def feed(self, chunk: bytes) -> list[Frame]:
        """Take the next bytes; return the frames they complete, in order."""
        ...

    def close(self) -> list[Frame]:
        """Return the frames the stream's last bytes complete at its end."""
        ...


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

    def decoder(self) -> FrameDecoder:
        """Return a fresh decoder of this framing."""
        if self is Framing.SSE:
            return _SseFrames()
        if self is Framing.NDJSON:
            return _JsonLines()
        return _EventStreamFrames()

    async def chunks(self, response: httpx.Response) -> AsyncIterator[list[Frame]]:
        """Yield the frames of a streamed answer, a network read's worth at a time.

        A read that completes no frame yields nothing.
        """
        decoder = self.decoder()
        async for chunk in response.aiter_bytes():
            frames = decoder.feed(chunk)
            if frames:
                yield frames
        tail = decoder.close()
        if tail:
            yield tail

    async def frames(self, response: httpx.Response) -> AsyncIterator[Frame]:
        """Yield the ``(event, data)`` frames of a streamed answer, one by one."""
        async for frames in self.chunks(response):
            for frame in frames:
                yield frame


class _SseFrames:
    """Server-sent events, decoded by httpx-sse's decoders (UTF-8, as the format says)."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._lines = SSELineDecoder()
        self._events = SSEDecoder()

    def feed(self, chunk: bytes) -> list[Frame]:
        return self._frames(self._lines.decode(self._text.decode(chunk)))

    def close(self) -> list[Frame]:
        tail = self._text.decode(b"", final=True)
        lines = self._lines.decode(tail) if tail else []
        return self._frames([*lines, *self._lines.flush()])

    def _frames(self, lines: list[str]) -> list[Frame]:
        frames = []
        for line in lines:
            sse = self._events.decode(line.rstrip("\n"))
            if sse is not None:
                frames.append((sse.event, sse.data))
        return frames


class _JsonLines:
    """Newline-delimited JSON: one frame a non-blank line."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._rest = ""

    def feed(self, chunk: bytes) -> list[Frame]:
        text = self._rest + self._text.decode(chunk)
        *lines, self._rest = text.split("\n")
        return [("", line) for line in lines if line.strip()]

    def close(self) -> list[Frame]:
        rest, self._rest = self._rest + self._text.decode(b"", final=True), ""
        return [("", rest)] if rest.strip() else []


class _EventStreamFrames:
    """AWS event-stream messages."""

    def __init__(self) -> None:
        self._decoder = EventStreamDecoder()

    def feed(self, chunk: bytes) -> list[Frame]:
        return self._decoder.feed(chunk)

    def close(self) -> list[Frame]:
        return []
