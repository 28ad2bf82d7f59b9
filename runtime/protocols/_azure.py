"""Azure OpenAI: OpenAI's chat-completions body, sent to a deployment of an Azure resource.

Chats go to ``POST {base}/openai/deployments/{deployment}/chat/completions?api-version=V``,
where ``base`` is the resource endpoint (``https://<resource>.openai.azure.com``) and the
``deployment`` and ``api_version`` options come from the config (the version defaults to
the GA ``2024-10-21``). The body and the answers are OpenAI's, so this module builds on
`runtime.protocols._openai` and changes only what Azure does differently:

- The key goes in an ``api-key`` header; with ``auth = "entra"`` (or ``"bearer"``) the
  ``api_key`` holds a Microsoft Entra ID token, sent as ``Authorization: Bearer``.
- A stream's first chunk often has empty ``choices`` and only ``prompt_filter_results``;
  later chunks carry ``content_filter_results``, and a filtered answer ends with
  ``finish_reason: "content_filter"``. ``stream_options.include_usage`` is sent only from
  api-version 2024-09-01-preview on (the GA 2024-10-21 takes it); older versions refuse it.
- Errors are ``{"error": {"code", "message", "innererror": {"code":
  "ResponsibleAIPolicyViolation", "content_filter_result"}}}`` with string codes
  (``DeploymentNotFound``, ``content_filter``, ``"429"``, ``"401"``, ``PermissionDenied``,
  ``OperationNotSupported``); a rejected Entra token comes from the gateway as
  ``{"statusCode": 401, "message"}``. A 429 says its wait in ``retry-after-ms`` and
  ``retry-after`` (and in the message: "Please retry after 6 seconds").
- Answers carry ``x-ratelimit-remaining-requests`` and ``-tokens`` but no reset headers,
  so the resets stay ``None``.

Tools and structured output are OpenAI's (``tools``, ``tool_choice``, ``tool_calls``, tool
turns, ``response_format`` ``json_schema``, a ``refusal``; the 2024-10-21 reference lists
them all, and ``parallel_tool_calls``, left at its default: parallel calls are taken). A
tool-call answer ends with ``finish_reason: "tool_calls"``; its stream chunks carry empty
``content_filter_results`` (Azure filters the text, not the calls). Older api-versions take
less, so the request is shaped for the configured one:

- Before 2023-12-01-preview there are no tools (Azure refuses ``tools`` as an unrecognized
  argument): a request with tools or tool turns is refused before it is sent
  (``bad_request``, saying which api_version takes them).
- Before 2024-06-01 ``tool_choice`` has no ``"required"``: it becomes the one tool's name
  when one tool is offered (the same promise), else ``"auto"`` (the nearest documented form;
  the model may then answer in text).
- Before 2024-08-01-preview there are no structured outputs: Azure answers
  ``response_format`` ``json_schema`` with 400 ``BadRequest`` ("enabled only for api
  versions 2024-08-01-preview and later"), and a tool's ``strict`` belongs to the same
  feature. The schema then goes into the system prompt (`output_instruction`) and tools go
  without ``strict``; the runtime checks the answer as always.

The start-up check is ``GET {base}/openai/models?api-version=V`` (documented as "Models -
List"): a 200 proves the endpoint, the api-version and the key. It cannot prove the
deployment: the data-plane deployments route (api-version 2022-12-01) is retired, and the
documented way to read a deployment is the control plane (Azure Resource Manager, which
needs a subscription, a resource group and an ARM token, none of which a provider has). A
missing deployment is therefore reported by the first call, as ``not_found`` with code
``DeploymentNotFound``. The same list serves `ListModels`: it names the base and
fine-tuned models the resource can deploy, not its deployments. Embeddings go to
``POST {base}/openai/deployments/{EmbedRequest.model}/embeddings?api-version=V``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from runtime._chat import (
    ChatRequest,
    ChatResult,
    EmbedRequest,
    EmbedResult,
    RateLimitInfo,
    Usage,
)
from runtime._errors import ErrorKind, ProviderError
from runtime._tools import ToolCallDelta
from runtime.protocols import _openai as openai
from runtime.protocols._base import Embeddings, HttpCall, ListModels, WireProtocol
from runtime.protocols._common import (
    as_dict,
    as_str,
    int_header,
    is_error,
    key_headers,
    kind_for_status,
    load_json,
    malformed,
    output_instruction,
    retry_after_s,
    snippet,
)

if TYPE_CHECKING:
    from runtime.protocols._base import Endpoint, Headers, StreamParser

NAME = "azure_openai"
DEFAULT_API_VERSION = "2024-10-21"
"""The latest GA api-version of the dated data-plane inference API."""
SINCE = {
    "tools": "2023-12-01",
    "required": "2024-06-01",
    "json_schema": "2024-08-01",
    "stream_usage": "2024-09-01",
}
"""The first api-version date that takes each feature: ``tools`` and ``tool_choice``,
``tool_choice: "required"``, structured outputs (``json_schema``, ``strict``) and
``stream_options.include_usage``."""
_BEARER_AUTH = frozenset({"entra", "bearer"})
_CODE_KINDS = {
    "deploymentnotfound": ErrorKind.NOT_FOUND,
    "content_filter": ErrorKind.CONTENT_FILTER,
    "responsibleaipolicyviolation": ErrorKind.CONTENT_FILTER,
    "401": ErrorKind.AUTH,
    "unauthorized": ErrorKind.AUTH,
    "invalidauthenticationtoken": ErrorKind.AUTH,
    "invalid_api_key": ErrorKind.AUTH,
    "permissiondenied": ErrorKind.PERMISSION,
    "403": ErrorKind.PERMISSION,
    "429": ErrorKind.RATE_LIMITED,
    "toomanyrequests": ErrorKind.RATE_LIMITED,
    "operationnotsupported": ErrorKind.BAD_REQUEST,
}
_WAIT_IN_MESSAGE = re.compile(
    r"(?:retry after|try again in)\s+(\d+(?:\.\d+)?)\s*(?:seconds?|s)\b", re.IGNORECASE
)
_FILTERED = '"filtered":true'


def chat_request(endpoint: Endpoint, request: ChatRequest, stream: bool) -> HttpCall:
    """Build OpenAI's chat body as the api-version takes it, addressed to the deployment.

    Raises:
        ProviderError: ``bad_request`` for tools on an api-version without them.
    """
    version = _api_version(endpoint)
    call = openai.chat_request(endpoint, _for_version(request, version), stream)
    body = call.json
    if stream and isinstance(body, dict) and not takes("stream_usage", version):
        body = {name: value for name, value in body.items() if name != "stream_options"}
    deployment = endpoint.option("deployment") or request.model
    url = _url(endpoint, f"deployments/{quote(deployment, safe='')}/chat/completions")
    return HttpCall("POST", url, _headers(endpoint, body=True), body, stream=call.stream)


def _api_version(endpoint: Endpoint) -> str:
    return endpoint.option("api_version") or DEFAULT_API_VERSION


def takes(feature: str, api_version: str) -> bool:
    """Whether ``api_version`` takes a feature of `SINCE`.

    A version that is not a date (``"v1"``, ``"preview"``, ``"latest"``) is the current
    API, which takes them all.
    """
    date = api_version[:10]
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        return True
    return date >= SINCE[feature]


def _for_version(request: ChatRequest, version: str) -> ChatRequest:
    """The request as ``version`` can take it (see the module docstring)."""
    uses_tools = bool(request.tools) or any(
        m.role == "tool" or m.tool_calls for m in request.messages
    )
    if uses_tools and not takes("tools", version):
        raise ProviderError(
            ErrorKind.BAD_REQUEST,
            f"Azure OpenAI api_version {version} takes no tools (they came with "
            f'2023-12-01-preview): set api_version = "{DEFAULT_API_VERSION}" for this '
            "provider",
            code="api_version",
        )
    if takes("json_schema", version):
        return request
    return _without_structured_outputs(request, version)


def _without_structured_outputs(request: ChatRequest, version: str) -> ChatRequest:
    """For an api-version older than structured outputs: no ``strict``, the schema in words."""
    tools = tuple(dataclasses.replace(tool, strict=False) for tool in request.tools)
    choice = request.tool_choice
    if choice == "required" and not takes("required", version):
        choice = tools[0].name if len(tools) == 1 else "auto"
    if request.output is None:
        return dataclasses.replace(request, tools=tools, tool_choice=choice)
    turns, system = ChatRequest.split_system(request.messages, request.system)
    instruction = output_instruction(request.output)
    return dataclasses.replace(
        request,
        messages=turns,
        system=f"{system}\n\n{instruction}" if system else instruction,
        tools=tools,
        tool_choice=choice,
        output=None,
    )


def _url(endpoint: Endpoint, path: str) -> str:
    root = endpoint.base_url.rstrip("/").removesuffix("/openai")
    return f"{root}/openai/{path}?api-version={quote(_api_version(endpoint), safe='')}"


def _headers(endpoint: Endpoint, *, body: bool) -> tuple[tuple[str, str], ...]:
    return key_headers(endpoint, body=body, key_header="api-key", bearer=_BEARER_AUTH)


def parse_chat(status: int, headers: Headers, body: bytes) -> ChatResult:
    """Parse a whole ``chat.completion`` as OpenAI's; raise `ProviderError` for an error."""
    if is_error(status):
        raise parse_error(status, headers, body)
    try:
        result = openai.parse_chat(status, headers, body)
    except ProviderError as error:
        raise _with_filter_results(error, body) from None
    return dataclasses.replace(result, rate_limits=rate_limits(headers))


