"""Google's Gemini API (``generateContent`` and ``streamGenerateContent``).

Chats go to ``POST {base_url}/models/{model}:generateContent``, or
``:streamGenerateContent?alt=sse`` for a stream of server-sent events whose every
``data:`` is a whole ``GenerateContentResponse``; the key travels in ``x-goog-api-key``,
never in the URL (an OAuth access token, with ``auth = "bearer"``, in ``Authorization``).
A message is ``parts``: ``{"text"}``, ``{"inline_data": {"mime_type", "data"}}`` for an
inline image and ``{"file_data": {"mime_type", "file_uri"}}`` for one by URL; Gemini caches
prompt prefixes on its own, so cache marks are not sent. Embeddings go to
``POST {base_url}/models/{model}:batchEmbedContents`` and come back as ``embeddings[].values``
in input order. The start-up check is ``GET {base_url}/models/{model}``; ``GET
{base_url}/models`` lists every model as ``models[].name``. Errors are
Google RPC statuses, ``{"error": {"code", "message", "status", "details": [...]}}``, where
``details`` may hold an ``ErrorInfo`` (a bad key is a 400 with reason ``API_KEY_INVALID``)
and a ``RetryInfo`` (how long to wait after a 429). Gemini sends no rate-limit headers.

Tools are ``tools: [{"functionDeclarations": [{name, description,
parametersJsonSchema}]}]`` (``parametersJsonSchema`` takes plain JSON Schema,
``additionalProperties`` included, where the older ``parameters`` takes only Google's
OpenAPI subset). ``tool_choice`` becomes ``toolConfig.functionCallingConfig``: ``auto``
is mode ``AUTO``, ``none`` is ``NONE``, ``required`` is ``ANY``, and a tool's name is
``ANY`` with ``allowedFunctionNames: [name]`` (Gemini can force a call but not a
particular one otherwise); a tool's ``strict`` has no Gemini counterpart and is not
sent. The model's calls are ``functionCall`` parts (``name``, ``args`` as an object, an
``id`` only where the API gives one; else callboard names them
``call_<responseId>_<n>``, stable for an answer and unique across a conversation), with
finish reason ``STOP``, reported as ``tool_calls``. A call made in an earlier turn goes
back as a ``functionCall`` part of a ``model`` turn with the ``thoughtSignature`` it
came with (`ToolCall.signature`) when the same model is asked; otherwise the first call
of the turn carries the documented sentinel (Gemini 3 refuses a turn's function calls
without a signature, and refuses another model's signature); results go back as
``functionResponse`` parts (``id``, ``name``, ``response: {"output": text}`` or
``{"error": text}``) of one ``user`` turn, all the results of a turn together. A stream
sends each call whole in one chunk (Gemini does not stream arguments), so each becomes
one `ToolCallDelta`. A ``MALFORMED_FUNCTION_CALL`` or ``UNEXPECTED_TOOL_CALL`` finish
with nothing else to show is a ``malformed_response``.

Structured output is ``generationConfig.responseMimeType: "application/json"`` with
``responseJsonSchema`` (plain JSON Schema; ``responseSchema`` takes the OpenAPI subset
and refuses ``additionalProperties``). Gemini 2.x refuses that mime type together with
tools, so with tools the schema goes into the system instruction instead and callboard
checks the answer as always.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

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
from runtime._tools import ToolCall, ToolCallBuilder, ToolCallDelta, new_call_id
from runtime.protocols._base import Embeddings, HttpCall, ListModels, WireProtocol
from runtime.protocols._common import (
    as_count,
    as_dict,
    as_str,
    duration_s,
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
from runtime.protocols._gemini_tools import (
    function_call,
    function_response,
    output_config,
    tool_fields,
    with_schema_instruction,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from runtime._chat import Part, Tuning
    from runtime.protocols._base import Endpoint, Headers

NAME = "gemini"
API_ROOT = "https://generativelanguage.googleapis.com/v1beta"
"""The API's root as a ``base_url`` gives it (the SDK's convention, without the version,
works too)."""

_FILTERED = frozenset(
    {"SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "RECITATION", "IMAGE_SAFETY"}
)
_FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length"} | dict.fromkeys(
    _FILTERED, "content_filter"
)
_BAD_CALLS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL"})
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")
_ID_ROOT = 24
"""The most of a ``responseId`` kept in a made call id (ids stay under OpenAI's 40)."""
_STATUS_KINDS = {
    "INVALID_ARGUMENT": ErrorKind.BAD_REQUEST,
    "FAILED_PRECONDITION": ErrorKind.PERMISSION,
    "PERMISSION_DENIED": ErrorKind.PERMISSION,
    "UNAUTHENTICATED": ErrorKind.AUTH,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMITED,
    "INTERNAL": ErrorKind.SERVER,
    "UNAVAILABLE": ErrorKind.OVERLOADED,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
}
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_BAD_KEY = "API_KEY_INVALID"
_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".heic": "image/heic",
    ".heif": "image/heif",
}
_DEFAULT_IMAGE_TYPE = "image/jpeg"
_TASK_TYPES = {"document": "RETRIEVAL_DOCUMENT", "query": "RETRIEVAL_QUERY"}
MODELS_PAGE = 1000
"""The largest page ``GET /models`` returns (``pageSize`` is capped at 1000)."""


