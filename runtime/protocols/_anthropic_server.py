"""The server side of Anthropic's Messages API, pure.

`read_messages` turns a ``POST /v1/messages`` body into a `ServedCall` (``tool_use`` and
``tool_result`` blocks become callboard's tool calls and results); `message_body` writes
the whole answer and `EventWriter` the streamed one, in Anthropic's own event order
(``message_start``, then per block ``content_block_start``, its deltas and
``content_block_stop``, then ``message_delta`` and ``message_stop``); `error_body` is
Anthropic's error shape. The client side is `runtime.protocols._anthropic`.
"""

from __future__ import annotations

from typing import Any

from runtime._chat import ImagePart, Message, Part, Reply, TextPart, ToolResult, Usage
from runtime._tools import ToolCall, ToolCallDelta
from runtime.protocols._serving import (
    RequestError,
    ServedCall,
    flag,
    json_object,
    model_name,
    number,
    sse,
    tool,
    tuning,
)

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                 "content_filter": "refusal"}  # fmt: skip
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def read_messages(body: Any) -> ServedCall:
    """Read a Messages API request.

    Raises:
        RequestError: the real API would answer 400; ``param`` names the field.
    """
    body = json_object(body)
    model = model_name(body)
    if number(body, "max_tokens", integer=True) is None:
        raise RequestError("max_tokens: Field required", "max_tokens")
    options = tuning(body, max_tokens="max_tokens", stop="stop_sequences")
    options["messages"] = _messages(body.get("messages"))
    system = _system(body.get("system"))
    if system:
        options["system"] = system
    tools = _tools(body.get("tools"))
    choice = _tool_choice(body.get("tool_choice"))
    if tools:
        options["tools"] = tools
        if choice is not None:
            options["tool_choice"] = choice
    return ServedCall(model, options, flag(body, "stream"))


