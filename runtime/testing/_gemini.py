"""The Gemini API (``generateContent``) wire format, as the fake server writes it (pure functions).

Documented shapes: request parts (``text``, ``inline_data`` with base64 ``data``,
``file_data`` with a ``file_uri``; camelCase or snake_case), ``GenerateContentResponse``
(``candidates``, ``usageMetadata``, ``modelVersion``, ``responseId``), its ``alt=sse``
stream of such responses with the ``finishReason`` on the last, ``batchEmbedContents``
(``requests[]`` in, ``embeddings[].values`` out), ``google.rpc.Status`` error bodies with
``ErrorInfo``, ``BadRequest``, ``QuotaFailure``, ``Help`` and ``RetryInfo`` details, and the
``Model`` resources. Gemini sends no rate-limit headers.

Tool calling and structured output are read (and refused where Gemini refuses them) by
`runtime.testing._gemini_tools`. Calls are answered as ``functionCall`` parts (``name``,
``args`` as an object, no ``id``: ``generateContent`` sends none; a ``thoughtSignature``
on the first, as thinking models send) with finish reason ``STOP``; streamed, each call
comes whole in a chunk of its own after the text, since Gemini does not stream
arguments. Gemini has no refusal field: a scripted refusal is a candidate the safety
filter emptied (``finishReason: SAFETY`` with ``safetyRatings``, no content).

Each public function has the signature `runtime.testing._wire.Wire` asks for, so some
ignore arguments other protocols need.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from runtime.testing._budget import BudgetState, proto_duration
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
from runtime.testing._gemini_tools import (
    check_function_response,
    check_tool_turns,
    either,
    parts_of,
    read_output,
    read_tool_choice,
    read_tools,
    response_texts,
)
from runtime.testing._provider import FakeProvider
from runtime.testing._script import Fail, StreamError, ToolUse
from runtime.testing._wire import (
    Action,
    EmbedAsk,
    Reply,
    Route,
    StreamPlan,
    Wire,
    sse_frame,
    wire_of,
)

NAME: str = "gemini"
API_ROOT: str = "/v1beta"
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1beta/models/{model}:generateContent", Action.CHAT),
    Route("POST", "/v1beta/models/{model}:streamGenerateContent", Action.CHAT_STREAM),
    Route("POST", "/v1beta/models/{model}:batchEmbedContents", Action.EMBED),
    Route("GET", "/v1beta/models", Action.LIST_MODELS),
    Route("GET", "/v1beta/models/{model}", Action.GET_MODEL),
)
MODELS: tuple[str, ...] = (
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-embedding-001",
)
REQUESTS_PER_MINUTE: int = 1_000
TOKENS_PER_MINUTE: int = 1_000_000

_SERVICE = "generativelanguage.googleapis.com"
_RATE_DOCS = "https://ai.google.dev/gemini-api/docs/rate-limits"
_FINISH = {Ending.NATURAL: "STOP", Ending.STOP_SEQUENCE: "STOP", Ending.LENGTH: "MAX_TOKENS"}
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: (
        "RESOURCE_EXHAUSTED",
        (
            "You exceeded your current quota, please check your plan and billing details. "
            f"For more information on this error, head to: {_RATE_DOCS}."
        ),
    ),
    500: (
        "INTERNAL",
        (
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting"
        ),
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_BAD_KEY = "API key not valid. Please pass a valid API key."
_DEFAULT_RETRY_S = 1.0
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_TASK_TYPES = frozenset(
    {
        "TASK_TYPE_UNSPECIFIED",
        "RETRIEVAL_QUERY",
        "RETRIEVAL_DOCUMENT",
        "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",
        "CLUSTERING",
        "QUESTION_ANSWERING",
        "FACT_VERIFICATION",
        "CODE_RETRIEVAL_QUERY",
    }
)
_BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
_BLOCKED_RATINGS = [
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
]
_TOO_MANY_REQUESTS = 429


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The ``x-goog-api-key`` header, or the ``key`` query parameter."""
    return headers.get("x-goog-api-key") or query.get("key") or None


