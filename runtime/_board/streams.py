"""Streamed answers: text goes from the I/O thread straight to the caller.

A sink is what the I/O thread hands each piece of text to (and the router a restart);
an iterator is what the caller reads. The reply future's done-callback closes the
stream: every piece of the answering attempt was queued before the attempt ended, and
so before the reply was set, so nothing is read after the end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from runtime._chat import (
    Reply,
    StreamDelta,
    StreamEnd,
    StreamEvent,
    StreamRestart,
    StreamToolDelta,
)
from runtime._tools import ToolCallDelta

_END = object()


class ThreadStreamSink:
    """A `StreamSink` for a thread that reads the stream: a thread-safe queue."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def delta(self, provider: str, text: str) -> None:
        """Queue a piece of text."""
        self.queue.put(StreamDelta(text, provider))

    def tool_delta(self, provider: str, delta: ToolCallDelta) -> None:
        """Queue a piece of a tool call."""
        self.queue.put(StreamToolDelta(delta, provider))

    def restart(self, provider: str, reason: str) -> None:
        """Queue the news that the text so far is void."""
        self.queue.put(StreamRestart(provider, reason))

    def close(self, _reply: concurrent.futures.Future[Any]) -> None:
        """End the stream (the reply future's done-callback)."""
        self.queue.put(_END)


class AsyncStreamSink:
    """A `StreamSink` for an asyncio task that reads the stream: an `asyncio.Queue` on its loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def delta(self, provider: str, text: str) -> None:
        """Queue a piece of text, on the reader's loop."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, StreamDelta(text, provider))

    def tool_delta(self, provider: str, delta: ToolCallDelta) -> None:
        """Queue a piece of a tool call, on the reader's loop."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, StreamToolDelta(delta, provider))

    def restart(self, provider: str, reason: str) -> None:
        """Queue the news that the text so far is void, on the reader's loop."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, StreamRestart(provider, reason))

    def close(self, _reply: concurrent.futures.Future[Any]) -> None:
        """End the stream (the reply future's done-callback)."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, _END)


def read_stream(
    sink: ThreadStreamSink,
    reply: concurrent.futures.Future[Reply],
    wait_s: float,
    on_abandon: Callable[[BaseException], object],
    lost: Callable[[], BaseException],
) -> Iterator[StreamEvent]:
    """Yield the stream's events, then `StreamEnd` (or raise the task's error).

    Closing the iterator early (``break``) or an interrupt of the wait (KeyboardInterrupt,
    SystemExit) cancels the task: ``on_abandon`` gets `GeneratorExit` or the interrupt.
    """
    deadline = time.monotonic() + wait_s
    texts = False
    try:
        while True:
            try:
                item = sink.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise lost() from None
            if item is _END:
                break
            texts = isinstance(item, StreamDelta) or (texts and not isinstance(item, StreamRestart))
            yield item
        yield from _ending(reply.result(timeout=0), texts)
    except BaseException as stop:  # re-raised: whatever ends the reading cancels the task
        if not reply.done():
            on_abandon(stop)
        raise


async def aread_stream(
    sink: AsyncStreamSink,
    reply: concurrent.futures.Future[Reply],
    wait_s: float,
    on_abandon: Callable[[], object],
    lost: Callable[[], BaseException],
) -> AsyncIterator[StreamEvent]:
    """The asyncio twin of `read_stream`."""
    texts = False
    try:
        async with asyncio.timeout(wait_s):
            while (item := await sink.queue.get()) is not _END:
                texts = isinstance(item, StreamDelta) or (
                    texts and not isinstance(item, StreamRestart)
                )
                yield item
    except TimeoutError:
        raise lost() from None
    finally:
        if not reply.done():
            on_abandon()
    for event in _ending(reply.result(timeout=0), texts):
        yield event


def _ending(reply: Reply, texts: bool) -> Iterator[StreamEvent]:
    """End a stream; a provider that answered whole (never streamed) gives one delta."""
    if not texts and reply.text:
        yield StreamDelta(reply.text, reply.provider)
    yield StreamEnd(reply)