def _system(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n\n".join(b["text"] for b in value if isinstance(b, dict) and "text" in b)
    raise RequestError("system: must be a string or a list of text blocks", "system")


def _messages(value: Any) -> list[Message | ToolResult]:
    if not isinstance(value, list) or not value:
        raise RequestError("messages: must be a non-empty list", "messages")
    turns: list[Message | ToolResult] = []
    for index, item in enumerate(value):
        where = f"messages.{index}"
        role = item.get("role") if isinstance(item, dict) else None
        if role not in ("user", "assistant"):
            raise RequestError(f"{where}.role: must be user or assistant", f"{where}.role")
        content = item["content"]
        if isinstance(content, str):
            turns.append(Message(role, content))
        elif isinstance(content, list):
            turns.extend(_turns(role, content, where))
        else:
            raise RequestError(f"{where}.content: must be a string or a list of blocks", where)
    return turns


def _turns(role: str, blocks: list[Any], where: str) -> list[Message | ToolResult]:
    """One message's blocks as callboard turns: tool results first, then the message."""
    results: list[Message | ToolResult] = []
    parts: list[Part] = []
    calls: list[ToolCall] = []
    for index, block in enumerate(blocks):
        place = f"{where}.content.{index}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(TextPart(block["text"], cache=bool(block.get("cache_control"))))
        elif kind == "image":
            parts.append(_image(block.get("source"), place))
        elif kind == "tool_use" and role == "assistant":
            calls.append(_call(block, place))
        elif kind == "tool_result" and role == "user":
            results.append(_result(block, place))
        elif kind not in ("thinking", "redacted_thinking"):
            raise RequestError(f"{place}: blocks of type {kind!r} are not served here", place)
    if parts or calls:
        message = Message(role, tuple(parts) if parts else "", tool_calls=tuple(calls))  # type: ignore[arg-type]
        results.append(message)
    return results


def _image(source: Any, place: str) -> ImagePart:
    if isinstance(source, dict) and source.get("type") == "base64":
        return ImagePart(data=str(source.get("data", "")), media_type=source.get("media_type"))
    if isinstance(source, dict) and source.get("type") == "url":
        return ImagePart(url=str(source.get("url", "")))
    raise RequestError(f"{place}.source: must be a base64 or url image source", place)


def _call(block: dict[str, Any], place: str) -> ToolCall:
    call_id, name, given = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(given, dict):
        raise RequestError(f"{place}: a tool_use block needs an id, a name and an input", place)
    return ToolCall.of(call_id, name, given)


def _result(block: dict[str, Any], place: str) -> ToolResult:
    call_id, content = block.get("tool_use_id"), block.get("content", "")
    if not isinstance(call_id, str):
        raise RequestError(f"{place}.tool_use_id: Field required", place)
    if isinstance(content, list):
        content = "\n\n".join(b["text"] for b in content if isinstance(b, dict) and "text" in b)
    if not isinstance(content, str):
        raise RequestError(f"{place}.content: must be a string or text blocks", place)
    return ToolResult(call_id, content, bool(block.get("is_error", False)))


def _tools(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError("tools: must be a list", "tools")
    tools = []
    for index, item in enumerate(value):
        where = f"tools.{index}"
        if not isinstance(item, dict) or item.get("type", "custom") != "custom":
            raise RequestError(f"{where}: only custom (client) tools are served", where)
        tools.append(
            tool(item.get("name"), item.get("description"), item.get("input_schema"), None, where)
        )
    return tools


def _tool_choice(value: Any) -> str | None:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("auto", "none"):
        return str(kind)
    if kind == "any":
        return "required"
    if kind == "tool" and isinstance(value.get("name"), str):
        return str(value["name"])
    raise RequestError("tool_choice.type: must be auto, any, tool or none", "tool_choice")


def message_body(reply: Reply, model: str) -> dict[str, Any]:
    """The whole answer: a ``message`` object."""
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    content.extend(_tool_use(call) for call in reply.tool_calls)
    return {**_message(reply.task_id, model, _usage(reply.usage)), "content": content,
            "stop_reason": _stop_reason(reply)}  # fmt: skip


def _message(task_id: str, model: str, usage: dict[str, int]) -> dict[str, Any]:
    return {"id": f"msg_{task_id}", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}  # fmt: skip


def _tool_use(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)}


def _stop_reason(reply: Reply) -> str:
    if reply.tool_calls:
        return "tool_use"
    return _STOP_REASONS.get(reply.finish_reason or "stop", "end_turn")


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


class EventWriter:
    """Writes one streamed answer as the Messages API's events, block by block."""

    def __init__(self, ident: str, model: str) -> None:
        self._ident, self._model = ident, model
        self._block = -1
        self._open: tuple[str, int] | None = None
        """The open block: ``("text", -1)`` or ``("tool_use", call index)``."""
        self._tools_sent = False

    def start(self) -> bytes:
        """The ``message_start`` event (usage comes with ``message_delta`` at the end)."""
        zero = {"input_tokens": 0, "output_tokens": 0}
        return sse({"type": "message_start", "message": _message(self._ident, self._model, zero)},
                   "message_start")  # fmt: skip

    def text(self, text: str) -> bytes:
        """A piece of text, opening a text block if none is open."""
        head = self._switch(("text", -1), {"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        return head + self._delta(delta)

    def tool(self, delta: ToolCallDelta) -> bytes:
        """A piece of a tool call, opening its ``tool_use`` block at its first piece."""
        self._tools_sent = True
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": delta.id,
            "name": delta.name,
            "input": {},
        }
        head = self._switch(("tool_use", delta.index), block)
        if not delta.arguments:
            return head
        return head + self._delta({"type": "input_json_delta", "partial_json": delta.arguments})

    def end(self, reply: Reply) -> bytes:
        """The last events: whole tool calls not streamed, ``message_delta``, ``message_stop``."""
        frames = []
        if not self._tools_sent:
            for index, call in enumerate(reply.tool_calls):
                piece = ToolCallDelta(index, call.id, call.name, call.raw_arguments)
                frames.append(self.tool(piece))
        frames.append(self._close())
        delta = {"stop_reason": _stop_reason(reply), "stop_sequence": None}
        usage = _usage(reply.usage)
        frames.append(sse({"type": "message_delta", "delta": delta, "usage": usage},
                          "message_delta"))  # fmt: skip
        frames.append(sse({"type": "message_stop"}, "message_stop"))
        return b"".join(frames)

    def _switch(self, key: tuple[str, int], block: dict[str, Any]) -> bytes:
        if self._open == key:
            return b""
        closed = self._close()
        self._block += 1
        self._open = key
        start = {"type": "content_block_start", "index": self._block, "content_block": block}
        return closed + sse(start, "content_block_start")

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return sse({"type": "content_block_stop", "index": self._block}, "content_block_stop")

    def _delta(self, delta: dict[str, Any]) -> bytes:
        event = {"type": "content_block_delta", "index": self._block, "delta": delta}
        return sse(event, "content_block_delta")


def error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error object for an answer with ``status``."""
    kind = _ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def stream_error(status: int, message: str) -> bytes:
    """The ``error`` event that reports a failure mid-stream."""
    return sse(error_body(status, message), "error")