def error_body(code: int, status: str, message: str, details: list[Any] | None = None) -> Any:
    """A ``google.rpc.Status`` error envelope."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def auth_error(presented: str | None) -> Reply:
    """403 without a key; 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID`` otherwise."""
    if presented is None:
        return Reply(403, error_body(403, "PERMISSION_DENIED", _NO_KEY))
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": _SERVICE},
        },
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": _BAD_KEY,
        },
    ]
    return Reply(400, error_body(400, "INVALID_ARGUMENT", _BAD_KEY, details))


def header_error(headers: Mapping[str, str]) -> Reply | None:  # noqa: ARG001
    """Gemini requires no header but the key."""
    return None


def read_ask(body: Any, *, model: str | None, stream: bool, query: Mapping[str, str]) -> ChatAsk:
    """Read a ``generateContent`` body; the model and streaming come from the path.

    A stream is sent as server-sent events with ``?alt=sse``, else as one JSON array.
    """
    if not isinstance(body, Mapping):
        raise AskError("Invalid JSON payload received.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise AskError("* GenerateContentRequest.contents: contents is not specified\n")
    for i, content in enumerate(contents):
        _check_parts(content, f"contents[{i}]")
    check_tool_turns(contents, model or "")
    tools = read_tools(body.get("tools"))
    choice = read_tool_choice(either(body, "toolConfig", "tool_config"), tools)
    system = either(body, "systemInstruction", "system_instruction")
    texts = [*_part_texts(system)]
    texts += [t for c in contents for t in (*_part_texts(c), *response_texts(c))]
    config = either(body, "generationConfig", "generation_config")
    config = config if isinstance(config, Mapping) else {}
    limit = "maxOutputTokens" if "maxOutputTokens" in config else "max_output_tokens"
    return ChatAsk(
        model=model or "",
        prompt="\n".join(texts),
        stream=stream,
        max_tokens=positive_int(config, limit),
        stop=stop_list(either(config, "stopSequences", "stop_sequences")),
        event_stream=query.get("alt") == "sse",
        tools=tools,
        tool_choice=choice,
        json_schema=read_output(config, tools, model or ""),
    )


def _check_parts(content: Any, where: str) -> None:
    """Refuse bad bytes (inline images, thought signatures), URL-less files, bad results."""
    for j, part in enumerate(parts_of(content)):
        here = f"{where}.parts[{j}]"
        inline = either(part, "inlineData", "inline_data")
        if isinstance(inline, Mapping):
            _check_inline_data(inline, f"{here}.inline_data")
        file = either(part, "fileData", "file_data")
        if isinstance(file, Mapping) and not either(file, "fileUri", "file_uri"):
            field = f"{here}.file_data.file_uri"
            raise AskError(f"* GenerateContentRequest.{field}: file_uri is not specified\n", field)
        signature = either(part, "thoughtSignature", "thought_signature")
        if signature is not None:
            _check_bytes(signature, f"{here}.thought_signature")
        check_function_response(part, here)


def _check_bytes(data: Any, field: str) -> None:
    if not isinstance(data, str) or not _BASE64.fullmatch(data) or len(data) % 4 == 1:
        message = f"Invalid value at '{field}' (TYPE_BYTES), Base64 decoding failed for "
        raise AskError(message + json.dumps(data), field)


def _check_inline_data(inline: Mapping[str, Any], where: str) -> None:
    _check_bytes(inline.get("data"), f"{where}.data")
    if not either(inline, "mimeType", "mime_type"):
        field = f"{where}.mime_type"
        raise AskError(f"* GenerateContentRequest.{field}: mime_type is not specified\n", field)


def bad_request(error: AskError) -> Reply:
    """400 ``INVALID_ARGUMENT``, with a ``BadRequest`` detail naming the field when known."""
    details = None
    if error.param:
        violation = {"field": error.param, "description": error.message}
        details = [{"@type": _BAD_REQUEST_TYPE, "fieldViolations": [violation]}]
    return Reply(400, error_body(400, "INVALID_ARGUMENT", error.message, details))


def read_embed(body: Any) -> EmbedAsk:
    """Read a ``batchEmbedContents`` body; the model comes from its requests' ``model``."""
    if not isinstance(body, Mapping):
        raise AskError("Invalid JSON payload received.")
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise AskError("* BatchEmbedContentsRequest.requests: requests is not specified\n")
    items = [_embed_item(item, f"requests[{i}]") for i, item in enumerate(requests)]
    models = {model for model, _, _ in items}
    if len(models) > 1:
        message = "* BatchEmbedContentsRequest.requests: all requests must use the same model\n"
        raise AskError(message, "requests")
    sizes = [size for _, _, size in items if size is not None]
    texts = tuple(text for _, text, _ in items)
    return EmbedAsk(models.pop(), texts, sizes[0] if sizes else None)


