"""The Azure OpenAI wire format, as the fake server writes it (pure functions).

Azure serves OpenAI's chat-completions body per deployment, so this module builds on
`runtime.testing._openai` and adds what Azure does its own way. Documented shapes:

- Routes ``POST /openai/deployments/{deployment}/chat/completions`` and ``.../embeddings``,
  and ``GET /openai/models`` ("Models - List": ``data[]`` with ``capabilities``,
  ``lifecycle_status``, ``status``), each with the ``api-version`` query parameter; without
  it Azure answers 404 ``{"error": {"code": "404", "message": "Resource not found"}}``.
  The model in a body is ignored: the path names the deployment.
- Keys in the ``api-key`` header, or a Microsoft Entra ID token as ``Authorization: Bearer``.
  A refused key gets ``{"error": {"code": "401", "message": "Access denied due to invalid
  subscription key or wrong API endpoint..."}}``; a refused token (one that looks like a
  JWT, ``eyJ...``) gets the gateway's ``{"statusCode": 401, "message": "Unauthorized.
  Access token is missing, invalid, audience is incorrect..."}``.
- Answers carry ``prompt_filter_results`` and per-choice ``content_filter_results``; a
  stream's first chunk has empty ``choices`` and only ``prompt_filter_results`` (and an
  empty ``id``, ``model`` and ``object``), as Azure sends it.
- Errors ``{"error": {"code", "message"}}`` with string codes: ``DeploymentNotFound`` (404),
  ``"429"`` with ``retry-after`` and ``retry-after-ms`` and "Please retry after N seconds",
  ``content_filter`` (400, with ``innererror.code: "ResponsibleAIPolicyViolation"`` and a
  ``content_filter_result``), ``PermissionDenied``.
- Rate-limit headers ``x-ratelimit-remaining-requests`` and ``-tokens`` (no resets).
- Tools as OpenAI's (the 2024-10-21 data-plane reference, ``inference.json`` in
  Azure/azure-rest-api-specs): ``tools``, ``tool_choice`` (``none``/``auto``/``required`` or
  a named function), tool turns checked and refused with OpenAI's own 400 bodies, as Azure
  passes them on (``"Invalid parameter: messages with role 'tool' must be a response to a
  preceeding message with 'tool_calls'."``, seen from Azure deployments in user reports),
  calls answered with ``finish_reason: "tool_calls"`` and a refusal where a schema was
  asked for. A streamed call is chunks of ``delta.tool_calls`` with empty
  ``content_filter_results``; when the answer starts with a call, its first chunk also
  carries ``role: "assistant"`` and ``content: null`` (as a recorded Azure stream shows:
  llamastack/llama-stack ``tests/integration/recordings/responses/fb785db7fafd.json``);
  text chunks before it carry the four verdicts (langchain4j/langchain4j#2385). A whole
  tool-call answer has empty ``content_filter_results`` too (inferred from the stream: there
  is no text to judge).
- What an older api-version does not take: ``tools`` and ``tool_choice`` before
  2023-12-01-preview and ``stream_options`` before 2024-09-01-preview are refused as 400
  ``"Unrecognized request argument(s) supplied: tool_choice, tools"`` in OpenAI's envelope
  (run-llama/llama_index#9062); ``response_format`` ``json_schema`` before
  2024-08-01-preview is 400 ``{"error": {"code": "BadRequest", "message":
  "response_format value as json_schema is enabled only for api versions
  2024-08-01-preview and later"}}`` (Azure/azure-sdk-for-net#46579).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from runtime.testing import _openai
from runtime.testing._budget import BudgetState
from runtime.testing._completion import AskError, ChatAsk, Completion, split_text
from runtime.testing._provider import FakeProvider
from runtime.testing._script import Fail, StreamError
from runtime.testing._wire import (
    Action,
    EmbedAsk,
    EmbedWire,
    Reply,
    Route,
    StreamPlan,
    sse_frame,
    wire_of,
)

NAME: str = "azure_openai"
API_ROOT: str = ""
ROUTES: tuple[Route, ...] = (
    Route("POST", "/openai/deployments/{model}/chat/completions", Action.CHAT),
    Route("POST", "/openai/deployments/{model}/embeddings", Action.EMBED),
    Route("GET", "/openai/models", Action.LIST_MODELS),
)
MODELS: tuple[str, ...] = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "text-embedding-3-small")
"""Deployment names (a deployment is often named after its model)."""
REQUESTS_PER_MINUTE: int = 1_000
TOKENS_PER_MINUTE: int = 150_000
API_VERSION = "2024-10-21"

_ARGUMENTS_SINCE = (
    ("stream_options", "2024-09-01"),
    ("tool_choice", "2023-12-01"),
    ("tools", "2023-12-01"),
)
_JSON_SCHEMA_SINCE = "2024-08-01"
_NO_JSON_SCHEMA = (
    "response_format value as json_schema is enabled only for api versions "
    "2024-08-01-preview and later"
)
_NO_ACCESS = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
    "a valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)
_ENTRA_REFUSED = (
    "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "(https://cognitiveservices.azure.com), or have expired."
)
_NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the deployment "
    "within the last 5 minutes, please wait a moment and try again."
)
_FILTERED_PROMPT = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry. To learn more about our content filtering "
    "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The request is invalid."),
    403: ("403", "Access denied due to Virtual Network/Firewall rules."),
    408: ("Timeout", "The operation was timeout."),
    500: (
        "InternalServerError",
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: (
        "ServiceUnavailable",
        "The service is temporarily unable to process your request. Please try again later.",
    ),
}
_PERMISSION_DENIED = "Principal does not have access to API/Operation."
_CATEGORIES = ("hate", "self_harm", "sexual", "violence")


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:  # noqa: ARG001
    """The ``api-key`` header, else the token of an ``Authorization: Bearer`` header."""
    key = headers.get("api-key", "").strip()
    if key:
        return key
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def auth_error(presented: str | None) -> Reply:
    """401: Azure's own body for keys, the gateway's for Entra tokens (JWTs, ``eyJ...``)."""
    if presented is not None and presented.startswith("eyJ"):
        return Reply(401, {"statusCode": 401, "message": _ENTRA_REFUSED})
    return Reply(401, error_body("401", _NO_ACCESS))


def error_body(code: str, message: str, **extra: Any) -> Any:
    """Azure's error envelope: ``{"error": {"code", "message", ...}}``."""
    return {"error": {"code": code, "message": message, **extra}}


