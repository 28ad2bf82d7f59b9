"""Anthropic's Messages API.

Chats go to ``POST {base_url}/messages`` with ``x-api-key`` and
``anthropic-version: 2023-06-01`` (or, with ``auth = "bearer"``, ``Authorization: Bearer``
as the official SDKs send an ``auth_token``). A message's content is a string or a list of
blocks: ``{"type": "text", "text"}`` and ``{"type": "image", "source"}``, the source
``{"type": "base64", "media_type", "data"}`` or ``{"type": "url", "url"}``. A cache mark puts
``"cache_control": {"type": "ephemeral"}`` on its block; Anthropic allows four such points a
request, so only the last four marks are sent. The start-up check is
``GET {base_url}/models/{model}``, which also resolves aliases; ``GET {base_url}/models``
lists them all. There is no embeddings API. Errors come as
``{"type": "error", "error": {"type", "message"}, "request_id"}``. A stream is
``message_start``, then per content block ``content_block_start``, ``content_block_delta``
events and ``content_block_stop``, then ``message_delta`` (stop reason, cumulative usage)
and ``message_stop``; ``ping`` may come at any time, and ``error`` ends it early.

Tools (the API reference's ``tools`` and ``tool_choice``; the SDK's ``ToolParam``,
``ToolChoice*Param``, ``ToolUseBlock``, ``ToolResultBlockParam``) go as
``{"name", "description", "input_schema"}``, with ``"strict": true`` and the schema
rewritten to the subset strict decoding takes (`for_claude`) for a strict `Tool`. The
choice maps one to one: ``auto`` → ``{"type": "auto"}``, ``none`` → ``{"type": "none"}``,
``required`` → ``{"type": "any"}``, a tool's name → ``{"type": "tool", "name"}``;
``disable_parallel_tool_use`` is left unset (parallel calls allowed, as on OpenAI). The
model answers ``tool_use`` blocks (``id`` ``toolu_...``, ``name``, ``input`` an object)
with ``stop_reason: "tool_use"`` (read as ``tool_calls``); streamed, a ``tool_use``
``content_block_start`` carries the id and name and ``input_json_delta`` deltas carry
``partial_json`` fragments, blocks of text, thinking and tool use interleaved by
``index`` (thinking blocks are skipped). An assistant turn's calls go back as its
``tool_use`` blocks, after its text; the results that answer them go together in ONE user
turn of ``tool_result`` blocks (``tool_use_id``, ``content``, ``is_error``), since the API
refuses a call whose result does not come in the very next message. A cache mark on a
result puts ``cache_control`` on its ``tool_result`` block. The API also refuses
``tool_use`` or ``tool_result`` blocks in a request without ``tools``; such a history
(the caller offers no tools this turn) is sent as text: each call and result written out
in its turn.

Structured output uses Anthropic's own (generally available, no beta header):
``output_config: {"format": {"type": "json_schema", "schema"}}``, the schema rewritten by
`for_claude`; the answer is a text block holding the JSON. It was chosen over a forced
tool because it is the documented mechanism ("Structured outputs", build-with-claude; the
SDK's ``OutputConfigParam`` and ``JSONOutputFormatParam``) and constrains decoding; it is
offered by the Claude 4.5 models and later, and older models answer 400. A refusal
(``stop_reason: "refusal"``, with ``stop_details.explanation`` on newer models) is a
``content_filter`` error even when some text came first: Anthropic says to discard the
refused turn.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from runtime._chat import (
    ChatRequest,
    ChatResult,
    ImagePart,
    Message,
    RateLimitInfo,
    TextPart,
    Usage,
)
from runtime._errors import ErrorKind, ProviderError
from runtime._tools import Tool, ToolCall, ToolCallBuilder, ToolCallDelta
from runtime.protocols._anthropic_schema import for_claude
from runtime.protocols._base import HttpCall, ListModels, WireProtocol
from runtime.protocols._common import (
    as_count,
    as_dict,
    as_str,
    int_header,
    is_error,
    key_headers,
    kind_for_status,
    load_json,
    malformed,
    model_lookup,
    non_json_error,
    retry_after_s,
    snippet,
    without_none,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from runtime._chat import Part, Tuning
    from runtime.protocols._base import Endpoint, Headers

NAME = "anthropic"
API_ROOT = "https://api.anthropic.com/v1"
"""The API's root as a ``base_url`` gives it (the SDK's convention, without ``/v1``, works too)."""
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; this is sent when the tuning leaves it unset."""

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
}
_TYPE_KINDS = {
    "authentication_error": ErrorKind.AUTH,
    "permission_error": ErrorKind.PERMISSION,
    "billing_error": ErrorKind.QUOTA,
    "not_found_error": ErrorKind.NOT_FOUND,
    "request_too_large": ErrorKind.BAD_REQUEST,
    "rate_limit_error": ErrorKind.RATE_LIMITED,
    "api_error": ErrorKind.SERVER,
    "timeout_error": ErrorKind.TIMEOUT,
    "overloaded_error": ErrorKind.OVERLOADED,
}
_USAGE_FIELDS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)
_TOKEN_BUCKETS = ("tokens", "input-tokens", "output-tokens")
MAX_CACHE_POINTS = 4
"""The most ``cache_control`` blocks Anthropic accepts in one request."""
_EPHEMERAL = {"type": "ephemeral"}
_CHOICES = {"auto": "auto", "none": "none", "required": "any"}
"""callboard's tool modes in Anthropic's ``tool_choice`` types (a name is ``tool``)."""
MODELS_PAGE = 1000
"""The largest page ``GET /models`` returns (``limit`` ranges from 1 to 1000)."""