def _with_filter_results(error: ProviderError, body: bytes) -> ProviderError:
    """Name the categories Azure's content filter flagged in the answer's first choice."""
    if error.kind is not ErrorKind.CONTENT_FILTER:
        return error
    data = as_dict(load_json(body))
    choices = data.get("choices")
    first = as_dict(choices[0]) if isinstance(choices, list) and choices else {}
    flagged = _flagged(first.get("content_filter_results"))
    if not flagged:
        return error
    message = f"{error.message} (flagged: {', '.join(flagged)})"
    return ProviderError(error.kind, message, status=error.status, code=error.code)


def _flagged(results: object) -> list[str]:
    """The categories a ``content_filter_results`` object marks as filtered, with severity."""
    flagged = []
    for category, raw in as_dict(results).items():
        verdict = as_dict(raw)
        if verdict.get("filtered") is True:
            severity = as_str(verdict.get("severity"))
            flagged.append(f"{category} ({severity})" if severity else category)
    return flagged


def parse_error(status: int, headers: Headers, body: bytes) -> ProviderError:
    """Map an Azure error response (any body, JSON or not) to a `ProviderError`; never raises."""
    data = load_json(body)
    wait = retry_after_s(headers)
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return _error_from(error, status, wait)
        if isinstance(data.get("message"), str) and "error" not in data:
            return _gateway_error(data, status, wait)
    return openai.parse_error(status, headers, body)


