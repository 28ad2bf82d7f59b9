"""The Anthropic Messages wire format, as the fake server writes it (pure functions).

Documented shapes: content blocks (``text``, ``image`` with a ``base64`` or ``url`` source,
either with ``cache_control: {"type": "ephemeral"}``, four at most, counted in tool
definitions and inside tool results too), the ``message`` object, the streaming event
sequence (``message_start``, ``content_block_start``, ``ping``, ``content_block_delta``
with ``text_delta``, ``content_block_stop``, ``message_delta``, ``message_stop``, and
``error``), error bodies ``{"type": "error", "error": {"type", "message"}, "request_id"}``,
the ``anthropic-ratelimit-*`` headers with RFC 3339 reset times, and the models endpoints.

Tools (API reference "Messages", the SDK's ``ToolParam``, ``ToolChoice*Param``,
``ToolUseBlock``, ``ToolResultBlockParam``, ``InputJSONDelta``): ``tools`` and
``tool_choice`` are read and checked, and tool turns checked, as `_anthropic_tools` lists.
A call is a ``tool_use`` block (``id`` ``toolu_01...``, ``name``, ``input``) after the text
block, if any, with ``stop_reason: "tool_use"``; streamed, each call is a block of its own
index: ``content_block_start`` with ``{"type": "tool_use", "id", "name", "input": {}}``, an
empty ``input_json_delta`` then the input's JSON in fragments, ``content_block_stop``
(the order of the "Streaming Messages" page). Structured output (``output_config.format``
``json_schema``, page "Structured outputs") is answered as text. A refusal ends with
``stop_reason: "refusal"`` and ``stop_details`` ``{"type": "refusal", "category",
"explanation"}`` (page "Handle streaming refusals"; in a stream, on ``message_delta``).

Each public function has the signature `runtime.testing._wire.Wire` asks for, so some
ignore arguments other protocols need.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from runtime.testing._anthropic_tools import (
    check_tool_turns,
    read_output_format,
    read_tool_choice,
    read_tools,
    result_texts,
)
from runtime.testing._budget import BudgetState, rfc3339_in, whole_seconds
from runtime.testing._completion import (
    AskError,
    ChatAsk,
    Completion,
    Ending,
    positive_int,
    random_id,
    split_text,
    stop_list,
    texts_of,
)
from runtime.testing._provider import FakeProvider
from runtime.testing._script import Fail, StreamError, ToolUse
from runtime.testing._wire import (
    Action,
    Reply,
    Route,
    StreamPlan,
    Wire,
    sse_frame,
    wire_of,
)

NAME: str = "anthropic"
API_ROOT: str = "/v1"
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/messages", Action.CHAT),
    Route("GET", "/v1/models", Action.LIST_MODELS),
    Route("GET", "/v1/models/{model}", Action.GET_MODEL),
)
MODELS: tuple[str, ...] = (
    "claude-opus-4-1",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "claude-sonnet-4-20250514",
    "claude-3-5-haiku-20241022",
)
REQUESTS_PER_MINUTE: int = 4_000
TOKENS_PER_MINUTE: int = 400_000

_STOP_REASON = {
    Ending.NATURAL: "end_turn",
    Ending.LENGTH: "max_tokens",
    Ending.STOP_SEQUENCE: "stop_sequence",
}
_RATE_LIMIT_ADVICE = (
    "For details, refer to: https://docs.anthropic.com/en/api/rate-limits. You can see the "
    "response headers for current usage. Please reduce the prompt length or the maximum "
    "tokens requested, or try again later. You may also contact sales at "
    "https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."
)
_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_MAX_CACHE_POINTS = 4
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit. " + _RATE_LIMIT_ADVICE,
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timeout"),
    529: ("overloaded_error", "Overloaded"),
}


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:  # noqa: ARG001
    """The ``x-api-key`` header."""
    return headers.get("x-api-key") or None


def error_body(kind: str, message: str) -> Any:
    """Anthropic's error envelope, with a request id."""
    error = {"type": kind, "message": message}
    return {"type": "error", "error": error, "request_id": random_id("req_011C", 20)}