def header_error(headers: Mapping[str, str]) -> Reply | None:  # noqa: ARG001
    """Azure requires no header but the key (``api-version`` is a query parameter)."""
    return None


def read_ask(
    body: Any,
    *,
    model: str | None,
    stream: bool,  # noqa: ARG001 - the body says whether to stream
    query: Mapping[str, str],
) -> ChatAsk:
    """Read OpenAI's chat body for the deployment in the path.

    Raises:
        AskError: no ``api-version`` (answered 404), or a body OpenAI's API would refuse.
    """
    version = query.get("api-version", "")
    if not version:
        raise AskError("Resource not found", "api-version", "404")
    if not isinstance(body, Mapping):
        raise AskError("We could not parse the JSON body of your request.")
    _check_version(body, version)
    return _openai.read_ask({**body, "model": model or ""}, model=None, stream=False, query=query)


def _check_version(body: Mapping[str, Any], version: str) -> None:
    """Refuse what ``version`` does not take, as Azure does.

    Raises:
        AskError: arguments the version does not know, or ``json_schema`` before structured
            outputs.
    """
    unknown = [name for name, since in _ARGUMENTS_SINCE if name in body and _before(version, since)]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        message = f"Unrecognized request argument{plural} supplied: {', '.join(unknown)}"
        raise AskError(message)
    response_format = _openai.as_mapping(body.get("response_format"))
    if response_format.get("type") == "json_schema" and _before(version, _JSON_SCHEMA_SINCE):
        raise AskError(_NO_JSON_SCHEMA, "response_format", "BadRequest")


def _before(version: str, since: str) -> bool:
    """Whether a dated api-version predates ``since`` (``v1``, ``preview``: the current API)."""
    date = version[:10]
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", date)) and date < since


def bad_request(error: AskError) -> Reply:
    """400 as OpenAI words it, or Azure's own ``BadRequest``; 404 without an ``api-version``."""
    if error.code == "404":
        return Reply(404, error_body("404", error.message))
    if error.code == "BadRequest":
        return Reply(400, error_body("BadRequest", error.message))
    return _openai.bad_request(error)


def read_embed(body: Any) -> EmbedAsk:
    """Read OpenAI's embeddings body (``model`` may be left out: the path names it)."""
    if not isinstance(body, Mapping):
        raise AskError("We could not parse the JSON body of your request.")
    return _openai.read_embed({"model": "(the deployment)", **body})


def embed_answer(ask: EmbedAsk, vectors: tuple[tuple[float, ...], ...], input_tokens: int) -> Any:
    """OpenAI's embeddings ``list``."""
    return _openai.embed_answer(ask, vectors, input_tokens)