def _error_from(error: dict[str, object], status: int | None, wait: float | None) -> ProviderError:
    code = _code(error.get("code"))
    inner = as_dict(error.get("innererror"))
    inner_code = _code(inner.get("code"))
    message = _message(error.get("message"), status)
    kind = _kind(code, inner_code, status)
    if kind is ErrorKind.CONTENT_FILTER:
        flagged = _flagged(inner.get("content_filter_result"))
        if flagged:
            message = f"{message} (flagged: {', '.join(flagged)})"
    elif code == "DeploymentNotFound":
        message = (
            "no such deployment on this Azure OpenAI resource: the provider's `deployment` "
            "option must name a deployment (its name, not the model's); a deployment made "
            f"in the last 5 minutes may not be ready yet. Azure said: {message}"
        )
    elif code == "404":
        message = f"{message} (check base_url, the resource endpoint, and api_version)"
    if kind is ErrorKind.RATE_LIMITED and wait is None:
        wait = _wait_in(message)
    return ProviderError(kind, message, status=status, retry_after_s=wait, code=code or inner_code)


def _gateway_error(data: dict[str, object], status: int, wait: float | None) -> ProviderError:
    """``{"statusCode", "message"}``: Azure's gateway, e.g. for a rejected Entra token."""
    message = _message(data.get("message"), status)
    kind = kind_for_status(status)
    if kind is ErrorKind.RATE_LIMITED and wait is None:
        wait = _wait_in(message)
    return ProviderError(kind, message, status=status, retry_after_s=wait, code=str(status))