def _embed_item(item: Any, where: str) -> tuple[str, str, int | None]:
    """One ``EmbedContentRequest``: its model (without ``models/``), text and dimensions."""
    request: Mapping[str, Any] = item if isinstance(item, Mapping) else {}
    name = request.get("model")
    if not isinstance(name, str) or not name.startswith("models/"):
        field = f"{where}.model"
        raise AskError(
            f"* BatchEmbedContentsRequest.{field}: unexpected model name format\n", field
        )
    text = "".join(_part_texts(request.get("content")))
    if not text:
        field = f"{where}.content"
        raise AskError(f"* BatchEmbedContentsRequest.{field}: content is not specified\n", field)
    _check_task_type(either(request, "taskType", "task_type"), f"{where}.task_type")
    limit = "outputDimensionality" if "outputDimensionality" in request else "output_dimensionality"
    return name.removeprefix("models/"), text, positive_int(request, limit)


def _check_task_type(value: Any, field: str) -> None:
    if value is not None and value not in _TASK_TYPES:
        enum = "type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType"
        raise AskError(f"Invalid value at '{field}' ({enum}), {json.dumps(value)}", field)


def embed_answer(
    ask: EmbedAsk,  # noqa: ARG001 - the vectors say it all
    vectors: tuple[tuple[float, ...], ...],
    input_tokens: int,  # noqa: ARG001 - Gemini counts no tokens here
) -> Any:
    """A ``BatchEmbedContentsResponse``: ``embeddings[].values``, in request order."""
    return {"embeddings": [{"values": list(vector)} for vector in vectors]}


def unknown_model(model: str) -> Reply:
    """404 ``NOT_FOUND``."""
    message = (
        f"models/{model} is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods."
    )
    return Reply(404, error_body(404, "NOT_FOUND", message))


def unknown_path(method: str, path: str) -> Reply:  # noqa: ARG001
    """404 ``NOT_FOUND``."""
    return Reply(404, error_body(404, "NOT_FOUND", f"Method not found: {path}"))


def failure(fail: Fail, model: str) -> Reply:
    """The error body Gemini sends with ``fail.status`` (429s carry ``RetryInfo``)."""
    status, message = _ERRORS.get(fail.status, ("UNKNOWN", "Unknown error."))
    details = None
    if fail.status == _TOO_MANY_REQUESTS:
        details = _quota_details(model, None, fail.retry_after_s or _DEFAULT_RETRY_S)
    body = error_body(fail.status, fail.code or status, fail.message or message, details)
    return Reply(fail.status, body)


def rate_limited(model: str, limit: int, wait_s: float) -> Reply:
    """429 ``RESOURCE_EXHAUSTED`` with the quota, a help link and the ``RetryInfo`` delay."""
    status, message = _ERRORS[_TOO_MANY_REQUESTS]
    return Reply(429, error_body(429, status, message, _quota_details(model, limit, wait_s)))


def limit_headers(requests: BudgetState, tokens: BudgetState) -> dict[str, str]:  # noqa: ARG001
    """Gemini sends no rate-limit headers."""
    return {}


def id_headers() -> dict[str, str]:
    """Gemini sends no request-id header."""
    return {}


def answer(completion: Completion, model: str) -> Any:
    """A ``GenerateContentResponse``: text, then a ``functionCall`` part per call."""
    parts = _text_parts(completion) + _call_parts(completion.tool_calls)
    return _response(completion, model, random_id("", 23), parts, final=True)


