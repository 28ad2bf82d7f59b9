"""Ollama's native API (``/api/chat``, ``/api/tags``, ``/api/embed``).

Chats go to ``POST {base_url}/api/chat`` with ``stream`` always said (Ollama streams when
it is left out); tuning travels in ``options`` (``num_predict`` is the token budget) and
images as bare base64 in a message's ``images``. A streamed answer is newline-delimited
JSON: partial ``{"message": {"content"}, "done": false}`` objects, then one with
``done: true``, the ``done_reason`` and the token counts. Errors are ``{"error": "..."}``
with the HTTP status, or such a line mid-stream (the status already sent stays 200). The
base URL has no version path (``http://localhost:11434``); a local Ollama takes no key, and
one behind a proxy or on ollama.com takes ``Authorization: Bearer``. The start-up check
lists ``GET /api/tags``, where a model named without a tag is ``name:latest``. Ollama sends
no rate-limit headers.

Tools are ``tools: [{"type": "function", "function": {name, description, parameters}}]``
(Ollama's ``docs/api.md`` and ``docs/openapi.yaml``); a tool's ``strict`` has no Ollama
counterpart and is not sent. Ollama has no ``tool_choice``, so callboard maps it to the
nearest the API allows: ``auto`` sends the tools as they are; ``none`` sends no tools at
all; ``required`` adds to the system prompt an instruction to call one of the tools
before answering, and a tool's name offers that tool alone with an instruction to call
it (a model may still answer in text: Ollama cannot force a call). Calls come as
``message.tool_calls`` of ``{"function": {"name", "arguments"}}``, arguments an object,
with ``done_reason: "stop"`` (there is no reason of its own for tool use, so an answer
with calls is reported as ``tool_calls``); the documented API sends no call ids, so
callboard makes them (`new_call_id`), and takes an ``id`` where a server sends one. A
stream sends each call whole in one line (Ollama does not stream arguments), so each is
one `ToolCallDelta`. An assistant turn goes back with its ``tool_calls``, and a result as
``{"role": "tool", "tool_name", "content"}``: Ollama pairs results with calls by name
and order, not by id, and has no error flag, so a failed tool's content begins
``Error: ``.

Structured output is ``format`` set to the JSON schema (Ollama's own mechanism, which
constrains decoding to it).
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from runtime._chat import ChatRequest, ChatResult, EmbedResult, ImagePart, RateLimitInfo, Usage
from runtime._errors import ErrorKind, ProviderError
from runtime._tools import ToolCall, ToolCallDelta, new_call_id
from runtime.protocols._base import Embeddings, HttpCall, ListModels, WireProtocol
from runtime.protocols._common import (
    as_count,
    as_dict,
    as_str,
    is_error,
    is_matrix,
    key_headers,
    kind_for_status,
    load_json,
    malformed,
    non_json_error,
    retry_after_s,
    snippet,
    without_none,
)
from runtime.protocols._framing import Framing

if TYPE_CHECKING:
    from runtime._chat import EmbedRequest, Message, Tuning
    from runtime._tools import Tool
    from runtime.protocols._base import Endpoint, Headers

NAME = "ollama"
DEFAULT_BASE_URL = "http://localhost:11434"

_FINISH_REASONS = {"stop": "stop", "length": "length"}
_LATEST = ":latest"
ERROR_PREFIX = "Error: "
"""How a failed tool's result begins: Ollama's tool turns have no error flag."""
_MUST_CALL = "You must call at least one of the tools you are given before you answer."


def tagged(model: str) -> str:
    """Return ``model`` with its tag: Ollama reads a name without one as ``name:latest``."""
    return model if ":" in model.rsplit("/", 1)[-1] else model + _LATEST


def chat_request(endpoint: Endpoint, request: ChatRequest, stream: bool) -> HttpCall:
    """Build ``POST /api/chat``; the system prompt leads the messages.

    Raises:
        ProviderError: a message holds an image given by URL (``bad_request``): Ollama takes
            images as base64 only.
    """
    turns, system = ChatRequest.split_system(request.messages, request.system)
    tools, instruction = _tools_and_instruction(request)
    if instruction:
        system = f"{system}\n\n{instruction}" if system else instruction
    messages: list[dict[str, object]] = [{"role": "system", "content": system}] if system else []
    messages += [_message(m) for m in turns]
    body: dict[str, object] = {"model": request.model, "messages": messages, "stream": stream}
    if tools:
        body["tools"] = [_tool(tool) for tool in tools]
    if request.output is not None:
        body["format"] = request.output.schema()
    options = _options(request.tuning)
    if options:
        body["options"] = options
    url = f"{endpoint.base_url}/api/chat"
    return HttpCall("POST", url, _headers(endpoint, body=True), body, stream=stream)


def _message(message: Message) -> dict[str, object]:
    images: list[str] = []
    for part in message.parts:
        if not isinstance(part, ImagePart):
            continue
        inline = part.inline()
        if inline is None:
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                "Ollama takes base64 images only, so an image given by URL cannot be sent: "
                "fetch it and pass it as data with its media_type",
            )
        images.append(inline[1])
    entry: dict[str, object] = {"role": message.role, "content": message.text}
    if images:
        entry["images"] = images
    if message.tool_calls:
        entry["tool_calls"] = [_call(index, call) for index, call in enumerate(message.tool_calls)]
    if message.role == "tool":
        entry["content"] = ERROR_PREFIX + message.text if message.is_error else message.text
        if message.tool_name:
            entry["tool_name"] = message.tool_name
    return entry


def _call(index: int, call: ToolCall) -> dict[str, object]:
    function = {"index": index, "name": call.name, "arguments": dict(call.arguments)}
    return {"type": "function", "function": function}


def _tools_and_instruction(request: ChatRequest) -> tuple[tuple[Tool, ...], str | None]:
    """The tools to send and the system instruction that stands in for ``tool_choice``."""
    choice = request.tool_choice
    if not request.tools or choice == "none":
        return (), None
    if choice == "required":
        return request.tools, _MUST_CALL
    named = tuple(tool for tool in request.tools if tool.name == choice)
    if named:
        return named, f"You must call the tool {choice} before you answer."
    return request.tools, None


def _tool(tool: Tool) -> dict[str, object]:
    function: dict[str, object] = {"name": tool.name, "parameters": dict(tool.parameters)}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _options(tuning: Tuning) -> dict[str, object]:
    values: dict[str, object] = {
        "temperature": tuning.temperature,
        "top_p": tuning.top_p,
        "num_predict": tuning.max_tokens,
        "stop": list(tuning.stop) if tuning.stop else None,
    }
    return without_none(values)


def _headers(endpoint: Endpoint, *, body: bool) -> tuple[tuple[str, str], ...]:
    return key_headers(endpoint, body=body)


class _Stream:
    """Accumulates one answer from its JSON lines (a whole answer is a single line)."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers
        self._text: list[str] = []
        self._model = ""
        self._usage = Usage()
        self._finish: str | None = None
        self._done = False
        self._calls: list[ToolCall] = []

    def feed(self, event: str, data: str) -> list[str | ToolCallDelta]:  # noqa: ARG002 - NDJSON has no events
        if not data.strip():
            return []
        chunk = load_json(data)
        if not isinstance(chunk, dict):
            raise malformed(f"stream line is not a JSON object: {snippet(data.encode())}")
        return self.add(chunk)

    def add(self, chunk: dict[str, object]) -> list[str | ToolCallDelta]:
        if "error" in chunk:
            raise _error_from(chunk["error"], None, None)
        self._model = as_str(chunk.get("model")) or self._model
        message = as_dict(chunk.get("message"))
        text = as_str(message.get("content"))
        self._text.append(text)
        pieces: list[str | ToolCallDelta] = [text] if text else []
        for item in _list(message.get("tool_calls")):
            call = _read_call(len(self._calls), item)
            pieces.append(ToolCallDelta(len(self._calls), call.id, call.name, call.raw_arguments))
            self._calls.append(call)
        if chunk.get("done") is True:
            self._done = True
            self._finish = as_str(chunk.get("done_reason")) or "stop"
            self._usage = Usage(
                input_tokens=as_count(chunk.get("prompt_eval_count")),
                output_tokens=as_count(chunk.get("eval_count")),
            )
        return pieces

    def usage_so_far(self) -> Usage:
        return self._usage

    def finish(self) -> ChatResult:
        if not self._done:
            raise malformed("stream ended before the answer was complete (no line with done: true)")
        finish = self._finish
        reason = _FINISH_REASONS.get(finish, finish.lower()) if finish else None
        if self._calls and reason == "stop":
            reason = "tool_calls"
        limits = rate_limits(self._headers)
        text = "".join(self._text)
        calls = tuple(self._calls)
        return ChatResult(text, self._model, self._usage, reason, limits, tool_calls=calls)