def _kind(code: str | None, inner_code: str | None, status: int | None) -> ErrorKind:
    for tag in (code, inner_code):
        if tag and tag.lower() in _CODE_KINDS:
            return _CODE_KINDS[tag.lower()]
    if status is not None:
        return kind_for_status(status)
    return ErrorKind.SERVER


def _code(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value) or None


def _message(value: object, status: int | None) -> str:
    if isinstance(value, str) and value.strip():
        return snippet(value.encode())
    return f"HTTP {status} with no message" if status is not None else "error with no message"


def _wait_in(message: str) -> float | None:
    """The wait a message names ("Please retry after 6 seconds"), when headers gave none."""
    found = _WAIT_IN_MESSAGE.search(message)
    return float(found.group(1)) if found else None


class _Stream:
    """OpenAI's stream parser, with Azure's error codes and content-filter verdicts."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers
        self._inner = openai.stream_parser(headers)
        self._flagged: list[str] = []

    def feed(self, event: str, data: str) -> list[str | ToolCallDelta]:
        if '"error"' in data or _FILTERED in data:
            self._inspect(data)
        return self._inner.feed(event, data)

    def _inspect(self, data: str) -> None:
        chunk = load_json(data)
        if not isinstance(chunk, dict):
            return
        if isinstance(chunk.get("error"), dict):
            raise _error_from(chunk["error"], None, None)
        for choice in chunk.get("choices") or []:
            for category in _flagged(as_dict(choice).get("content_filter_results")):
                if category not in self._flagged:
                    self._flagged.append(category)

    def finish(self) -> ChatResult:
        try:
            result = self._inner.finish()
        except ProviderError as error:
            if error.kind is ErrorKind.CONTENT_FILTER and self._flagged:
                message = f"{error.message} (flagged: {', '.join(self._flagged)})"
                raise ProviderError(
                    error.kind, message, status=error.status, code=error.code
                ) from None
            raise
        return dataclasses.replace(result, rate_limits=rate_limits(self._headers))

    def usage_so_far(self) -> Usage:
        return self._inner.usage_so_far()


def stream_parser(headers: Headers) -> StreamParser:
    """Start parsing a streamed chat completion."""
    return _Stream(headers)


def rate_limits(headers: Headers) -> RateLimitInfo:
    """Read ``x-ratelimit-remaining-requests`` and ``-tokens`` (Azure sends no resets)."""
    return RateLimitInfo(
        remaining_requests=int_header(headers, "x-ratelimit-remaining-requests"),
        remaining_tokens=int_header(headers, "x-ratelimit-remaining-tokens"),
    )


def models_request(endpoint: Endpoint) -> HttpCall:
    """Build ``GET /openai/models``, which any valid key or token may call."""
    return HttpCall("GET", _url(endpoint, "models"), _headers(endpoint, body=False))


def check_models(
    endpoint: Endpoint, status: int, headers: Headers, body: bytes
) -> ProviderError | None:
    """Return ``None`` when the key works (the deployment is checked by the first call)."""
    try:
        parse_models(status, headers, body)
    except ProviderError as error:
        if error.kind is ErrorKind.NOT_FOUND:
            return ProviderError(
                error.kind,
                f"{endpoint.base_url} has no Azure OpenAI API for api-version "
                f"{_api_version(endpoint)}: {error.message}",
                status=error.status,
                code=error.code,
            )
        return error
    return None


def parse_models(status: int, headers: Headers, body: bytes) -> list[str]:
    """Return the ids of a ``GET /openai/models`` answer (``data[].id``)."""
    if is_error(status):
        raise parse_error(status, headers, body)
    return openai.parse_models(status, headers, body)


def embed_request(endpoint: Endpoint, request: EmbedRequest) -> HttpCall:
    """Build OpenAI's embeddings body for the deployment ``request.model`` names."""
    call = openai.embed_request(endpoint, request)
    path = f"deployments/{quote(request.model, safe='')}/embeddings"
    return HttpCall("POST", _url(endpoint, path), _headers(endpoint, body=True), call.json)


def parse_embeddings(status: int, headers: Headers, body: bytes) -> EmbedResult:
    """Parse OpenAI's embeddings ``list``; errors are read as Azure's."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        raise _error_from(data["error"], None, None)
    if not isinstance(data, dict):
        raise malformed(f"embeddings answer is not a JSON object: {snippet(body)}")
    return openai.parse_embeddings(status, headers, body)


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