def stream(completion: Completion, ask: ChatAsk) -> StreamPlan:
    """``GenerateContentResponse`` chunks, the last with the ``finishReason``.

    Text comes a few words a chunk, then each function call whole in a chunk of its own
    (Gemini does not stream arguments). Sent as ``data:`` events (``alt=sse``), or else as
    the items of one JSON array.
    """
    response_id = random_id("", 23)
    pieces = [[{"text": piece}] for piece in split_text(completion.text, words_per_piece=8)]
    pieces += [[part] for part in _call_parts(completion.tool_calls)]
    if completion.refusal or not pieces:
        pieces = [[{"text": ""}]]
    last = len(pieces) - 1
    chunks = [
        _response(completion, ask.model, response_id, parts, final=i == last)
        for i, parts in enumerate(pieces)
    ]
    if ask.event_stream:
        fields = ("usageMetadata", "modelVersion", "responseId")
        idle = sse_frame({key: chunks[0][key] for key in fields}, crlf=True)
        return StreamPlan((), tuple(sse_frame(c, crlf=True) for c in chunks), (), idle=idle)
    items = tuple(
        (b"[" if i == 0 else b",\r\n") + json.dumps(c).encode() for i, c in enumerate(chunks)
    )
    return StreamPlan((), items, (b"]",), "application/json", idle=b"\r\n")


def stream_error(error: StreamError) -> bytes | None:  # noqa: ARG001
    """Gemini reports nothing mid-stream: the connection is cut."""
    return None


def stream_error_failure(error: StreamError) -> Fail:
    """A 503 ``UNAVAILABLE``."""
    return Fail(503, code=error.code, message=error.message)


def model_list(models: tuple[str, ...]) -> Any:
    """``GET /v1beta/models``: one page holding every model."""
    return {"models": [model_info(m) for m in models]}


def model_info(model: str) -> Any:
    """``GET /v1beta/models/{model}``: a ``Model`` resource."""
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": " ".join(w.capitalize() for w in model.split("-")),
        "description": f"Fake {model} served by callboard's loopback test server.",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": (
            ["embedContent"] if "embedding" in model else ["generateContent", "countTokens"]
        ),
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    }


def _text_parts(completion: Completion) -> list[dict[str, Any]]:
    if completion.tool_calls and not completion.text:
        return []
    return [{"text": completion.text}]


def _call_parts(calls: tuple[ToolUse, ...]) -> list[dict[str, Any]]:
    """``functionCall`` parts without ids (generateContent sends none), the first signed."""
    parts: list[dict[str, Any]] = [
        {"functionCall": {"name": call.name, "args": dict(call.arguments)}} for call in calls
    ]
    if parts:
        parts[0]["thoughtSignature"] = random_id("", 64)
    return parts


def _response(
    completion: Completion, model: str, response_id: str, parts: list[Any], *, final: bool
) -> Any:
    """One response; a refusal is a candidate the safety filter emptied (Gemini has no other)."""
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if completion.refusal:
        candidate = {"safetyRatings": _BLOCKED_RATINGS} if final else {}
    usage: dict[str, Any] = {
        "promptTokenCount": completion.input_tokens,
        "totalTokenCount": completion.input_tokens,
    }
    if completion.cached_tokens:
        usage["cachedContentTokenCount"] = completion.cached_tokens
    if final:
        finish = "SAFETY" if completion.refusal else completion.finish
        candidate |= {"finishReason": finish or _FINISH[completion.ending], "index": 0}
        usage |= {
            "candidatesTokenCount": completion.output_tokens,
            "totalTokenCount": completion.input_tokens + completion.output_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": completion.input_tokens}],
        }
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id,
    }


def _quota_details(model: str, limit: int | None, wait_s: float) -> list[Any]:
    violation: dict[str, Any] = {
        "quotaMetric": f"{_SERVICE}/generate_content_free_tier_requests",
        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "quotaDimensions": {"location": "global", "model": model},
    }
    if limit is not None:
        violation["quotaValue"] = str(limit)
    return [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]},
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more about Gemini API quotas", "url": _RATE_DOCS}],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": proto_duration(wait_s)},
    ]


def _part_texts(content: Any) -> list[str]:
    if not isinstance(content, Mapping):
        return []
    return list(texts_of(content.get("parts")))


class FakeGemini(FakeProvider):
    """A fake Gemini API: ``models/{model}:generateContent``, ``:streamGenerateContent``.

    Keys go in ``x-goog-api-key`` or ``?key=``; there are no rate-limit headers, and a 429
    tells its wait in a ``RetryInfo`` detail.
    """

    wire: ClassVar[Wire] = wire_of(__name__)