def auth_error(presented: str | None) -> Reply:
    """401 ``authentication_error``."""
    message = "x-api-key header is required" if presented is None else "invalid x-api-key"
    return Reply(401, error_body("authentication_error", message))


def header_error(headers: Mapping[str, str]) -> Reply | None:
    """400 when ``anthropic-version`` is missing, as the real API answers."""
    if headers.get("anthropic-version"):
        return None
    return Reply(400, error_body("invalid_request_error", "anthropic-version: header is required"))


def read_ask(
    body: Any,
    *,
    model: str | None,  # noqa: ARG001 - Anthropic has the model in the body
    stream: bool,  # noqa: ARG001 - ...and says in the body whether to stream
    query: Mapping[str, str],  # noqa: ARG001
) -> ChatAsk:
    """Read a ``POST /v1/messages`` body."""
    if not isinstance(body, Mapping):
        raise AskError("There was an error parsing the body of your request.")
    for required in ("model", "messages", "max_tokens"):
        if body.get(required) is None:
            raise AskError(f"{required}: Field required", required)
    name, messages = body["model"], body["messages"]
    if not isinstance(name, str) or not isinstance(messages, list):
        raise AskError("model: must be a string and messages a list", "model")
    _check_cache_points(body, messages)
    tools, offered = read_tools(body.get("tools")), bool(body.get("tools"))
    check_tool_turns(messages, tools=offered)
    texts = [*texts_of(body.get("system"))]
    texts += [t for m in messages if isinstance(m, Mapping) for t in texts_of(m.get("content"))]
    return ChatAsk(
        model=name,
        prompt="\n".join([*texts, *result_texts(messages)]),
        stream=body.get("stream") is True,
        max_tokens=positive_int(body, "max_tokens"),
        stop=stop_list(body.get("stop_sequences")),
        tools=tools,
        tool_choice=read_tool_choice(body.get("tool_choice"), tools, tools=offered),
        json_schema=read_output_format(body, name),
        call_id_prefix="toolu_01",
    )


def _check_cache_points(body: Mapping[str, Any], messages: list[Any]) -> None:
    """Refuse malformed blocks, and more than four cache points (tools and system included)."""
    tools = body.get("tools")
    points = sum(
        isinstance(t, Mapping) and t.get("cache_control") is not None
        for t in (tools if isinstance(tools, list) else ())
    )
    points += _check_blocks(body.get("system"), "system")
    for i, message in enumerate(messages):
        if isinstance(message, Mapping):
            points += _check_blocks(message.get("content"), f"messages.{i}.content")
    if points > _MAX_CACHE_POINTS:
        raise AskError(
            f"A maximum of {_MAX_CACHE_POINTS} blocks with cache_control may be provided. "
            f"Found {points}."
        )


def _check_blocks(content: Any, where: str) -> int:
    """Refuse malformed image blocks and cache marks; return how many cache marks there are."""
    if not isinstance(content, list):
        return 0
    points = 0
    for j, block in enumerate(content):
        if not isinstance(block, Mapping):
            continue
        here = f"{where}.{j}.{block.get('type')}"
        if block.get("type") == "image":
            _check_image_source(block.get("source"), f"{here}.source")
        if block.get("type") == "tool_result":
            points += _check_blocks(block.get("content"), f"{here}.content")
        if block.get("cache_control") is not None:
            _check_cache_control(block["cache_control"], f"{here}.cache_control")
            points += 1
    return points


def _check_image_source(source: Any, where: str) -> None:
    if not isinstance(source, Mapping):
        raise AskError(f"{where}: Field required")
    kind = source.get("type")
    if kind == "base64":
        if source.get("media_type") not in _MEDIA_TYPES:
            allowed = ", ".join(f"'{t}'" for t in _MEDIA_TYPES[:-1]) + f" or '{_MEDIA_TYPES[-1]}'"
            raise AskError(f"{where}.base64.media_type: Input should be {allowed}")
        if not isinstance(source.get("data"), str) or not source["data"]:
            raise AskError(f"{where}.base64: image cannot be empty")
    elif kind == "url":
        if not isinstance(source.get("url"), str) or not source["url"]:
            raise AskError(f"{where}.url.url: Field required")
    else:
        raise AskError(
            f"{where}: Input tag '{kind}' found using 'type' does not match any of the "
            "expected tags: 'base64', 'file', 'url'"
        )


