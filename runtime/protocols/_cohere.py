"""Cohere's v2 API (``/v2/chat``, ``/v2/embed``, ``/v1/models``).

Chats go to ``POST {base_url}/v2/chat``; the base URL has no version path
(``https://api.cohere.com``) because Cohere's paths carry theirs. A stream is server-sent
events named by their ``type``: ``message-start``, ``content-start``, ``content-delta``
(text in ``delta.message.content.text``), ``content-end`` and ``message-end`` (the
``finish_reason`` and ``usage``). Finish reasons are ``COMPLETE``, ``STOP_SEQUENCE``,
``MAX_TOKENS``, ``TOOL_CALL`` and ``ERROR`` (a failure). Errors are ``{"message": "..."}``
(often with an ``id``) under the HTTP status: 400, 401, 402 (billing), 404, 422, 429, 498
(a deny-listed token), 499 (cancelled), 500, 503. The start-up check is
``GET /v1/models/{model}``. Cohere documents no rate-limit headers; trial keys get
``x-trial-endpoint-call-remaining``, read as the requests left.

Tools are ``tools: [{"type": "function", "function": {name, description, parameters}}]``
(plain JSON Schema); Cohere's names take ``A-Za-z0-9_`` only, so a tool named with ``-``
is refused before sending (``bad_request``). A tool's ``strict`` has no per-tool field:
when every offered tool is strict the request says ``strict_tools: true``. ``tool_choice``
takes only ``REQUIRED`` and ``NONE``: ``auto`` is the default (no field), ``none`` is
``NONE``, ``required`` is ``REQUIRED``, and a tool's name is ``REQUIRED`` with that tool
alone in ``tools`` (Cohere cannot name the tool to call). An answer's calls are
``message.tool_calls`` (``id``, ``function.name``, ``function.arguments`` as JSON text)
beside ``message.tool_plan``, the model's text before calling, with finish reason
``TOOL_CALL``; callboard reads the plan as the answer's text (there is no other) and
sends an assistant turn's text back as its ``tool_plan``. A result goes back as ``{"role":
"tool", "tool_call_id", "content": [{"type": "text", "text"}]}``; Cohere's tool content has
no error flag, so a failed tool's text begins ``Error: ``. A stream adds
``tool-plan-delta`` (text, in ``delta.message.tool_plan``), then per call
``tool-call-start`` (``index``, ``delta.message.tool_calls`` with id and name),
``tool-call-delta`` (argument fragments in ``delta.message.tool_calls.function.arguments``)
and ``tool-call-end``.

Structured output is ``response_format: {"type": "json_object", "json_schema": ...}``,
without ``additionalProperties`` (listed unsupported in Cohere's structured-output guide).
Cohere documents ``response_format`` as not supported together with ``tools``, so with
tools the schema goes into the system prompt instead; callboard checks the answer either
way. Cohere has no refusal field: a model that declines answers in text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from runtime._chat import ChatRequest, ChatResult, EmbedResult, ImagePart, RateLimitInfo, Usage
from runtime._errors import ErrorKind, ProviderError
from runtime._tools import ToolCall, ToolCallBuilder, ToolCallDelta
from runtime.protocols._base import Embeddings, HttpCall, ListModels, WireProtocol
from runtime.protocols._cohere_tools import (
    assistant_turn,
    call_delta,
    tool_fields,
    tool_turn,
    with_schema_instruction,
)
from runtime.protocols._common import (
    as_count,
    as_dict,
    as_str,
    int_header,
    is_error,
    is_matrix,
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
from runtime.protocols._openai import _tool_calls as openai_tool_calls

if TYPE_CHECKING:
    from runtime._chat import EmbedRequest, Message, Tuning
    from runtime.protocols._base import Endpoint, Headers

NAME = "cohere"
DEFAULT_BASE_URL = "https://api.cohere.com"

_FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_LIMIT": "length",
}
_FAILED = frozenset({"ERROR", "TIMEOUT", "USER_CANCEL"})
_TOXIC = "ERROR_TOXIC"
_STATUS_KINDS = {
    402: ErrorKind.QUOTA,
    498: ErrorKind.CONTENT_FILTER,
    499: ErrorKind.SERVER,
    501: ErrorKind.BAD_REQUEST,
}
_INPUT_TYPES = {"query": "search_query", "document": "search_document"}
_LIST_PAGE_SIZE = 1000


def chat_request(endpoint: Endpoint, request: ChatRequest, stream: bool) -> HttpCall:
    """Build ``POST /v2/chat``; the system prompt leads the messages as a ``system`` turn.

    Raises:
        ProviderError: a tool name or a tool result Cohere cannot take (``bad_request``).
    """
    turns, system = ChatRequest.split_system(request.messages, request.system)
    system = with_schema_instruction(system, request)
    messages: list[dict[str, object]] = [{"role": "system", "content": system}] if system else []
    messages += [_turn(m) for m in turns]
    body: dict[str, object] = {"model": request.model, "messages": messages, "stream": stream}
    body.update(_tuning(request.tuning))
    body.update(tool_fields(request))
    url = f"{endpoint.base_url}/v2/chat"
    return HttpCall("POST", url, _headers(endpoint, body=True), body, stream=stream)


def _turn(message: Message) -> dict[str, object]:
    """One turn: a tool's result, an assistant turn with its calls, or text (and images)."""
    if message.role == "tool":
        return tool_turn(message)
    if message.tool_calls:
        return assistant_turn(message)
    return {"role": message.role, "content": _content(message)}