def model_id(model: str) -> str:
    """Return ``model`` without the ``models/`` prefix Gemini's own names carry."""
    return model.removeprefix("models/")


def chat_request(endpoint: Endpoint, request: ChatRequest, stream: bool) -> HttpCall:
    """Build the ``generateContent`` call, or ``streamGenerateContent?alt=sse`` to stream."""
    turns, system = ChatRequest.split_system(request.messages, request.system)
    body: dict[str, object] = {"contents": _contents(turns, request.model)}
    system = with_schema_instruction(system, request)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    config = _generation_config(request.tuning) | output_config(request)
    if config:
        body["generationConfig"] = config
    body.update(tool_fields(request))
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    url = f"{endpoint.base_url}/models/{quote(model_id(request.model), safe='')}:{method}"
    return HttpCall("POST", url, _headers(endpoint, body=True), body, stream=stream)


def _contents(turns: Sequence[Message], model: str) -> list[dict[str, Any]]:
    """The turns as ``contents``; tool results that follow each other share one turn."""
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for message in turns:
        names.update((call.id, call.name) for call in message.tool_calls)
        if message.role != "tool":
            role = "model" if message.role == "assistant" else "user"
            contents.append({"role": role, "parts": _parts(message, model)})
        elif contents and _holds_results(contents[-1]):
            contents[-1]["parts"].append(function_response(message, names))
        else:
            contents.append({"role": "user", "parts": [function_response(message, names)]})
    return contents


def _holds_results(content: dict[str, Any]) -> bool:
    parts = content["parts"]
    return content["role"] == "user" and bool(parts) and "functionResponse" in parts[0]


def _parts(message: Message, model: str) -> list[dict[str, object]]:
    """The message's parts: text, images inline or by URL (cache marks are dropped), calls.

    A turn that only calls tools has no text part (Gemini refuses empty text).
    """
    calls = message.tool_calls
    parts = message.parts
    if calls:
        parts = tuple(p for p in parts if not isinstance(p, TextPart) or p.text)
    return [_part(part) for part in parts] + [
        function_call(call, first=i == 0, model=model) for i, call in enumerate(calls)
    ]


def _part(part: Part) -> dict[str, object]:
    if isinstance(part, TextPart):
        return {"text": part.text}
    inline = part.inline()
    if inline is not None:
        return {"inline_data": {"mime_type": inline[0], "data": inline[1]}}
    url = part.url or ""
    return {"file_data": {"mime_type": image_type(url), "file_uri": url}}


def image_type(url: str) -> str:
    """Guess an image's media type from its URL's extension (``image/jpeg`` if unknown)."""
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    return _IMAGE_TYPES.get(suffix, _DEFAULT_IMAGE_TYPE)