def _check_cache_control(value: Any, where: str) -> None:
    if not isinstance(value, Mapping) or value.get("type") != "ephemeral":
        raise AskError(f"{where}.type: Input should be 'ephemeral'")
    if value.get("ttl") not in (None, "5m", "1h"):
        raise AskError(f"{where}.ttl: Input should be '5m' or '1h'")


def bad_request(error: AskError) -> Reply:
    """400 ``invalid_request_error``."""
    return Reply(400, error_body("invalid_request_error", error.message))


def unknown_model(model: str) -> Reply:
    """404 ``not_found_error``."""
    return Reply(404, error_body("not_found_error", f"model: {model}"))


def unknown_path(method: str, path: str) -> Reply:  # noqa: ARG001
    """404 ``not_found_error``."""
    return Reply(404, error_body("not_found_error", "Not Found"))


def failure(fail: Fail, model: str) -> Reply:  # noqa: ARG001
    """The error body Anthropic sends with ``fail.status``."""
    kind, message = _ERRORS.get(fail.status, ("api_error", "Internal server error"))
    headers = {}
    if fail.retry_after_s is not None:
        headers["retry-after"] = str(whole_seconds(fail.retry_after_s))
    return Reply(fail.status, error_body(fail.code or kind, fail.message or message), headers)


def rate_limited(model: str, limit: int, wait_s: float) -> Reply:  # noqa: ARG001
    """429 ``rate_limit_error`` for the requests-per-minute limit."""
    message = (
        "This request would exceed the rate limit for your organization of "
        f"{limit} requests per minute. {_RATE_LIMIT_ADVICE}"
    )
    headers = {"retry-after": str(whole_seconds(wait_s))}
    return Reply(429, error_body("rate_limit_error", message), headers)


def limit_headers(requests: BudgetState, tokens: BudgetState) -> dict[str, str]:
    """``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}``."""
    return {
        "anthropic-ratelimit-requests-limit": str(requests.limit),
        "anthropic-ratelimit-requests-remaining": str(requests.remaining),
        "anthropic-ratelimit-requests-reset": rfc3339_in(requests.reset_s),
        "anthropic-ratelimit-tokens-limit": str(tokens.limit),
        "anthropic-ratelimit-tokens-remaining": str(tokens.remaining),
        "anthropic-ratelimit-tokens-reset": rfc3339_in(tokens.reset_s),
    }


def id_headers() -> dict[str, str]:
    """``request-id``."""
    return {"request-id": random_id("req_011C", 20)}


def answer(completion: Completion, model: str) -> Any:
    """A ``message`` object: its text block, then a ``tool_use`` block per call."""
    return {
        **_message(model),
        "content": [dict(block, **whole) for block, whole, _ in _blocks(completion)],
        "stop_reason": _stop_reason(completion),
        "stop_sequence": completion.stop_sequence,
        **_stop_details(completion),
        "usage": _usage(completion, completion.output_tokens),
    }


def stream(completion: Completion, ask: ChatAsk) -> StreamPlan:
    """The documented event sequence: each block's start, deltas and stop, in index order.

    The body holds a ``text_delta`` per text chunk, then each call's block (its start, an
    empty ``input_json_delta``, its JSON in fragments), so a cut can fall inside a call.
    """
    start = {
        **_message(ask.model),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(completion, 1),
    }
    frames: list[bytes] = []
    blocks = _blocks(completion)
    for index, (block, _, deltas) in enumerate(blocks):
        if index:
            frames.append(_event("content_block_stop", index=index - 1))
        frames.append(_event("content_block_start", index=index, content_block=block))
        if not index:
            frames.append(_event("ping"))
        frames += [_event("content_block_delta", index=index, delta=d) for d in deltas]
    delta = {"stop_reason": _stop_reason(completion), "stop_sequence": completion.stop_sequence}
    tail = (
        _event("content_block_stop", index=len(blocks) - 1),
        _event(
            "message_delta",
            delta=delta | _stop_details(completion),
            usage=_usage(completion, completion.output_tokens),
        ),
        _event("message_stop"),
    )
    head = (sse_frame({"type": "message_start", "message": start}, "message_start"), *frames[:2])
    return StreamPlan(head, tuple(frames[2:]), tail, idle=_event("ping"))