def chat_request(endpoint: Endpoint, request: ChatRequest, stream: bool) -> HttpCall:
    """Build ``POST /messages``; the system prompt goes in the top-level ``system``."""
    turns, system = ChatRequest.split_system(request.messages, request.system)
    systems = [m for m in request.messages if m.role == "system"]
    blocks = bool(request.tools)  # tool_use/tool_result blocks need tool definitions
    sent = [_as_sent(m, blocks) for m in turns]
    marks = [part.cache for part in _system_parts(systems)]
    marks += [mark for m in sent for mark in _marks(m, blocks)]
    points = _CachePoints(marks)
    system_blocks = _system(request.system, systems, points)  # first: points go in order
    body: dict[str, object] = {
        "model": request.model,
        "max_tokens": _max_tokens(request.tuning),
        "messages": _messages(sent, points, blocks),
    }
    if system:
        body["system"] = system_blocks or system
    body.update(_tuning(request.tuning))
    body.update(tool_fields(request))
    if stream:
        body["stream"] = True
    url = f"{endpoint.base_url}/messages"
    return HttpCall("POST", url, _headers(endpoint, body=True), body, stream=stream)


class _CachePoints:
    """Grants ``cache_control`` to the last `MAX_CACHE_POINTS` marks, in body order."""

    def __init__(self, marks: Iterable[bool]) -> None:
        self._skip = max(0, sum(marks) - MAX_CACHE_POINTS)

    def grant(self, marked: bool) -> bool:
        if not marked:
            return False
        if self._skip:
            self._skip -= 1
            return False
        return True


def _as_sent(message: Message, blocks: bool) -> Message:
    """The turn as it goes: without tool blocks allowed, calls and results become text."""
    if message.role == "tool" and not blocks:
        error = ", which failed" if message.is_error else ""
        name = message.tool_name or "a tool"
        head = f"[result of tool call {message.tool_call_id} ({name}){error}]"
        return Message("user", (TextPart(head), *_filled(message.parts)))
    if not message.tool_calls:
        return message
    if blocks:
        return dataclasses.replace(message, content=_filled(message.parts))
    calls = [f"[tool call {c.id}: {c.name}({c.raw_arguments})]" for c in message.tool_calls]
    return Message("assistant", (*_filled(message.parts), TextPart("\n".join(calls))))


def _filled(parts: tuple[Part, ...]) -> tuple[Part, ...]:
    """The parts without empty text, which Anthropic refuses in a block list."""
    return tuple(p for p in parts if not isinstance(p, TextPart) or p.text)