def _generation_config(tuning: Tuning) -> dict[str, object]:
    values: dict[str, object] = {
        "temperature": tuning.temperature,
        "topP": tuning.top_p,
        "maxOutputTokens": tuning.max_tokens,
        "stopSequences": list(tuning.stop) if tuning.stop else None,
    }
    return without_none(values)


def _headers(endpoint: Endpoint, *, body: bool) -> tuple[tuple[str, str], ...]:
    return key_headers(endpoint, body=body, key_header="x-goog-api-key")


class _Answer:
    """Accumulates ``GenerateContentResponse`` objects: one whole answer, or a stream's chunks."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers
        self.finish: str | None = None
        self._finish_message = ""
        self._text: list[str] = []
        self._model = ""
        self._usage = Usage()
        self._blocked = ""
        self._response_id = ""
        self._calls = ToolCallBuilder()
        self._call_count = 0

    def add(self, response: dict[str, object]) -> list[str | ToolCallDelta]:
        if "error" in response:
            raise _error_from(as_dict(response["error"]), None, None)
        feedback = as_dict(response.get("promptFeedback"))
        self._blocked = as_str(feedback.get("blockReason")) or self._blocked
        self._model = as_str(response.get("modelVersion")) or self._model
        self._response_id = as_str(response.get("responseId")) or self._response_id
        if isinstance(response.get("usageMetadata"), dict):
            self._usage = _usage(response["usageMetadata"])
        candidates = response.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            return []
        candidate = as_dict(candidates[0])
        self.finish = as_str(candidate.get("finishReason")) or self.finish
        self._finish_message = as_str(candidate.get("finishMessage")) or self._finish_message
        parts = as_dict(candidate.get("content")).get("parts")
        pieces = [self._take(as_dict(part)) for part in parts] if isinstance(parts, list) else []
        return [piece for piece in pieces if piece]

    def _take(self, part: dict[str, object]) -> str | ToolCallDelta:
        """Keep one part: text (thoughts are skipped), or a whole function call."""
        if "functionCall" not in part:
            text = _part_text(part)
            self._text.append(text)
            return text
        delta = self._call(as_dict(part["functionCall"]), as_str(part.get("thoughtSignature")))
        self._calls.add(delta)
        return delta

    def _call(self, call: dict[str, object], signature: str) -> ToolCallDelta:
        index = self._call_count
        name = as_str(call.get("name"))
        if not name:
            raise malformed(f"function call {index} has no name")
        args = call.get("args")
        if args is not None and not isinstance(args, dict):
            kind = type(args).__name__
            raise malformed(f"function call {name!r}: args must be a JSON object, not {kind}")
        self._call_count += 1
        call_id = as_str(call.get("id")) or self._made_id(index)
        arguments = json.dumps(args or {}, separators=(",", ":"))
        return ToolCallDelta(index, call_id, name, arguments, signature or None)

    def _made_id(self, index: int) -> str:
        """``call_<responseId>_<n>``: the same for the same answer, unlike any other's."""
        root = _NOT_ID.sub("", self._response_id)[:_ID_ROOT]
        return f"call_{root}_{index}" if root else new_call_id()

    def result(self) -> ChatResult:
        if self._blocked:
            raise ProviderError(
                ErrorKind.CONTENT_FILTER,
                f"the prompt was blocked by the provider's safety filter ({self._blocked})",
                status=200,
                code=self._blocked,
            )
        text = "".join(self._text)
        calls = self._whole_calls()
        if not text and not calls:
            self._check_empty()
        reason = _FINISH_REASONS.get(self.finish, self.finish.lower()) if self.finish else None
        if calls and self.finish == "STOP":
            reason = "tool_calls"
        return ChatResult(
            text, self._model, self._usage, reason, rate_limits(self._headers), tool_calls=calls
        )

    def _whole_calls(self) -> tuple[ToolCall, ...]:
        try:
            return self._calls.calls(signed_by=self._model or None)
        except ValueError as exc:
            raise malformed(f"function call: {exc}") from None

    def _check_empty(self) -> None:
        """Raise for an answer with neither text nor calls that a filter or a bad call ended."""
        if self.finish in _FILTERED:
            raise ProviderError(
                ErrorKind.CONTENT_FILTER,
                f"the answer was withheld by the provider's safety filter ({self.finish})",
                status=200,
                code=self.finish,
            )
        if self.finish in _BAD_CALLS:
            said = f": {snippet(self._finish_message.encode())}" if self._finish_message else ""
            raise malformed(f"the model made a function call Gemini refused ({self.finish}){said}")

    @property
    def blocked(self) -> bool:
        return bool(self._blocked)

    @property
    def usage(self) -> Usage:
        return self._usage