def _list(value: object) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise malformed("'tool_calls' is not a list")
    return value


def _read_call(index: int, item: object) -> ToolCall:
    """One of ``message.tool_calls``: ``{"function": {"name", "arguments": {...}}}``.

    Raises:
        ProviderError: no name, or arguments that are not a JSON object (``malformed_response``).
    """
    function = as_dict(as_dict(item).get("function"))
    name = as_str(function.get("name"))
    if not name:
        raise malformed(f"tool call {index} has no function name")
    arguments = function.get("arguments", {})
    call_id = as_str(as_dict(item).get("id")) or new_call_id()
    if not isinstance(arguments, dict | str):
        kind = type(arguments).__name__
        raise malformed(f"tool call {name!r}: arguments must be a JSON object, not {kind}")
    try:
        return ToolCall.of(call_id, name, arguments)
    except ValueError as exc:
        raise malformed(f"tool call {name!r}: {exc}") from None


def stream_parser(headers: Headers) -> _Stream:
    """Start parsing a streamed answer, one JSON line per `feed` (``event`` is ``""``)."""
    return _Stream(headers)


def parse_chat(status: int, headers: Headers, body: bytes) -> ChatResult:
    """Parse a whole answer; raise `ProviderError` for anything else.

    A streamed answer read whole (JSON lines) is parsed line by line, so an answer sent as
    a stream by mistake still reads.
    """
    if is_error(status):
        raise parse_error(status, headers, body)
    parser = _Stream(headers)
    data = load_json(body)
    if isinstance(data, dict):
        if "error" not in data and data.get("done") is not True:
            raise malformed(f"answer is not a finished chat response: {snippet(body)}")
        parser.add(data)
    elif data is None and _json_lines(body):
        for line in _json_lines(body):
            parser.feed("", line)
    else:
        raise malformed(f"answer is not a JSON object: {snippet(body)}")
    return parser.finish()


