"""OpenAI chat completions, also spoken by every OpenAI-compatible API.

Chats go to ``POST {base_url}/chat/completions``, a message's content being a string or a
list of parts, ``{"type": "text", "text"}`` and ``{"type": "image_url", "image_url": {"url"}}``
(an ``https:`` or a ``data:`` URL). Embeddings go to ``POST {base_url}/embeddings`` and come
back as ``data[].embedding`` with an ``index`` each. The start-up check lists
``GET {base_url}/models`` and looks for the configured model in it. OpenAI caches prompt
prefixes on its own, so cache marks are not sent. Errors come as
``{"error": {"message", "type", "param", "code"}}``; a stream is server-sent events of
``chat.completion.chunk`` objects ended by ``data: [DONE]``, with the usage in a last
chunk whose ``choices`` is empty (asked for with ``stream_options.include_usage``).
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

from runtime._chat import (
    ChatRequest,
    ChatResult,
    EmbedRequest,
    EmbedResult,
    Message,
    RateLimitInfo,
    TextPart,
    Usage,
)
from runtime._errors import ErrorKind, ProviderError
from runtime._tools import (
    TOOL_MODES,
    Tool,
    ToolCall,
    ToolCallBuilder,
    ToolCallDelta,
    new_call_id,
)
from runtime.protocols._base import Embeddings, HttpCall, ListModels, WireProtocol
from runtime.protocols._common import (
    as_count,
    as_dict,
    as_str,
    duration_s,
    int_header,
    is_error,
    key_headers,
    kind_for_status,
    load_json,
    malformed,
    non_json_error,
    retry_after_s,
    snippet,
    without_none,
)

if TYPE_CHECKING:
    from runtime._chat import Part, Tuning
    from runtime.protocols._base import Endpoint, Headers

NAME = "openai"

_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}
_QUOTA = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
"""Codes of a spent quota or a billing limit reached: a 429 that waiting does not cure."""
_FILTERED = frozenset({"content_filter", "content_policy_violation"})
_TYPE_KINDS = {
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "authentication_error": ErrorKind.AUTH,
    "rate_limit_exceeded": ErrorKind.RATE_LIMITED,
    "server_error": ErrorKind.SERVER,
}
_ECHOED_KEY = re.compile(r"(API key provided: )\S+?(?=\.?(?:\s|$))|sk-[\w*\-]{4,}", re.IGNORECASE)


def chat_request(endpoint: Endpoint, request: ChatRequest, stream: bool) -> HttpCall:
    """Build ``POST /chat/completions``; the system prompt leads the messages."""
    turns, system = ChatRequest.split_system(request.messages, request.system)
    messages: list[dict[str, object]] = [{"role": "system", "content": system}] if system else []
    messages += [_turn(m) for m in turns]
    body: dict[str, object] = {"model": request.model, "messages": messages}
    body.update(_tuning(request.tuning))
    body.update(tool_fields(request))
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    url = f"{endpoint.base_url}/chat/completions"
    return HttpCall("POST", url, _headers(endpoint, body=True), body, stream=stream)


def _turn(message: Message) -> dict[str, object]:
    """One turn: a tool's result answers its call by id; an assistant turn carries its calls."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    turn: dict[str, object] = {"role": message.role, "content": _content(message)}
    if message.tool_calls:
        turn["content"] = turn["content"] or None
        turn["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.raw_arguments},
            }
            for c in message.tool_calls
        ]
    return turn