def unknown_model(model: str) -> Reply:  # noqa: ARG001 - Azure does not name it
    """404 ``DeploymentNotFound``."""
    return Reply(404, error_body("DeploymentNotFound", _NO_DEPLOYMENT))


def unknown_path(method: str, path: str) -> Reply:  # noqa: ARG001
    """404 ``Resource not found``."""
    return Reply(404, error_body("404", "Resource not found"))


def failure(fail: Fail, model: str) -> Reply:  # noqa: ARG001
    """The error Azure sends with ``fail.status``; ``code`` picks a variant.

    ``content_filter`` is the 400 for a filtered prompt, ``PermissionDenied`` an Entra
    identity without a role; a 404 is ``DeploymentNotFound`` unless ``code`` says ``"404"``.
    """
    if fail.status == 429:  # noqa: PLR2004
        return _throttled("token", fail.retry_after_s or 1.0, fail.message)
    if fail.code == "content_filter":
        return Reply(fail.status, _filtered_prompt(fail.message))
    if fail.code == "PermissionDenied":
        return Reply(
            fail.status, error_body("PermissionDenied", fail.message or _PERMISSION_DENIED)
        )
    if fail.status == 401:  # noqa: PLR2004
        return Reply(401, error_body(fail.code or "401", fail.message or _NO_ACCESS))
    if fail.status == 404 and fail.code in (None, "DeploymentNotFound"):  # noqa: PLR2004
        return Reply(404, error_body("DeploymentNotFound", fail.message or _NO_DEPLOYMENT))
    code, message = _ERRORS.get(fail.status, (str(fail.status), "The request failed."))
    headers = {}
    if fail.retry_after_s is not None:
        headers["retry-after"] = str(math.ceil(fail.retry_after_s))
    return Reply(fail.status, error_body(fail.code or code, fail.message or message), headers)


def _filtered_prompt(message: str | None) -> Any:
    verdicts = _verdicts(flagged="violence")
    inner = {"code": "ResponsibleAIPolicyViolation", "content_filter_result": verdicts}
    extra = {"param": "prompt", "type": None, "status": 400, "innererror": inner}
    return error_body("content_filter", message or _FILTERED_PROMPT, **extra)


def _throttled(limit: str, wait_s: float, message: str | None) -> Reply:
    seconds = max(math.ceil(wait_s), 1)
    text = message or (
        f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        f"{API_VERSION} have exceeded {limit} rate limit of your current OpenAI S0 pricing "
        f"tier. Please retry after {seconds} second{'s' if seconds != 1 else ''}. Please go "
        "here: https://aka.ms/oai/quotaincrease if you would like to further increase the "
        "default rate limit."
    )
    headers = {"retry-after": str(seconds), "retry-after-ms": str(round(wait_s * 1000))}
    return Reply(429, error_body("429", text), headers)


def rate_limited(model: str, limit: int, wait_s: float) -> Reply:  # noqa: ARG001
    """429 ``"429"`` for the requests-per-minute limit, its wait in headers and message."""
    return _throttled("call", wait_s, None)


def limit_headers(requests: BudgetState, tokens: BudgetState) -> dict[str, str]:
    """``x-ratelimit-remaining-requests`` and ``-tokens`` (Azure sends no reset headers)."""
    return {
        "x-ratelimit-remaining-requests": str(requests.remaining),
        "x-ratelimit-remaining-tokens": str(tokens.remaining),
    }


def id_headers() -> dict[str, str]:
    """``apim-request-id`` and ``x-request-id``."""
    return {"apim-request-id": str(uuid.uuid4()), "x-request-id": str(uuid.uuid4())}


def answer(completion: Completion, model: str) -> Any:
    """OpenAI's ``chat.completion`` with Azure's prompt and completion filter results."""
    body = _openai.answer(completion, model)
    body.pop("service_tier", None)
    for choice in body["choices"]:
        choice["content_filter_results"] = _completion_verdicts(completion)
        if _filtered(completion) and not completion.text:
            choice["message"]["content"] = None
    return {"prompt_filter_results": _prompt_verdicts(), **body}


