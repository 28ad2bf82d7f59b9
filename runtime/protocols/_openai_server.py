"""The server side of OpenAI's API: chat completions, embeddings and models, pure.

`read_chat` turns a ``POST /v1/chat/completions`` body into a `ServedCall`; `chat_body`
writes the whole answer and `ChunkWriter` the streamed one (``chat.completion.chunk``
events, a finishing chunk, the usage chunk when ``stream_options.include_usage``, then
``[DONE]``); `error_body` is OpenAI's error shape, so the official SDKs raise their own
exception classes. The client side is `runtime.protocols._openai`.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from runtime._chat import EmbedReply, ImagePart, Message, Part, Reply, TextPart, Usage
from runtime._tools import TOOL_MODES, ToolCall, ToolCallDelta
from runtime.protocols._serving import (
    RequestError,
    ServedCall,
    flag,
    json_object,
    model_name,
    number,
    schema,
    sse,
    tool,
    tuning,
)

DONE = b"data: [DONE]\n\n"
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant",
          "tool": "tool"}  # fmt: skip
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def read_chat(body: Any) -> ServedCall:
    """Read a chat completions request.

    Raises:
        RequestError: the real API would answer 400; ``param`` names the field.
    """
    body = json_object(body)
    model = model_name(body)
    if body.get("n", 1) != 1:
        raise RequestError("n: this gateway answers one choice per request", "n")
    options = tuning(body, max_tokens="max_completion_tokens", stop="stop", extra_max="max_tokens")
    options["messages"] = _messages(body.get("messages"))
    tools = _tools(body.get("tools"))
    if tools:
        options["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            options["tool_choice"] = choice
    output = _output(body.get("response_format"))
    if output is not None:
        options["output"] = output
    stream = flag(body, "stream")
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise RequestError("stream_options: must be an object", "stream_options")
    include_usage = flag(stream_options, "include_usage")
    return ServedCall(model, options, stream, include_usage)


def _messages(value: Any) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise RequestError("messages: must be a non-empty list of messages", "messages")
    turns = []
    for index, item in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(item, dict) or item.get("role") not in _ROLES:
            raise RequestError(f"{where}: needs a role: system, user, assistant or tool", where)
        content = item.get("content")
        shaped = {**item, "role": _ROLES[item["role"]], "content": _content(content, where)}
        try:
            turns.append(Message.coerce(shaped))
        except (TypeError, ValueError) as exc:
            raise RequestError(f"{where}: {exc}", where) from None
    return turns


def _content(content: Any, where: str) -> str | tuple[Part, ...] | None:
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestError(f"{where}.content: must be a string or a list of parts", where)
    parts: list[Part] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(TextPart(part["text"]))
        elif kind == "image_url" and isinstance(part.get("image_url"), dict):
            parts.append(ImagePart(url=str(part["image_url"].get("url", ""))))
        else:
            place = f"{where}.content[{index}]"
            raise RequestError(f"{place}: parts of type text or image_url only", place)
    return tuple(parts)


def _tools(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError("tools: must be a list", "tools")
    tools = []
    for index, item in enumerate(value):
        where = f"tools[{index}]"
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or item.get("type", "function") != "function":
            raise RequestError(f"{where}: only function tools are served", where)
        tools.append(
            tool(function.get("name"), function.get("description"), function.get("parameters"),
                 function.get("strict"), where)
        )  # fmt: skip
    return tools


def _tool_choice(value: Any) -> str | None:
    if value is None or value in TOOL_MODES:
        return value  # type: ignore[no-any-return]
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        name = value["function"].get("name")
        if isinstance(name, str):
            return name
    raise RequestError(
        'tool_choice: "auto", "none", "required" or {"type": "function", "function": {"name"}}',
        "tool_choice",
    )


def _output(value: Any) -> Any:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return schema({"type": "object"}, "json_object", strict=False, where="response_format")
    if kind == "json_schema" and isinstance(value.get("json_schema"), dict):
        spec = value["json_schema"]
        strict = spec.get("strict")
        return schema(
            spec.get("schema"),
            spec.get("name"),
            strict=strict if isinstance(strict, bool) else None,
            where="response_format.json_schema.schema",
        )
    raise RequestError(
        "response_format: type must be text, json_object or json_schema", "response_format"
    )


def chat_body(reply: Reply, model: str, created: int) -> dict[str, Any]:
    """The whole answer: a ``chat.completion`` object."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text if reply.text or not reply.tool_calls else None,
        "refusal": None,
    }
    if reply.tool_calls:
        message["tool_calls"] = [_call(call) for call in reply.tool_calls]
    return {
        "id": f"chatcmpl-{reply.task_id}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": _finish(reply), "logprobs": None}
        ],
        "usage": _usage(reply.usage),
    }


