"""The two APIs the gateway speaks, each as the same few functions over its wire module.

A route asks its `ServedApi` to read a request, to write a whole answer, to start a
`StreamWriter` for a streamed one, and to write a `Failure` in the API's own error shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from runtime._chat import Reply
from runtime._gateway.failures import Failure
from runtime._tools import ToolCallDelta
from runtime.protocols import _anthropic_server as anthropic
from runtime.protocols import _openai_server as openai
from runtime.protocols._serving import ServedCall


class StreamWriter(Protocol):
    """Writes one streamed answer as the events of an API."""

    def start(self) -> bytes:
        """The first events, before any content."""

    def text(self, text: str) -> bytes:
        """A piece of text."""

    def tool(self, delta: ToolCallDelta) -> bytes:
        """A piece of a tool call."""

    def end(self, reply: Reply) -> bytes:
        """The last events, from the whole reply."""


@dataclass(frozen=True, slots=True)
class ServedApi:
    """One API: its name and the pure functions of its server side."""

    name: str
    read: Callable[[Any], ServedCall]
    whole: Callable[[Reply, str, int], Any]
    """The whole answer's body from the reply, the model named and the time (Unix s)."""
    writer: Callable[[str, str, int, ServedCall], StreamWriter]
    """A writer for a stream: from the task id, the model named, the time and the call."""
    error: Callable[[Failure], Any]
    stream_error: Callable[[Failure], bytes]


OPENAI = ServedApi(
    name="openai",
    read=openai.read_chat,
    whole=openai.chat_body,
    writer=lambda ident, model, created, call: openai.ChunkWriter(
        ident, model, created, call.include_usage
    ),
    error=lambda f: openai.error_body(f.status, f.message, f.param, f.code),
    stream_error=lambda f: openai.stream_error(f.status, f.message, f.code),
)

ANTHROPIC = ServedApi(
    name="anthropic",
    read=anthropic.read_messages,
    whole=lambda reply, model, _created: anthropic.message_body(reply, model),
    writer=lambda ident, model, _created, _call: anthropic.EventWriter(ident, model),
    error=lambda f: anthropic.error_body(f.status, f.message),
    stream_error=lambda f: anthropic.stream_error(f.status, f.message),
)


def api_for_path(path: str) -> ServedApi:
    """The API whose error shape a request to ``path`` expects."""
    return ANTHROPIC if path.startswith("/v1/messages") else OPENAI
