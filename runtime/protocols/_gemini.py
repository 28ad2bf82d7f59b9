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
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING
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

if TYPE_CHECKING:
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
    body: dict[str, object] = {
        "contents": [
            {"role": "model" if m.role == "assistant" else "user", "parts": _parts(m)}
            for m in turns
        ]
    }
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    config = _generation_config(request.tuning)
    if config:
        body["generationConfig"] = config
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    url = f"{endpoint.base_url}/models/{quote(model_id(request.model), safe='')}:{method}"
    return HttpCall("POST", url, _headers(endpoint, body=True), body, stream=stream)


def _parts(message: Message) -> list[dict[str, object]]:
    """The message's parts: text, and images inline or by URL (cache marks are dropped)."""
    return [_part(part) for part in message.parts]


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
        self._text: list[str] = []
        self._model = ""
        self._usage = Usage()
        self._blocked = ""

    def add(self, response: dict[str, object]) -> list[str]:
        if "error" in response:
            raise _error_from(as_dict(response["error"]), None, None)
        feedback = as_dict(response.get("promptFeedback"))
        self._blocked = as_str(feedback.get("blockReason")) or self._blocked
        self._model = as_str(response.get("modelVersion")) or self._model
        if isinstance(response.get("usageMetadata"), dict):
            self._usage = _usage(response["usageMetadata"])
        candidates = response.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            return []
        candidate = as_dict(candidates[0])
        self.finish = as_str(candidate.get("finishReason")) or self.finish
        parts = as_dict(candidate.get("content")).get("parts")
        texts = [_part_text(part) for part in parts] if isinstance(parts, list) else []
        self._text.extend(texts)
        return [text for text in texts if text]

    def result(self) -> ChatResult:
        if self._blocked:
            raise ProviderError(
                ErrorKind.CONTENT_FILTER,
                f"the prompt was blocked by the provider's safety filter ({self._blocked})",
                status=200,
                code=self._blocked,
            )
        text = "".join(self._text)
        if not text and self.finish in _FILTERED:
            raise ProviderError(
                ErrorKind.CONTENT_FILTER,
                f"the answer was withheld by the provider's safety filter ({self.finish})",
                status=200,
                code=self.finish,
            )
        reason = _FINISH_REASONS.get(self.finish, self.finish.lower()) if self.finish else None
        return ChatResult(text, self._model, self._usage, reason, rate_limits(self._headers))

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

    def feed(self, event: str, data: str) -> list[str]:  # noqa: ARG002
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
)