def _call(call: ToolCall) -> dict[str, Any]:
    function = {"name": call.name, "arguments": call.raw_arguments}
    return {"id": call.id, "type": "function", "function": function}


def _finish(reply: Reply) -> str:
    if reply.tool_calls and reply.finish_reason in (None, "stop", "tool_calls"):
        return "tool_calls"
    return reply.finish_reason or "stop"


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


class ChunkWriter:
    """Writes one streamed answer as OpenAI's ``chat.completion.chunk`` events."""

    def __init__(self, ident: str, model: str, created: int, include_usage: bool) -> None:
        self._head = {"id": f"chatcmpl-{ident}", "object": "chat.completion.chunk",
                      "created": created, "model": model}  # fmt: skip
        self._include_usage = include_usage
        self._tools_sent = False

    def start(self) -> bytes:
        """The first chunk: the assistant's role."""
        return self._chunk({"role": "assistant", "content": ""})

    def text(self, text: str) -> bytes:
        """A chunk of text."""
        return self._chunk({"content": text})

    def tool(self, delta: ToolCallDelta) -> bytes:
        """A piece of a tool call: its id and name first, then fragments of its arguments."""
        self._tools_sent = True
        piece: dict[str, Any] = {"index": delta.index}
        function: dict[str, Any] = {"arguments": delta.arguments}
        if delta.id is not None or delta.name is not None:
            piece |= {"id": delta.id, "type": "function"}
            function["name"] = delta.name
        piece["function"] = function
        return self._chunk({"tool_calls": [piece]})

    def end(self, reply: Reply) -> bytes:
        """The last chunks: whole tool calls not streamed, the finish, usage, ``[DONE]``."""
        frames = []
        if reply.tool_calls and not self._tools_sent:
            calls = [{"index": i, **_call(call)} for i, call in enumerate(reply.tool_calls)]
            frames.append(self._chunk({"tool_calls": calls}))
        frames.append(self._chunk({}, _finish(reply)))
        if self._include_usage:
            frames.append(sse({**self._head, "choices": [], "usage": _usage(reply.usage)}))
        frames.append(DONE)
        return b"".join(frames)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return sse({**self._head, "choices": [choice]})


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object for an answer with ``status``."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")  # noqa: PLR2004
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def stream_error(status: int, message: str, code: str | None = None) -> bytes:
    """The event that reports an error mid-stream (the SDKs raise it as an API error)."""
    return sse(error_body(status, message, None, code))


def read_embed(body: Any) -> tuple[str, tuple[str, ...], int | None, str]:
    """Read an embeddings request: model, texts, dimensions and encoding format.

    Raises:
        RequestError: the real API would answer 400.
    """
    body = json_object(body)
    model = model_name(body)
    given = body.get("input")
    texts = (given,) if isinstance(given, str) else given
    if (
        not isinstance(texts, list | tuple)
        or not texts
        or not all(isinstance(t, str) and t for t in texts)
    ):
        raise RequestError("input: must be a non-empty string or list of strings", "input")
    dimensions = number(body, "dimensions", integer=True)
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise RequestError("encoding_format: must be float or base64", "encoding_format")
    return model, tuple(texts), None if dimensions is None else int(dimensions), encoding


def embed_body(reply: EmbedReply, model: str, encoding: str) -> dict[str, Any]:
    """The embeddings answer, vectors as floats or as base64 of little-endian float32."""
    data = [
        {"object": "embedding", "index": i, "embedding": _vector(vector, encoding)}
        for i, vector in enumerate(reply.vectors)
    ]
    usage = {"prompt_tokens": reply.usage.input_tokens, "total_tokens": reply.usage.input_tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


def _vector(vector: Sequence[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return list(vector)
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def model_list(names: Sequence[str], owners: Mapping[str, str]) -> dict[str, Any]:
    """The body of ``GET /v1/models``: each name, owned by what ``owners`` says."""
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": owners.get(name, "callboard")}
        for name in names
    ]
    return {"object": "list", "data": data}