def _marks(message: Message, blocks: bool) -> list[bool]:
    """The cache marks of a turn as sent: a tool result's marks make one point, on its block."""
    if message.role == "tool" and blocks:
        return [any(part.cache for part in message.parts)]
    return [part.cache for part in message.parts]


def _messages(
    turns: Iterable[Message], points: _CachePoints, blocks: bool
) -> list[dict[str, object]]:
    """The ``messages``: consecutive tool results go together in one user turn."""
    rendered: list[dict[str, object]] = []
    results: list[dict[str, object]] | None = None
    for message in turns:
        if message.role == "tool" and blocks:
            if results is None:
                results = []
                rendered.append({"role": "user", "content": results})
            results.append(_tool_result(message, points))
            continue
        results = None
        content: str | list[dict[str, object]]
        if message.tool_calls:
            content = [_block(part, points) for part in message.parts]
            content += [_tool_use(call) for call in message.tool_calls]
        else:
            content = _content(message, points)
        rendered.append({"role": message.role, "content": content})
    return rendered


def _tool_use(call: ToolCall) -> dict[str, object]:
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.arguments)}


def _tool_result(message: Message, points: _CachePoints) -> dict[str, object]:
    """A ``tool_result`` block; empty output is sent as no ``content`` at all."""
    block: dict[str, object] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    parts = _filled(message.parts)
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        block["content"] = parts[0].text
    elif parts:
        block["content"] = [_plain_block(part) for part in parts]
    if message.is_error:
        block["is_error"] = True
    if points.grant(any(part.cache for part in message.parts)):
        block["cache_control"] = dict(_EPHEMERAL)
    return block