def tool_fields(request: ChatRequest) -> dict[str, object]:
    """The ``tools``, ``tool_choice`` and ``response_format`` of a request (shared by Azure)."""
    fields: dict[str, object] = {}
    if request.tools:
        fields["tools"] = [_tool(tool) for tool in request.tools]
    if request.tool_choice in TOOL_MODES:
        fields["tool_choice"] = request.tool_choice
    elif request.tool_choice is not None:
        fields["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice}}
    if request.output is not None:
        fields["response_format"] = {
            "type": "json_schema",
            "json_schema": without_none(
                {"name": request.output.name, "schema": request.output.schema(),
                 "strict": request.output.strict or None}
            ),
        }  # fmt: skip
    return fields


def _tool(tool: Tool) -> dict[str, object]:
    function: dict[str, object] = {"name": tool.name, "parameters": dict(tool.parameters)}
    if tool.description:
        function["description"] = tool.description
    if tool.strict:
        function["strict"] = True
    return {"type": "function", "function": function}


def _content(message: Message) -> str | list[dict[str, object]]:
    """Plain text stays a string; parts become content parts (cache marks are dropped)."""
    parts = message.parts
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text
    return [_content_part(part) for part in parts]


def _content_part(part: Part) -> dict[str, object]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    return {"type": "image_url", "image_url": {"url": part.data_url()}}


def _tuning(tuning: Tuning) -> dict[str, object]:
    # Every compatible server takes max_tokens; OpenAI's reasoning models want
    # max_completion_tokens instead, a quirk left to the provider registry.
    values: dict[str, object] = {
        "temperature": tuning.temperature,
        "top_p": tuning.top_p,
        "max_tokens": tuning.max_tokens,
        "stop": list(tuning.stop) if tuning.stop else None,
    }
    return without_none(values)


def _headers(endpoint: Endpoint, *, body: bool) -> tuple[tuple[str, str], ...]:
    return key_headers(endpoint, body=body)


def parse_chat(status: int, headers: Headers, body: bytes) -> ChatResult:
    """Parse a whole ``chat.completion``; raise `ProviderError` for anything else."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    if not isinstance(data, dict):
        raise malformed(f"chat completion is not a JSON object: {snippet(body)}")
    if "error" in data:
        raise _error_from(as_dict(data["error"]), None, None)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise malformed("chat completion has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise malformed("chat completion choice has no message")
    return _result(
        text=as_str(message.get("content")),
        refusal=as_str(message.get("refusal")),
        model=as_str(data.get("model")),
        usage=_usage(data.get("usage")),
        finish=choices[0].get("finish_reason"),
        headers=headers,
        calls=_tool_calls(message.get("tool_calls")),
    )


def _tool_calls(value: object) -> tuple[ToolCall, ...]:
    """Read a message's ``tool_calls`` (``[{"id", "function": {"name", "arguments"}}]``)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise malformed("'tool_calls' is not a list")
    calls = []
    for index, item in enumerate(value):
        function = as_dict(as_dict(item).get("function"))
        name = as_str(function.get("name"))
        if not name:
            raise malformed(f"tool call {index} has no function name")
        call_id = as_str(as_dict(item).get("id")) or new_call_id()
        arguments = function.get("arguments")
        calls.append(_call(call_id, name, arguments if isinstance(arguments, str) else ""))
    return tuple(calls)


def _call(call_id: str, name: str, arguments: str) -> ToolCall:
    try:
        return ToolCall.of(call_id, name, arguments)
    except ValueError as exc:
        raise malformed(f"tool call {name!r}: {exc}") from None


def _result(
    *,
    text: str,
    refusal: str,
    model: str,
    usage: Usage,
    finish: object,
    headers: Headers,
    calls: tuple[ToolCall, ...] = (),
) -> ChatResult:
    reason = _finish_reason(finish)
    if not text and reason == "content_filter":
        raise ProviderError(
            ErrorKind.CONTENT_FILTER,
            "the answer was withheld by the provider's content filter",
            status=200,
            code="content_filter",
        )
    if not text and not calls and refusal:
        raise ProviderError(
            ErrorKind.CONTENT_FILTER, f"the model refused: {snippet(refusal.encode())}", status=200
        )
    return ChatResult(text, model, usage, reason, rate_limits(headers), tool_calls=calls)


def _finish_reason(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return _FINISH_REASONS.get(value, value.lower())


def _usage(value: object) -> Usage:
    usage = as_dict(value)
    return Usage(
        input_tokens=as_count(usage.get("prompt_tokens")),
        output_tokens=as_count(usage.get("completion_tokens")),
        cached_tokens=as_count(as_dict(usage.get("prompt_tokens_details")).get("cached_tokens")),
    )


def parse_error(status: int, headers: Headers, body: bytes) -> ProviderError:
    """Map an error response (any body, JSON or not) to a `ProviderError`; never raises."""
    data = load_json(body)
    if data is None:
        return non_json_error(status, headers, body)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        error = {"message": error}
    if not isinstance(error, dict):
        return ProviderError(
            kind_for_status(status),
            f"unrecognized error body: {snippet(body)}",
            status=status,
            retry_after_s=retry_after_s(headers),
        )
    return _error_from(error, status, retry_after_s(headers))


def _error_from(error: dict[str, object], status: int | None, wait: float | None) -> ProviderError:
    code = _code(error.get("code"))
    kind_tag = _code(error.get("type"))
    tags = {code, kind_tag}
    message = _message(error.get("message"), status)
    if tags & _QUOTA:
        kind = ErrorKind.QUOTA
        message = f"the account's quota or billing is exhausted (add credits): {message}"
    elif tags & _FILTERED:
        kind = ErrorKind.CONTENT_FILTER
    elif "invalid_api_key" in tags:
        kind = ErrorKind.AUTH
    elif "model_not_found" in tags:
        kind = ErrorKind.NOT_FOUND
    elif status is not None:
        kind = kind_for_status(status)
    else:
        kind = _TYPE_KINDS.get(kind_tag or "", ErrorKind.SERVER)
    return ProviderError(kind, message, status=status, retry_after_s=wait, code=code or kind_tag)


def _message(value: object, status: int | None) -> str:
    if isinstance(value, str) and value.strip():
        return _ECHOED_KEY.sub(r"\1***", snippet(value.encode()))
    return f"HTTP {status} with no message" if status is not None else "error with no message"


class _Stream:
    """Accumulates one streamed chat completion."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._model = ""
        self._usage = Usage()
        self._finish: str | None = None
        self._done = False
        self._calls = ToolCallBuilder()

    def feed(self, event: str, data: str) -> list[str | ToolCallDelta]:
        stripped = data.strip()
        if stripped == "[DONE]":
            self._done = True
            return []
        if not stripped:
            return []
        chunk = load_json(data)
        if not isinstance(chunk, dict):
            raise malformed(f"stream chunk is not a JSON object: {snippet(data.encode())}")
        if "error" in chunk or event == "error":
            raise _error_from(as_dict(chunk.get("error", chunk)), None, None)
        model = chunk.get("model")
        if model and isinstance(model, str):
            self._model = model
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = _usage(usage)
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise malformed("stream chunk has a 'choices' that is not a list")
        if len(choices) == 1:  # the usual chunk (a chunk's work is most of a stream's cost)
            return self._take(choices[0])
        return [piece for choice in choices for piece in self._take(choice)]

    def _take(self, choice: object) -> list[str | ToolCallDelta]:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            return []
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            self._finish = finish
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return []
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            self._refusal.append(refusal)
        text = delta.get("content")
        pieces: list[str | ToolCallDelta] = []
        if text and isinstance(text, str):
            self._text.append(text)
            pieces.append(text)
        calls = delta.get("tool_calls")
        if calls and isinstance(calls, list):
            for item in calls:
                piece = _call_delta(as_dict(item))
                self._calls.add(piece)
                pieces.append(piece)
        return pieces

    def finish(self) -> ChatResult:
        if not self._done and self._finish is None:
            raise malformed("stream ended before the answer was complete (no finish_reason)")
        try:
            calls = self._calls.calls()
        except ValueError as exc:
            raise malformed(f"streamed tool call: {exc}") from None
        return _result(
            text="".join(self._text),
            refusal="".join(self._refusal),
            model=self._model,
            usage=self._usage,
            finish=self._finish,
            headers=self._headers,
            calls=calls,
        )

    def usage_so_far(self) -> Usage:
        return self._usage


def _call_delta(item: dict[str, object]) -> ToolCallDelta:
    """Read one ``delta.tool_calls`` item: ``index``, and ``id`` and name on a call's first."""
    index = item.get("index", 0)
    if not isinstance(index, int) or isinstance(index, bool):
        raise malformed("a streamed tool call has an 'index' that is not a number")
    function = as_dict(item.get("function"))
    return ToolCallDelta(
        index,
        as_str(item.get("id")) or None,
        as_str(function.get("name")) or None,
        as_str(function.get("arguments")),
    )


def stream_parser(headers: Headers) -> _Stream:
    """Start parsing a streamed chat completion."""
    return _Stream(headers)


def rate_limits(headers: Headers) -> RateLimitInfo:
    """Read the ``x-ratelimit-*`` headers (resets are durations such as ``"6m0s"``)."""
    return RateLimitInfo(
        remaining_requests=int_header(headers, "x-ratelimit-remaining-requests"),
        remaining_tokens=int_header(headers, "x-ratelimit-remaining-tokens"),
        reset_requests_s=duration_s(headers.get("x-ratelimit-reset-requests")),
        reset_tokens_s=duration_s(headers.get("x-ratelimit-reset-tokens")),
        limit_requests=int_header(headers, "x-ratelimit-limit-requests"),
        limit_tokens=int_header(headers, "x-ratelimit-limit-tokens"),
    )


def models_request(endpoint: Endpoint) -> HttpCall:
    """Build ``GET /models``, which every key may call."""
    return HttpCall("GET", f"{endpoint.base_url}/models", _headers(endpoint, body=False))


def check_models(
    endpoint: Endpoint, status: int, headers: Headers, body: bytes
) -> ProviderError | None:
    """Return ``None`` when the key works and the model is listed, else the error."""
    try:
        ids = parse_models(status, headers, body)
    except ProviderError as error:
        return error
    if endpoint.model in ids:
        return None
    close = difflib.get_close_matches(endpoint.model, ids, n=3, cutoff=0.5)
    return ProviderError(
        ErrorKind.NOT_FOUND,
        f"model {endpoint.model!r} is not offered by this provider; "
        f"close matches: {', '.join(close) or 'none'}",
        code="model_not_found",
    )


def parse_models(status: int, headers: Headers, body: bytes) -> list[str]:
    """Return the ids of a ``GET /models`` answer (``data[].id``), in the order listed."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    listed = data.get("data") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        raise malformed(f"model list has no 'data' array: {snippet(body)}")
    return [model_id for item in listed if (model_id := as_str(as_dict(item).get("id")))]


def embed_request(endpoint: Endpoint, request: EmbedRequest) -> HttpCall:
    """Build ``POST /embeddings`` for every text at once (``dimensions`` only when asked)."""
    body: dict[str, object] = {"model": request.model, "input": list(request.texts)}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    url = f"{endpoint.base_url}/embeddings"
    return HttpCall("POST", url, _headers(endpoint, body=True), body)


def parse_embeddings(status: int, headers: Headers, body: bytes) -> EmbedResult:
    """Parse an embeddings ``list``: the vectors ordered by their ``index``."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    if not isinstance(data, dict):
        raise malformed(f"embeddings answer is not a JSON object: {snippet(body)}")
    if "error" in data:
        raise _error_from(as_dict(data["error"]), None, None)
    items = data.get("data")
    if not isinstance(items, list):
        raise malformed("embeddings answer has no 'data' array")
    indexed = sorted(_indexed_vector(position, item) for position, item in enumerate(items))
    usage = Usage(input_tokens=as_count(as_dict(data.get("usage")).get("prompt_tokens")))
    return EmbedResult(tuple(v for _, v in indexed), as_str(data.get("model")), usage)


def _indexed_vector(position: int, item: object) -> tuple[int, tuple[float, ...]]:
    item = as_dict(item)
    index = item.get("index", position)
    values = item.get("embedding")
    if not isinstance(index, int) or isinstance(index, bool):
        raise malformed(f"embedding {position} has an 'index' that is not a number")
    if not isinstance(values, list) or not all(_is_number(v) for v in values):
        raise malformed(f"embedding {position} has no 'embedding' array of numbers")
    return index, tuple(float(v) for v in values)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _code(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value) or None


PROTOCOL = WireProtocol(
    name=NAME,
    chat_request=chat_request,
    parse_chat=parse_chat,
    parse_error=parse_error,
    stream_parser=stream_parser,
    rate_limits=rate_limits,
    models_request=models_request,
    check_models=check_models,
    list_models=ListModels(models_request, parse_models),
    embed=Embeddings(embed_request, parse_embeddings),
    images=True,
    tools=True,
)