def _content(message: Message) -> str | list[dict[str, object]]:
    """Plain text as a string; with images, text and ``image_url`` parts in order."""
    if not message.has_images:
        return message.text
    parts: list[dict[str, object]] = []
    for part in message.parts:
        if isinstance(part, ImagePart):
            parts.append({"type": "image_url", "image_url": {"url": part.data_url()}})
        else:
            parts.append({"type": "text", "text": part.text})
    return parts


def _tuning(tuning: Tuning) -> dict[str, object]:
    values: dict[str, object] = {
        "temperature": tuning.temperature,
        "max_tokens": tuning.max_tokens,
        "p": tuning.top_p,
        "stop_sequences": list(tuning.stop) if tuning.stop else None,
    }
    return without_none(values)


def _headers(endpoint: Endpoint, *, body: bool) -> tuple[tuple[str, str], ...]:
    return key_headers(endpoint, body=body)


def _result(
    text: str,
    usage: Usage,
    finish: str | None,
    headers: Headers,
    calls: tuple[ToolCall, ...] = (),
) -> ChatResult:
    """The answer, or the error its finish reason reports."""
    if finish in _FAILED:
        raise ProviderError(
            ErrorKind.TIMEOUT if finish == "TIMEOUT" else ErrorKind.SERVER,
            f"the model stopped with finish_reason {finish}",
            status=200,
            code=finish,
        )
    if finish == _TOXIC and not text and not calls:
        raise ProviderError(
            ErrorKind.CONTENT_FILTER,
            "the answer was withheld as toxic (ERROR_TOXIC)",
            status=200,
            code=finish,
        )
    reason = _FINISH_REASONS.get(finish, finish.lower()) if finish else None
    return ChatResult(text, "", usage, reason, rate_limits(headers), tool_calls=calls)


def _usage(value: object) -> Usage:
    """Read ``usage``: ``tokens`` (what the model read and wrote), else ``billed_units``."""
    usage = as_dict(value)
    tokens = as_dict(usage.get("tokens")) or as_dict(usage.get("billed_units"))
    cached = usage.get("cached_tokens")
    return Usage(
        input_tokens=_count(tokens.get("input_tokens")),
        output_tokens=_count(tokens.get("output_tokens")),
        cached_tokens=_count(cached),
    )


def _count(value: object) -> int:
    """A token count; Cohere's schema types counts as numbers, so ``12.0`` is 12."""
    if isinstance(value, float) and value.is_integer():
        return as_count(int(value))
    return as_count(value)