def _json_lines(body: bytes) -> list[str]:
    """The lines of a body of two or more JSON lines, else none."""
    lines = [line for line in body.decode("utf-8", errors="replace").splitlines() if line.strip()]
    return lines if len(lines) > 1 else []


def parse_error(status: int, headers: Headers, body: bytes) -> ProviderError:
    """Map an error response (any body, JSON or not) to a `ProviderError`; never raises."""
    data = load_json(body)
    if data is None:
        return non_json_error(status, headers, body)
    if not isinstance(data, dict) or "error" not in data:
        return ProviderError(
            kind_for_status(status),
            f"unrecognized error body: {snippet(body)}",
            status=status,
            retry_after_s=retry_after_s(headers),
        )
    return _error_from(data["error"], status, retry_after_s(headers))


def _error_from(error: object, status: int | None, wait: float | None) -> ProviderError:
    message = as_str(error) or as_str(as_dict(error).get("message"))
    message = snippet(message.encode()) if message.strip() else "error with no message"
    kind = ErrorKind.SERVER if status is None else kind_for_status(status)
    if kind is ErrorKind.NOT_FOUND and "model" in message and "pull" not in message:
        message += " (run `ollama pull <model>` on the server)"
    return ProviderError(kind, message, status=status, retry_after_s=wait)


def rate_limits(headers: Headers) -> RateLimitInfo:  # noqa: ARG001
    """Return an empty `RateLimitInfo`: Ollama sends no rate-limit headers."""
    return RateLimitInfo()


def models_request(endpoint: Endpoint) -> HttpCall:
    """Build ``GET /api/tags``, the list of the models the server has pulled."""
    return HttpCall("GET", f"{endpoint.base_url}/api/tags", _headers(endpoint, body=False))


def _model_names(status: int, headers: Headers, body: bytes) -> list[str]:
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    listed = data.get("models") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        raise malformed(f"model list has no 'models' array: {snippet(body)}")
    names = [as_str(as_dict(m).get("name")) or as_str(as_dict(m).get("model")) for m in listed]
    return [name for name in names if name]


def check_models(
    endpoint: Endpoint, status: int, headers: Headers, body: bytes
) -> ProviderError | None:
    """Return ``None`` when the server has the model (``name`` or ``name:latest``), else why."""
    try:
        names = _model_names(status, headers, body)
    except ProviderError as error:
        return error
    if tagged(endpoint.model) in {tagged(name) for name in names}:
        return None
    close = difflib.get_close_matches(endpoint.model, names, n=3, cutoff=0.5)
    return ProviderError(
        ErrorKind.NOT_FOUND,
        f"model {endpoint.model!r} is not on this Ollama server (run `ollama pull "
        f"{endpoint.model}` there); close matches: {', '.join(close) or 'none'}",
        code="model_not_found",
    )


def embed_request(endpoint: Endpoint, request: EmbedRequest) -> HttpCall:
    """Build ``POST /api/embed`` for every text at once."""
    body: dict[str, object] = {"model": request.model, "input": list(request.texts)}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    url = f"{endpoint.base_url}/api/embed"
    return HttpCall("POST", url, _headers(endpoint, body=True), body)


def parse_embed(status: int, headers: Headers, body: bytes) -> EmbedResult:
    """Parse ``{"model", "embeddings": [[...], ...], "prompt_eval_count"}``."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    vectors = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not is_matrix(vectors):
        raise malformed(f"embeddings answer has no 'embeddings' array of vectors: {snippet(body)}")
    return EmbedResult(
        vectors=tuple(tuple(float(x) for x in vector) for vector in vectors),
        model=as_str(data.get("model")),
        usage=Usage(input_tokens=as_count(data.get("prompt_eval_count"))),
    )


PROTOCOL = WireProtocol(
    name=NAME,
    chat_request=chat_request,
    parse_chat=parse_chat,
    parse_error=parse_error,
    stream_parser=stream_parser,
    rate_limits=rate_limits,
    models_request=models_request,
    check_models=check_models,
    framing=Framing.NDJSON,
    list_models=ListModels(request=models_request, parse=_model_names),
    embed=Embeddings(request=embed_request, parse=parse_embed),
    image_urls=False,
    tools=True,
)