def tool_fields(request: ChatRequest) -> dict[str, object]:
    """The ``tools``, ``tool_choice`` and ``output_config`` of a request."""
    fields: dict[str, object] = {}
    if request.tools:
        fields["tools"] = [_tool(tool) for tool in request.tools]
        if request.tool_choice is not None:
            fields["tool_choice"] = _tool_choice(request.tool_choice)
    if request.output is not None:
        schema = for_claude(request.output.json_schema)
        fields["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    return fields


def _tool(tool: Tool) -> dict[str, object]:
    definition: dict[str, object] = {"name": tool.name}
    if tool.description:
        definition["description"] = tool.description
    if tool.strict:
        definition["input_schema"] = for_claude(tool.parameters)
        definition["strict"] = True
    else:
        definition["input_schema"] = dict(tool.parameters)
    return definition


def _tool_choice(choice: str) -> dict[str, object]:
    if choice in _CHOICES:
        return {"type": _CHOICES[choice]}
    return {"type": "tool", "name": choice}


def _system_parts(systems: list[Message]) -> list[TextPart]:
    return [part for m in systems for part in m.parts if isinstance(part, TextPart) and part.text]


def _system(
    system: str | None, systems: list[Message], points: _CachePoints
) -> list[dict[str, object]] | None:
    """Text blocks when a system message marks a cache point; ``None``: send the string."""
    parts = _system_parts(systems)
    if not any(part.cache for part in parts):
        return None
    blocks = [_block(TextPart(system), points)] if system else []
    return blocks + [_block(part, points) for part in parts]


def _content(message: Message, points: _CachePoints) -> str | list[dict[str, object]]:
    """Plain text stays a string; parts (or a cache mark) make content blocks."""
    parts = message.parts
    if len(parts) == 1 and isinstance(parts[0], TextPart) and not parts[0].cache:
        return parts[0].text
    return [_block(part, points) for part in parts]


def _block(part: Part, points: _CachePoints) -> dict[str, object]:
    block = _plain_block(part)
    if points.grant(part.cache):
        block["cache_control"] = dict(_EPHEMERAL)
    return block


def _plain_block(part: Part) -> dict[str, object]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    return {"type": "image", "source": _image_source(part)}


def _image_source(image: ImagePart) -> dict[str, object]:
    """A base64 source for inline data (a ``data:`` URL included), else a URL source."""
    inline = image.inline()
    if inline is not None:
        return {"type": "base64", "media_type": inline[0], "data": inline[1]}
    return {"type": "url", "url": image.url}


def _max_tokens(tuning: Tuning) -> int:
    return tuning.max_tokens if tuning.max_tokens is not None else DEFAULT_MAX_TOKENS


def _tuning(tuning: Tuning) -> dict[str, object]:
    values: dict[str, object] = {
        "temperature": tuning.temperature,
        "top_p": tuning.top_p,
        "stop_sequences": list(tuning.stop) if tuning.stop else None,
    }
    return without_none(values)


def _headers(endpoint: Endpoint, *, body: bool) -> tuple[tuple[str, str], ...]:
    version = (("anthropic-version", API_VERSION),)
    return key_headers(endpoint, body=body, key_header="x-api-key", fixed=version)


def parse_chat(status: int, headers: Headers, body: bytes) -> ChatResult:
    """Parse a whole ``message``; raise `ProviderError` for anything else."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    if not isinstance(data, dict):
        raise malformed(f"message is not a JSON object: {snippet(body)}")
    if data.get("type") == "error":
        raise _error_from(as_dict(data.get("error")), None, None)
    content = data.get("content")
    if not isinstance(content, list):
        raise malformed("message has no 'content' array")
    text = "".join(_block_text(block) for block in content)
    counts = _usage_counts(data.get("usage"))
    stop = data.get("stop_reason"), data.get("stop_details")
    model = as_str(data.get("model"))
    return _result(text, model, counts, stop, headers, calls=_tool_calls(content))


def _block_text(block: object) -> str:
    block = as_dict(block)
    return as_str(block.get("text")) if block.get("type") == "text" else ""


def _tool_calls(content: list[object]) -> tuple[ToolCall, ...]:
    """Read the ``tool_use`` blocks of a message, in order; other blocks are not calls."""
    blocks = [b for b in map(as_dict, content) if b.get("type") == "tool_use"]
    calls = []
    for index, block in enumerate(blocks):
        name, arguments = as_str(block.get("name")), block.get("input", {})
        if not name:
            raise malformed(f"tool_use block {index} has no name")
        if not isinstance(arguments, dict):
            raise malformed(f"tool call {name!r}: input is not a JSON object")
        calls.append(ToolCall.of(as_str(block.get("id")) or f"call_{index}", name, arguments))
    return tuple(calls)


def _usage_counts(value: object) -> dict[str, int]:
    usage = as_dict(value)
    return {name: as_count(usage[name]) for name in _USAGE_FIELDS if name in usage}


def _usage(counts: dict[str, int]) -> Usage:
    return Usage(
        input_tokens=sum(counts.get(name, 0) for name in _USAGE_FIELDS[:3]),
        output_tokens=counts.get("output_tokens", 0),
        cached_tokens=counts.get("cache_read_input_tokens", 0),
        cache_write_tokens=counts.get("cache_creation_input_tokens", 0),
    )


def _result(
    text: str,
    model: str,
    counts: dict[str, int],
    ending: tuple[object, object],
    headers: Headers,
    *,
    calls: tuple[ToolCall, ...] = (),
) -> ChatResult:
    """The answer, from its text, model, usage, ``(stop_reason, stop_details)`` and calls."""
    stop, details = ending
    if stop == "refusal":
        explanation = as_str(as_dict(details).get("explanation"))
        raise ProviderError(
            ErrorKind.CONTENT_FILTER,
            "the model declined to answer (stop_reason 'refusal')"
            + (f": {explanation}" if explanation else ""),
            status=200,
            code="refusal",
        )
    usage = _usage(counts)
    reason = _STOP_REASONS.get(stop, stop.lower()) if isinstance(stop, str) else None
    return ChatResult(text, model, usage, reason, rate_limits(headers), tool_calls=calls)


def parse_error(status: int, headers: Headers, body: bytes) -> ProviderError:
    """Map an error response (any body, JSON or not) to a `ProviderError`; never raises."""
    data = load_json(body)
    if data is None:
        return non_json_error(status, headers, body)
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return ProviderError(
            kind_for_status(status),
            f"unrecognized error body: {snippet(body)}",
            status=status,
            retry_after_s=retry_after_s(headers),
        )
    return _error_from(error, status, retry_after_s(headers))


def _error_from(error: dict[str, object], status: int | None, wait: float | None) -> ProviderError:
    error_type = as_str(error.get("type"))
    message = _message(error.get("message"), status)
    if as_dict(error.get("details")).get("error_code") == "enforced_spend_limit_reached":
        kind = ErrorKind.QUOTA
        message = f"the organization's monthly spend limit is reached: {message}"
    elif error_type == "invalid_request_error" and "credit balance" in message.lower():
        # Anthropic reports an empty prepaid balance as a 400 invalid_request_error.
        kind = ErrorKind.QUOTA
    elif error_type in _TYPE_KINDS:
        kind = _TYPE_KINDS[error_type]
    elif status is not None:
        kind = kind_for_status(status)
    else:
        kind = ErrorKind.BAD_REQUEST if error_type == "invalid_request_error" else ErrorKind.SERVER
    return ProviderError(kind, message, status=status, retry_after_s=wait, code=error_type or None)


def _message(value: object, status: int | None) -> str:
    if isinstance(value, str) and value.strip():
        return snippet(value.encode())
    return f"HTTP {status} with no message" if status is not None else "error with no message"


class _Stream:
    """Accumulates one streamed message: its text, its tool calls (by block index), its end."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers
        self._text: list[str] = []
        self._model = ""
        self._counts: dict[str, int] = {}
        self._stop: object = None
        self._details: object = None
        self._stopped = False
        self._calls = ToolCallBuilder()
        self._call_at: dict[int, int] = {}
        """The call number of each ``tool_use`` block, by its content block index."""

    def feed(self, event: str, data: str) -> list[str | ToolCallDelta]:
        payload = load_json(data)
        if not isinstance(payload, dict):
            raise malformed(f"stream event is not a JSON object: {snippet(data.encode())}")
        kind = as_str(payload.get("type")) or event
        if kind == "error":
            raise _error_from(as_dict(payload.get("error")), None, None)
        if kind == "message_start":
            message = as_dict(payload.get("message"))
            self._model = as_str(message.get("model"))
            self._counts.update(_usage_counts(message.get("usage")))
        elif kind == "message_delta":
            delta = as_dict(payload.get("delta"))
            self._stop = delta.get("stop_reason", self._stop)
            self._details = delta.get("stop_details", payload.get("stop_details", self._details))
            self._counts.update(_usage_counts(payload.get("usage")))
        elif kind == "message_stop":
            self._stopped = True
        elif kind == "content_block_start":
            return self._start(payload)
        elif kind == "content_block_delta":
            return self._delta(payload)
        return []

    def _start(self, payload: dict[str, object]) -> list[str | ToolCallDelta]:
        block = as_dict(payload.get("content_block"))
        if block.get("type") == "text":
            return self._add_text(as_str(block.get("text")))
        if block.get("type") != "tool_use":
            return []  # thinking, redacted thinking, server tools
        index = payload.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise malformed("a tool_use content_block_start has no 'index'")
        self._call_at[index] = len(self._call_at)
        name = as_str(block.get("name")) or None
        piece = ToolCallDelta(self._call_at[index], as_str(block.get("id")) or None, name)
        self._calls.add(piece)
        return [piece]

    def _delta(self, payload: dict[str, object]) -> list[str | ToolCallDelta]:
        delta = as_dict(payload.get("delta"))
        if delta.get("type") == "text_delta":
            return self._add_text(as_str(delta.get("text")))
        index = payload.get("index")
        call = self._call_at.get(index) if isinstance(index, int) else None
        fragment = as_str(delta.get("partial_json"))
        if delta.get("type") != "input_json_delta" or call is None or not fragment:
            return []  # thinking and signature deltas; the empty first fragment
        piece = ToolCallDelta(call, arguments=fragment)
        self._calls.add(piece)
        return [piece]

    def _add_text(self, text: str) -> list[str | ToolCallDelta]:
        self._text.append(text)
        return [text] if text else []

    def finish(self) -> ChatResult:
        if not self._stopped:
            raise malformed("stream ended before message_stop")
        try:
            calls = self._calls.calls()
        except ValueError as exc:
            raise malformed(f"streamed tool call: {exc}") from None
        ending = self._stop, self._details
        text = "".join(self._text)
        return _result(text, self._model, self._counts, ending, self._headers, calls=calls)

    def usage_so_far(self) -> Usage:
        return _usage(self._counts)


def stream_parser(headers: Headers) -> _Stream:
    """Start parsing a streamed message."""
    return _Stream(headers)


def rate_limits(headers: Headers, now: float | None = None) -> RateLimitInfo:
    """Read the ``anthropic-ratelimit-*`` headers; resets are RFC 3339 times, made relative.

    Of the token budgets (combined, input, output), the one with the fewest tokens left
    is reported, with its reset. ``now`` (epoch seconds) defaults to the current time.
    """
    current = time.time() if now is None else now
    buckets = [
        (
            remaining,
            _seconds_until(headers.get(f"anthropic-ratelimit-{name}-reset"), current),
            int_header(headers, f"anthropic-ratelimit-{name}-limit"),
        )
        for name in _TOKEN_BUCKETS
        if (remaining := int_header(headers, f"anthropic-ratelimit-{name}-remaining")) is not None
    ]
    tokens, tokens_reset, tokens_limit = min(
        buckets, key=lambda b: (b[0], -(b[1] or 0.0)), default=(None, None, None)
    )
    return RateLimitInfo(
        remaining_requests=int_header(headers, "anthropic-ratelimit-requests-remaining"),
        remaining_tokens=tokens,
        reset_requests_s=_seconds_until(headers.get("anthropic-ratelimit-requests-reset"), current),
        reset_tokens_s=tokens_reset,
        limit_requests=int_header(headers, "anthropic-ratelimit-requests-limit"),
        limit_tokens=tokens_limit,
    )


def _seconds_until(value: str | None, now: float) -> float | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def models_request(endpoint: Endpoint) -> HttpCall:
    """Build ``GET /models/{model}``, which also resolves aliases such as ``claude-sonnet-4-5``."""
    url = f"{endpoint.base_url}/models/{quote(endpoint.model, safe='')}"
    return HttpCall("GET", url, _headers(endpoint, body=False))


def check_models(
    endpoint: Endpoint, status: int, headers: Headers, body: bytes
) -> ProviderError | None:
    """Return ``None`` when the key works and the model exists, else the error."""
    answer = (status, headers, body)
    found = model_lookup(
        endpoint, answer, parse_error, models_request, id_field="id", root=API_ROOT
    )
    return found if isinstance(found, ProviderError) else None


def list_models_request(endpoint: Endpoint) -> HttpCall:
    """Build ``GET /models?limit=1000``: one page, which holds every model Anthropic offers."""
    url = f"{endpoint.base_url}/models?limit={MODELS_PAGE}"
    return HttpCall("GET", url, _headers(endpoint, body=False))


def parse_models(status: int, headers: Headers, body: bytes) -> list[str]:
    """Return the ids of a model list (``data[].id``), newest first as Anthropic lists them.

    Only the first page is read: with ``limit=1000`` it holds them all (``has_more`` is
    not followed).
    """
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    listed = data.get("data") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        raise malformed(f"model list has no 'data' array: {snippet(body)}")
    return [model_id for item in listed if (model_id := as_str(as_dict(item).get("id")))]


PROTOCOL = WireProtocol(
    name=NAME,
    chat_request=chat_request,
    parse_chat=parse_chat,
    parse_error=parse_error,
    stream_parser=stream_parser,
    rate_limits=rate_limits,
    models_request=models_request,
    check_models=check_models,
    list_models=ListModels(list_models_request, parse_models),
    embed=None,
    images=True,
    tools=True,
    cache_points=True,
)