def _texts(content: object) -> str:
    """Join the ``text`` parts of a message's content (thinking parts are left out)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "".join(
        as_str(as_dict(p).get("text")) for p in content if as_dict(p).get("type") == "text"
    )


def parse_chat(status: int, headers: Headers, body: bytes) -> ChatResult:
    """Parse a whole chat response; raise `ProviderError` for anything else."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    if not isinstance(data, dict):
        raise malformed(f"chat response is not a JSON object: {snippet(body)}")
    message = data.get("message")
    if not isinstance(message, dict):
        raise malformed(f"chat response has no message: {snippet(body)}")
    finish = as_str(data.get("finish_reason")) or None
    text = as_str(message.get("tool_plan")) + _texts(message.get("content"))
    calls = openai_tool_calls(message.get("tool_calls"))  # Cohere's v2 calls: OpenAI's shape
    return _result(text, _usage(data.get("usage")), finish, headers, calls)


def parse_error(status: int, headers: Headers, body: bytes) -> ProviderError:
    """Map an error response (any body, JSON or not) to a `ProviderError`; never raises."""
    data = load_json(body)
    if data is None:
        return non_json_error(status, headers, body)
    error = as_dict(data)
    text = as_str(error.get("message")) or as_str(error.get("data"))
    if not text.strip():
        return ProviderError(
            kind_for_status(status),
            f"unrecognized error body: {snippet(body)}",
            status=status,
            retry_after_s=retry_after_s(headers),
        )
    return _error(status, snippet(text.encode()), retry_after_s(headers))


def _error(status: int, message: str, wait: float | None) -> ProviderError:
    kind = _STATUS_KINDS.get(status) or kind_for_status(status)
    if status == 402:  # noqa: PLR2004
        message = f"the account's billing limit is reached (add a payment method): {message}"
    elif status == 429 and "trial key" in message.lower() and "month" in message.lower():  # noqa: PLR2004
        kind = ErrorKind.QUOTA
        message = f"the trial key's monthly calls are spent (use a production key): {message}"
    return ProviderError(kind, message, status=status, retry_after_s=wait)


class _Stream:
    """Accumulates one streamed chat response."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers
        self._text: list[str] = []
        self._usage = Usage()
        self._finish: str | None = None
        self._ended = False
        self._calls = ToolCallBuilder()

    def feed(self, event: str, data: str) -> list[str | ToolCallDelta]:
        stripped = data.strip()
        if not stripped or stripped == "[DONE]":
            return []
        chunk = load_json(data)
        if not isinstance(chunk, dict):
            raise malformed(f"stream event is not a JSON object: {snippet(data.encode())}")
        kind = as_str(chunk.get("type")) or event
        delta = as_dict(chunk.get("delta"))
        if kind in ("content-delta", "tool-plan-delta"):
            message = as_dict(delta.get("message"))
            text = as_str(as_dict(message.get("content")).get("text"))
            text += as_str(message.get("tool_plan"))
            self._text.append(text)
            return [text] if text else []
        if kind in ("tool-call-start", "tool-call-delta"):
            piece = call_delta(kind, _index(chunk), delta)
            self._calls.add(piece)
            return [piece]
        if kind == "message-end":
            self._ended = True
            self._finish = as_str(delta.get("finish_reason")) or None
            self._usage = _usage(delta.get("usage"))
            error = as_str(delta.get("error"))
            if error:
                raise ProviderError(ErrorKind.SERVER, snippet(error.encode()), code=self._finish)
        elif "message" in chunk and "type" not in chunk:
            raise ProviderError(ErrorKind.SERVER, snippet(as_str(chunk["message"]).encode()))
        return []

    def usage_so_far(self) -> Usage:
        return self._usage

    def finish(self) -> ChatResult:
        if not self._ended:
            raise malformed("stream ended before the answer was complete (no message-end)")
        try:
            calls = self._calls.calls()
        except ValueError as exc:
            raise malformed(f"streamed tool call: {exc}") from None
        return _result("".join(self._text), self._usage, self._finish, self._headers, calls)


def _index(chunk: dict[str, object]) -> int:
    """A tool-call event's ``index``, which tells the calls of one answer apart."""
    index = chunk.get("index", 0)
    if not isinstance(index, int) or isinstance(index, bool):
        raise malformed("a streamed tool call has an 'index' that is not a number")
    return index