def stream(completion: Completion, ask: ChatAsk) -> StreamPlan:
    """Azure's chunks: the prompt-filter chunk, role, text, calls, finish, usage, ``[DONE]``.

    An answer that starts with a call has no role chunk of its own: the call's first chunk
    carries the role.
    """
    whole = _openai.answer(completion, ask.model)
    envelope = {
        "id": whole["id"],
        "object": "chat.completion.chunk",
        "created": whole["created"],
        "model": ask.model,
        "system_fingerprint": whole["system_fingerprint"],
    }
    extra = {"usage": None} if ask.include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None, verdicts: Any = None) -> bytes:
        choice = {
            "content_filter_results": {} if verdicts is None else verdicts,
            "delta": delta,
            "finish_reason": finish,
            "index": 0,
            "logprobs": None,
        }
        return sse_frame({**envelope, "choices": [choice], **extra})

    first = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
    head = [sse_frame({**first, "prompt_filter_results": _prompt_verdicts()})]
    body = [chunk(delta, verdicts=_verdicts()) for delta in _text_deltas(completion)]
    pieces = _openai.tool_call_pieces(completion.tool_calls)
    calls: list[dict[str, Any]] = [{"tool_calls": [piece]} for piece in pieces]
    if body or not calls:
        head.append(chunk({"content": "", "refusal": None, "role": "assistant"}))
    else:
        calls[0] = {"role": "assistant", "content": None, "refusal": None, **calls[0]}
    body += [chunk(delta) for delta in calls]
    finish = whole["choices"][0]["finish_reason"]
    tail = [chunk({}, finish, _completion_verdicts(completion))]
    if ask.include_usage:
        tail.append(sse_frame({**envelope, "choices": [], "usage": whole["usage"]}))
    tail.append(sse_frame("[DONE]"))
    return StreamPlan(tuple(head), tuple(body), tuple(tail), idle=chunk({}))


def _text_deltas(completion: Completion) -> list[dict[str, Any]]:
    """The answer's text in pieces, or its refusal (a schema the model would not fill)."""
    if completion.refusal:
        return [{"refusal": piece} for piece in split_text(completion.refusal)]
    return [{"content": piece} for piece in split_text(completion.text)]


def stream_error(error: StreamError) -> bytes | None:
    """``data: {"error": {"code", "message"}}``."""
    message = error.message or "The server had an error while processing your request."
    return sse_frame(error_body(error.code or "InternalServerError", message))


def stream_error_failure(error: StreamError) -> Fail:
    """A 500 ``InternalServerError``."""
    return Fail(500, code=error.code, message=error.message)


def model_list(models: tuple[str, ...]) -> Any:
    """``GET /openai/models``: the fake lists its deployments' names as the models."""
    return {"data": [model_info(m) for m in models], "object": "list"}


def model_info(model: str) -> Any:
    """One model as "Models - List" describes it."""
    embeddings = "embedding" in model
    return {
        "status": "succeeded",
        "capabilities": {
            "fine_tune": False,
            "inference": True,
            "completion": False,
            "chat_completion": not embeddings,
            "embeddings": embeddings,
        },
        "lifecycle_status": "generally-available",
        "deprecation": {"inference": 1_767_225_600},
        "id": model,
        "created_at": 1_715_558_400,
        "object": "model",
    }


def _filtered(completion: Completion) -> bool:
    return completion.finish == "content_filter"


def _verdicts(flagged: str | None = None) -> dict[str, Any]:
    return {
        name: {"filtered": name == flagged, "severity": "medium" if name == flagged else "safe"}
        for name in _CATEGORIES
    }


def _prompt_verdicts() -> list[dict[str, Any]]:
    results = {**_verdicts(), "jailbreak": {"filtered": False, "detected": False}}
    return [{"prompt_index": 0, "content_filter_results": results}]


def _completion_verdicts(completion: Completion) -> dict[str, Any]:
    """The verdicts on the answer: none when it is calls only (no text to judge)."""
    if completion.tool_calls and not completion.text and not completion.refusal:
        return {}
    return _verdicts(flagged="violence" if _filtered(completion) else None)


class FakeAzureOpenAI(FakeProvider):
    """A fake Azure OpenAI resource: ``/openai/deployments/{deployment}/chat/completions``.

    Also ``.../embeddings`` and ``GET /openai/models``, each wanting ``?api-version=``. The
    base URL is the resource endpoint, with no path; ``models`` are the deployment names
    (a chat for any other is ``DeploymentNotFound``). Keys go in ``api-key``, or as
    ``Authorization: Bearer`` for Microsoft Entra ID tokens; ``keys`` holds both kinds. A
    429 always tells its wait, in ``retry-after-ms``, ``retry-after`` and its message (1 s
    unless ``Fail.retry_after_s`` says); answers carry ``x-ratelimit-remaining-*``.
    """

    wire: ClassVar[EmbedWire] = wire_of(__name__)