def _part_text(part: object) -> str:
    part = as_dict(part)
    return "" if part.get("thought") is True else as_str(part.get("text"))


def _usage(value: object) -> Usage:
    usage = as_dict(value)
    return Usage(
        input_tokens=as_count(usage.get("promptTokenCount")),
        output_tokens=as_count(usage.get("candidatesTokenCount"))
        + as_count(usage.get("thoughtsTokenCount")),
        cached_tokens=as_count(usage.get("cachedContentTokenCount")),
    )


def parse_chat(status: int, headers: Headers, body: bytes) -> ChatResult:
    """Parse a whole ``GenerateContentResponse``; raise `ProviderError` for anything else."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    if not isinstance(data, dict):
        raise malformed(f"answer is not a JSON object: {snippet(body)}")
    answer = _Answer(headers)
    answer.add(data)
    if not isinstance(data.get("candidates"), list) and not answer.blocked:
        raise malformed("answer has no candidates")
    return answer.result()


def parse_error(status: int, headers: Headers, body: bytes) -> ProviderError:
    """Map an error response (any body, JSON or not) to a `ProviderError`; never raises."""
    data = load_json(body)
    if data is None:
        return non_json_error(status, headers, body)
    if isinstance(data, list) and data:
        data = data[0]
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
    raw = error.get("details")
    details = [as_dict(d) for d in raw] if isinstance(raw, list) else []
    reasons = {as_str(d.get("reason")) for d in details if d.get("@type") == _ERROR_INFO}
    delays = [as_str(d.get("retryDelay")) for d in details if d.get("@type") == _RETRY_INFO]
    waits = [w for w in (wait, *map(duration_s, delays)) if w is not None]
    rpc_status = as_str(error.get("status"))
    code = error.get("code")
    number = status if status is not None else code if isinstance(code, int) else None
    if _BAD_KEY in reasons:
        kind, rpc_status = ErrorKind.AUTH, _BAD_KEY
    elif rpc_status in _STATUS_KINDS:
        kind = _STATUS_KINDS[rpc_status]
    else:
        kind = kind_for_status(number) if number is not None else ErrorKind.SERVER
    message = as_str(error.get("message")).strip()
    if rpc_status == "FAILED_PRECONDITION" and "billing" in message.lower():
        kind = (
            ErrorKind.QUOTA
        )  # "...free tier is not available in your country. Please enable billing"
    return ProviderError(
        kind,
        snippet(message.encode()) if message else f"{rpc_status or 'error'} with no message",
        status=status,
        retry_after_s=max(waits) if waits else None,
        code=rpc_status or None,
    )


class _Stream:
    """Accumulates one ``streamGenerateContent?alt=sse`` answer."""

    def __init__(self, headers: Headers) -> None:
        self._answer = _Answer(headers)

    def feed(self, event: str, data: str) -> list[str | ToolCallDelta]:  # noqa: ARG002
        chunk = load_json(data)
        if not isinstance(chunk, dict):
            raise malformed(f"stream chunk is not a JSON object: {snippet(data.encode())}")
        return self._answer.add(chunk)

    def usage_so_far(self) -> Usage:
        return self._answer.usage

    def finish(self) -> ChatResult:
        if self._answer.finish is None and not self._answer.blocked:
            raise malformed("stream ended before any chunk gave a finishReason")
        return self._answer.result()


def stream_parser(headers: Headers) -> _Stream:
    """Start parsing a streamed answer."""
    return _Stream(headers)


def rate_limits(headers: Headers) -> RateLimitInfo:  # noqa: ARG001
    """Return an empty `RateLimitInfo`: Gemini sends no rate-limit headers."""
    return RateLimitInfo()


def models_request(endpoint: Endpoint) -> HttpCall:
    """Build ``GET /models/{model}`` (the model given with or without ``models/``)."""
    url = f"{endpoint.base_url}/models/{quote(model_id(endpoint.model), safe='')}"
    return HttpCall("GET", url, _headers(endpoint, body=False))


def check_models(
    endpoint: Endpoint, status: int, headers: Headers, body: bytes
) -> ProviderError | None:
    """Return ``None`` when the key works and the model exists, else the error."""
    answer = (status, headers, body)
    found = model_lookup(
        endpoint, answer, parse_error, models_request, id_field="name", root=API_ROOT
    )
    return found if isinstance(found, ProviderError) else None


def list_models_request(endpoint: Endpoint) -> HttpCall:
    """Build ``GET /models?pageSize=1000``."""
    url = f"{endpoint.base_url}/models?pageSize={MODELS_PAGE}"
    return HttpCall("GET", url, _headers(endpoint, body=False))


def parse_models(status: int, headers: Headers, body: bytes) -> list[str]:
    """Return the model ids of a model list (``models[].name`` without ``models/``).

    Only the first page is read: with ``pageSize=1000`` it holds them all
    (``nextPageToken`` is not followed).
    """
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    listed = data.get("models", []) if isinstance(data, dict) else None
    if not isinstance(listed, list):
        raise malformed(f"model list has no 'models' array: {snippet(body)}")
    return [model_id(name) for item in listed if (name := as_str(as_dict(item).get("name")))]


def embed_request(endpoint: Endpoint, request: EmbedRequest) -> HttpCall:
    """Build ``:batchEmbedContents``, one request per text.

    ``input_type`` ``"document"`` and ``"query"`` become the ``RETRIEVAL_DOCUMENT`` and
    ``RETRIEVAL_QUERY`` task types; other values are not sent.
    """
    name = model_id(request.model)
    task = _TASK_TYPES.get(request.input_type or "")
    requests: list[dict[str, object]] = []
    for text in request.texts:
        item: dict[str, object] = {
            "model": f"models/{name}",
            "content": {"parts": [{"text": text}]},
        }
        if task:
            item["taskType"] = task
        if request.dimensions is not None:
            item["outputDimensionality"] = request.dimensions
        requests.append(item)
    url = f"{endpoint.base_url}/models/{quote(name, safe='')}:batchEmbedContents"
    return HttpCall("POST", url, _headers(endpoint, body=True), {"requests": requests})


def parse_embeddings(status: int, headers: Headers, body: bytes) -> EmbedResult:
    """Parse a ``BatchEmbedContentsResponse``: ``embeddings[].values``, in input order.

    Gemini counts no tokens in this answer, so the usage is empty.
    """
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    if not isinstance(data, dict):
        raise malformed(f"embeddings answer is not a JSON object: {snippet(body)}")
    if "error" in data:
        raise _error_from(as_dict(data["error"]), None, None)
    items = data.get("embeddings")
    if not isinstance(items, list):
        raise malformed("embeddings answer has no 'embeddings' array")
    return EmbedResult(tuple(_values(i, item) for i, item in enumerate(items)), "")


def _values(position: int, item: object) -> tuple[float, ...]:
    values = as_dict(item).get("values")
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise malformed(f"embedding {position} has no 'values' array of numbers")
    return tuple(float(v) for v in values)


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
    embed=Embeddings(embed_request, parse_embeddings),
    images=True,
    tools=True,
)