def stream_parser(headers: Headers) -> _Stream:
    """Start parsing a streamed chat response."""
    return _Stream(headers)


def rate_limits(headers: Headers) -> RateLimitInfo:
    """Read what Cohere tells of a trial key's calls left (it documents no other headers)."""
    return RateLimitInfo(remaining_requests=int_header(headers, "x-trial-endpoint-call-remaining"))


def models_request(endpoint: Endpoint) -> HttpCall:
    """Build ``GET /v1/models/{model}``."""
    url = f"{endpoint.base_url}/v1/models/{quote(endpoint.model, safe='')}"
    return HttpCall("GET", url, _headers(endpoint, body=False))


def check_models(
    endpoint: Endpoint, status: int, headers: Headers, body: bytes
) -> ProviderError | None:
    """Return ``None`` when the key works and the model exists and chats, else the error."""
    answer = (status, headers, body)
    found = model_lookup(
        endpoint,
        answer,
        parse_error,
        models_request,
        id_field="name",
        root=DEFAULT_BASE_URL,
        code="model_not_found",
    )
    if isinstance(found, ProviderError):
        return found
    endpoints = found.get("endpoints")
    if isinstance(endpoints, list) and endpoints and "chat" not in endpoints:
        served = ", ".join(as_str(e) for e in endpoints)
        return ProviderError(
            ErrorKind.BAD_REQUEST,
            f"model {endpoint.model!r} does not chat (it serves: {served})",
            code="model_not_chat",
        )
    return None


def list_request(endpoint: Endpoint) -> HttpCall:
    """Build ``GET /v1/models?page_size=1000``: every model, in one page."""
    url = f"{endpoint.base_url}/v1/models?page_size={_LIST_PAGE_SIZE}"
    return HttpCall("GET", url, _headers(endpoint, body=False))


def parse_list(status: int, headers: Headers, body: bytes) -> list[str]:
    """Read the ``name`` of each of ``models``."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    listed = data.get("models") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        raise malformed(f"model list has no 'models' array: {snippet(body)}")
    return [name for item in listed if (name := as_str(as_dict(item).get("name")))]


def embed_request(endpoint: Endpoint, request: EmbedRequest) -> HttpCall:
    """Build ``POST /v2/embed`` for float vectors; ``input_type`` defaults to documents."""
    input_type = request.input_type or "document"
    body: dict[str, object] = {
        "model": request.model,
        "texts": list(request.texts),
        "input_type": _INPUT_TYPES.get(input_type, input_type),
        "embedding_types": ["float"],
    }
    if request.dimensions is not None:
        body["output_dimension"] = request.dimensions
    url = f"{endpoint.base_url}/v2/embed"
    return HttpCall("POST", url, _headers(endpoint, body=True), body)


def parse_embed(status: int, headers: Headers, body: bytes) -> EmbedResult:
    """Parse ``{"embeddings": {"float": [[...], ...]}, "meta": {"billed_units"}}``."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    vectors = as_dict(as_dict(data).get("embeddings")).get("float")
    if not is_matrix(vectors):
        raise malformed(f"embed response has no 'embeddings.float' vectors: {snippet(body)}")
    billed = as_dict(as_dict(as_dict(data).get("meta")).get("billed_units"))
    return EmbedResult(
        vectors=tuple(tuple(float(x) for x in vector) for vector in vectors),
        model="",
        usage=Usage(input_tokens=_count(billed.get("input_tokens"))),
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
    list_models=ListModels(request=list_request, parse=parse_list),
    embed=Embeddings(request=embed_request, parse=parse_embed),
    tools=True,
)