Streamed = tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]
"""A content block as it starts, what the whole answer adds to that, and its deltas."""


def _blocks(completion: Completion) -> list[Streamed]:
    """The text block (none when the model only calls tools), then one block per call."""
    blocks: list[Streamed] = []
    if completion.refusal:  # the refusal's words come in stop_details
        blocks.append(({"type": "text", "text": ""}, {}, []))
    elif completion.text or not completion.tool_calls:
        pieces = [{"type": "text_delta", "text": p} for p in split_text(completion.text)]
        blocks.append(({"type": "text", "text": ""}, {"text": completion.text}, pieces))
    blocks += [_tool_use(call) for call in completion.tool_calls]
    return blocks


def _tool_use(call: ToolUse) -> Streamed:
    arguments = json.dumps(dict(call.arguments))
    start: dict[str, Any] = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
    fragments = ["", *(arguments[i : i + 8] for i in range(0, len(arguments), 8))]
    deltas = [{"type": "input_json_delta", "partial_json": f} for f in fragments]
    return start, {"input": dict(call.arguments)}, deltas


def stream_error(error: StreamError) -> bytes | None:
    """An ``error`` event (``overloaded_error`` unless ``error.code`` names another type)."""
    kind = error.code or "overloaded_error"
    message = error.message or "Overloaded"
    return sse_frame({"type": "error", "error": {"type": kind, "message": message}}, "error")


def stream_error_failure(error: StreamError) -> Fail:
    """A 529 ``overloaded_error`` (or the error type named)."""
    return Fail(529, code=error.code, message=error.message)


def model_list(models: tuple[str, ...]) -> Any:
    """``GET /v1/models``: one page holding every model."""
    data = [model_info(m) for m in models]
    first, last = (models[0], models[-1]) if models else (None, None)
    return {"data": data, "has_more": False, "first_id": first, "last_id": last}


def model_info(model: str) -> Any:
    """``GET /v1/models/{model}``."""
    return {
        "type": "model",
        "id": model,
        "display_name": display_name(model),
        "created_at": "2025-05-22T00:00:00Z",
    }


def display_name(model: str) -> str:
    """``claude-sonnet-4-5`` → ``Claude Sonnet 4.5`` (a dated suffix dropped)."""
    words: list[str] = []
    for part in model.split("-"):
        if part.isdigit() and len(part) == 8:  # noqa: PLR2004 - a YYYYMMDD snapshot date
            continue
        if part.isdigit() and words and words[-1][-1].isdigit():
            words[-1] += f".{part}"
        else:
            words.append(part.capitalize())
    return " ".join(words)


def _event(kind: str, **fields: Any) -> bytes:
    return sse_frame({"type": kind, **fields}, kind)


def _message(model: str) -> dict[str, Any]:
    return {"id": random_id("msg_01", 22), "type": "message", "role": "assistant", "model": model}


def _stop_reason(completion: Completion) -> str:
    if completion.finish:
        return completion.finish
    if completion.refusal:
        return "refusal"
    return "tool_use" if completion.tool_calls else _STOP_REASON[completion.ending]


def _stop_details(completion: Completion) -> dict[str, Any]:
    """A refusal's ``stop_details``: its category (none here) and explanation."""
    if not completion.refusal:
        return {}
    details = {"type": "refusal", "category": None, "explanation": completion.refusal}
    return {"stop_details": details}


def _usage(completion: Completion, output_tokens: int) -> dict[str, Any]:
    """Anthropic's usage: ``input_tokens`` excludes the cache's reads and writes."""
    read, written = completion.cached_tokens, completion.cache_write_tokens
    return {
        "input_tokens": completion.input_tokens - read - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "output_tokens": output_tokens,
    }


class FakeAnthropic(FakeProvider):
    """A fake Anthropic Messages API: ``POST /v1/messages``, ``GET /v1/models[/{model}]``.

    Keys go in ``x-api-key``, and ``anthropic-version`` is required; answers carry
    ``anthropic-ratelimit-*`` headers.
    """

    wire: ClassVar[Wire] = wire_of(__name__)
