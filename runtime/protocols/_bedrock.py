"""AWS Bedrock's Converse API, its model list, and Cohere embeddings on Bedrock.

Chats go to ``POST {base_url}/model/{modelId}/converse`` (``/converse-stream`` to stream),
``base_url`` being ``https://bedrock-runtime.{region}.amazonaws.com``; the model id is
escaped in the path with ``:`` left bare, as the aiohttp transport sends it (it would
unescape ``%3A``), since SigV4 signs the path as sent. Messages hold ``{"text"}`` and
``{"image": {"format", "source": {"bytes": base64}}}`` blocks (Bedrock cannot fetch an
image by URL); a part marked ``cache`` is followed by a ``{"cachePoint": {"type":
"default"}}`` block, in ``messages`` and ``system`` alike. Requests are left unsigned for
the I/O layer to sign (``auth`` ``"default"`` or ``"sigv4"``: see `uses_sigv4`,
`region_of` and `runtime._aws.sigv4_signer`); with ``auth = "api-key"`` a Bedrock API key
goes in ``Authorization: Bearer``. Errors are ``{"message"}`` bodies named by the
``x-amzn-ErrorType`` header (``ThrottlingException:http://internal.amazon.com/...``).

The start-up check and the model list read the control plane, ``GET
https://bedrock.{region}.amazonaws.com/foundation-models`` (``modelSummaries[].modelId``),
or the base URL itself when it is not an AWS host (a proxy, the loopback fake); an
inference profile (``us.anthropic.claude-...``) passes when the model it names is listed.
Embeddings are Cohere embed models, ``POST {base_url}/model/{modelId}/invoke`` with
``{"texts", "input_type", "embedding_types": ["float"]}``. Amazon Titan embeddings are
not supported: Titan takes one text per call, and an embeddings attempt is one call.

A ``converse-stream`` answer is AWS event-stream messages. The I/O layer decodes them
with `EventStreamDecoder` or `decode_event_stream` (from `runtime.protocols._aws_eventstream`,
re-exported here; callboard's own, so a Bedrock API key needs no extra) and calls the parser's
``feed(name, payload)`` once per message: ``name`` is the ``:event-type`` of an event
(``messageStart``, ``contentBlockStart``, ``contentBlockDelta``, ``contentBlockStop``,
``messageStop``, ``metadata``), the ``:exception-type`` of an exception
(``throttlingException``, ``modelStreamErrorException``, ``internalServerException``,
``validationException``, ``serviceUnavailableException``, ``modelTimeoutException``) or
the ``:error-code`` of an error message; ``payload`` is the payload as UTF-8 JSON text
(``{"contentBlockIndex": 0, "delta": {"text": "Hi"}}``, an exception's ``{"message"}``).
Deltas carry the text, ``messageStop`` the ``stopReason``, ``metadata`` the ``usage``;
an exception raises `ProviderError`, and a stream ending before ``messageStop`` is
malformed.

Tools and structured output (`runtime.protocols._bedrock_tools` has the shapes and how
each tool choice and schema is sent): tools go in ``toolConfig``, calls come back as
``toolUse`` blocks with ``stopReason: "tool_use"`` (``tool_calls``), results go back as
``toolResult`` blocks; a call streams as a ``contentBlockStart`` naming it
(``start.toolUse``) and ``contentBlockDelta`` events with fragments of its input
(``delta.toolUse.input``), each a `ToolCallDelta`. ``stopReason: "malformed_tool_use"``
is a ``malformed_response``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, cast
from urllib.parse import quote, urlsplit

from runtime._chat import (
    ChatRequest,
    ChatResult,
    EmbedRequest,
    EmbedResult,
    ImagePart,
    Message,
    RateLimitInfo,
    TextPart,
    Usage,
)
from runtime._errors import ErrorKind, ProviderError
from runtime._tools import ToolCall, ToolCallDelta

# Re-exported: the I/O layer decodes Bedrock's streams with them.
from runtime.protocols._aws_eventstream import EventStreamDecoder as EventStreamDecoder  # noqa: PLC0414
from runtime.protocols._aws_eventstream import decode_event_stream as decode_event_stream  # noqa: PLC0414
from runtime.protocols._base import Embeddings, HttpCall, ListModels, WireProtocol
from runtime.protocols._bedrock_tools import (
    StreamedTools,
    answer_parts,
    output_config,
    output_instruction,
    tool_config,
    tool_result_block,
    tool_use_block,
)
from runtime.protocols._common import (
    as_count,
    as_dict,
    as_str,
    int_header,
    is_error,
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
    from runtime._chat import Part, Tuning
    from runtime.protocols._base import Endpoint, Headers

NAME = "bedrock"
DEFAULT_REGION = "us-east-1"
MAX_EMBED_TEXTS = 96
"""The most texts a Cohere embed model on Bedrock takes in one call."""

_CACHE_POINT: dict[str, object] = {"cachePoint": {"type": "default"}}
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_REGION_HOST = re.compile(
    r"bedrock(?:-runtime)?(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
)
_FILTERED = frozenset({"content_filtered", "guardrail_intervened"})
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
} | dict.fromkeys(_FILTERED, "content_filter")
_EXCEPTION_KINDS = {
    name.lower(): kind
    for kind, names in {
        ErrorKind.RATE_LIMITED: ("ThrottlingException", "ServiceQuotaExceededException"),
        ErrorKind.PERMISSION: ("AccessDeniedException", "NotAuthorized"),
        ErrorKind.AUTH: (
            "UnrecognizedClientException",
            "ExpiredTokenException",
            "InvalidSignatureException",
            "IncompleteSignatureException",
            "IncompleteSignature",
            "MissingAuthenticationTokenException",
            "MissingAuthenticationToken",
            "InvalidClientTokenId",
            "RequestExpired",
        ),
        ErrorKind.BAD_REQUEST: ("ValidationException",),
        ErrorKind.NOT_FOUND: ("ResourceNotFoundException",),
        ErrorKind.TIMEOUT: ("ModelTimeoutException",),
        ErrorKind.OVERLOADED: ("ServiceUnavailableException", "ModelNotReadyException"),
        ErrorKind.SERVER: (
            "InternalServerException",
            "InternalFailure",
            "ModelErrorException",
            "ModelStreamErrorException",
        ),
    }.items()
    for name in names
}
_INVALID_MODEL = "model identifier is invalid"
_NO_PAYMENT = "INVALID_PAYMENT_INSTRUMENT"
"""In an AccessDeniedException: the model's Marketplace subscription has no way to pay."""
_EVENTS = frozenset(
    {
        "messageStart",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    }
)
_ERROR_SUFFIXES = ("Exception", "Error", "Failure")
_INPUT_TYPES = {"document": "search_document", "query": "search_query"}


def region_of(endpoint: Endpoint) -> str:
    """Return the endpoint's AWS region: its ``region`` option, else the base URL's."""
    region = endpoint.option("region")
    if region:
        return region
    found = _REGION_HOST.fullmatch(urlsplit(endpoint.base_url).hostname or "")
    return found["region"] if found else DEFAULT_REGION


def uses_sigv4(endpoint: Endpoint) -> bool:
    """Whether requests to ``endpoint`` must be signed with SigV4 (else a key is sent)."""
    return endpoint.auth in ("default", "sigv4")


def control_url(endpoint: Endpoint) -> str:
    """Return the control plane's root: ``bedrock.`` for ``bedrock-runtime.`` on AWS hosts."""
    parts = urlsplit(endpoint.base_url)
    host = parts.hostname or ""
    if _REGION_HOST.fullmatch(host) and host.startswith("bedrock-runtime"):
        netloc = parts.netloc.replace("bedrock-runtime", "bedrock", 1)
        return f"{parts.scheme}://{netloc}"
    return endpoint.base_url


def model_path(model: str) -> str:
    """Escape a model id (or ARN) for the URL path, leaving ``:`` bare."""
    return quote(model, safe=":")


def chat_request(endpoint: Endpoint, request: ChatRequest, stream: bool) -> HttpCall:
    """Build ``POST /model/{modelId}/converse`` (``/converse-stream`` to stream).

    Raises:
        ProviderError: ``bad_request`` for an image given by URL, or of a format
            Bedrock does not take.
    """
    system = _system_blocks(request)
    body: dict[str, object] = {"messages": _turns(request.messages)}
    if system:
        body["system"] = system
    config = _inference_config(request.tuning)
    if config:
        body["inferenceConfig"] = config
    body.update(
        without_none({"toolConfig": tool_config(request), "outputConfig": output_config(request)})
    )
    action = "converse-stream" if stream else "converse"
    url = f"{endpoint.base_url}/model/{model_path(request.model)}/{action}"
    return HttpCall("POST", url, _headers(endpoint, body=True), body, stream=stream)


def _system_blocks(request: ChatRequest) -> list[dict[str, object]]:
    blocks: list[dict[str, object]] = [{"text": request.system}] if request.system else []
    for message in request.messages:
        if message.role == "system":
            if message.has_images:
                raise ProviderError(
                    ErrorKind.BAD_REQUEST, "Bedrock takes no images in the system prompt"
                )
            blocks.extend(_blocks(message.parts))
    instruction = output_instruction(request)
    return [*blocks, instruction] if instruction else blocks


def _turns(messages: Iterable[Message]) -> list[dict[str, object]]:
    """Return the conversation as Converse turns, a tool's result being a user turn.

    Turns of one role in a row become one turn, as Bedrock wants user and assistant to
    alternate: every result of one call turn thus goes in one user turn, before any text.
    """
    turns: list[dict[str, object]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "user" if message.role == "tool" else message.role
        blocks = _message_blocks(message)
        if turns and turns[-1]["role"] == role:
            cast("list[dict[str, object]]", turns[-1]["content"]).extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _message_blocks(message: Message) -> list[dict[str, object]]:
    """A turn's blocks: a result's parts go inside its ``toolResult`` (a cache mark after)."""
    blocks = _blocks(message.parts)
    if message.role == "tool":
        content = [b for b in blocks if b is not _CACHE_POINT and b.get("text") != ""]
        cached = [_CACHE_POINT] if any(p.cache for p in message.parts) else []
        return [tool_result_block(message, content), *cached]
    if message.tool_calls:
        blocks = [b for b in blocks if b.get("text") != ""]
    return [*blocks, *(tool_use_block(call) for call in message.tool_calls)]


def _blocks(parts: Iterable[Part]) -> list[dict[str, object]]:
    blocks: list[dict[str, object]] = []
    for part in parts:
        blocks.append({"text": part.text} if isinstance(part, TextPart) else _image(part))
        if part.cache:
            blocks.append(_CACHE_POINT)
    return blocks


def _image(part: ImagePart) -> dict[str, object]:
    inline = part.inline()
    if inline is None:
        raise ProviderError(
            ErrorKind.BAD_REQUEST,
            "Bedrock cannot fetch images by URL: give the image as data "
            "(base64 with its media_type) instead",
        )
    media_type, data = inline
    image_format = _IMAGE_FORMATS.get((media_type or "").lower())
    if image_format is None:
        raise ProviderError(
            ErrorKind.BAD_REQUEST,
            f"Bedrock takes png, jpeg, gif or webp images, not {media_type!r}",
        )
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _inference_config(tuning: Tuning) -> dict[str, object]:
    values: dict[str, object] = {
        "maxTokens": tuning.max_tokens,
        "temperature": tuning.temperature,
        "topP": tuning.top_p,
        "stopSequences": list(tuning.stop) if tuning.stop else None,
    }
    return without_none(values)


def _headers(endpoint: Endpoint, *, body: bool) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    if endpoint.api_key and endpoint.auth in ("api-key", "bearer"):
        headers.append(("authorization", f"Bearer {endpoint.api_key}"))
    if body:
        headers.append(("content-type", "application/json"))
    return (*headers, *endpoint.extra_headers)


def parse_chat(status: int, headers: Headers, body: bytes) -> ChatResult:
    """Parse a whole ``ConverseResponse``; raise `ProviderError` for anything else."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    if not isinstance(data, dict):
        raise malformed(f"Converse answer is not a JSON object: {snippet(body)}")
    content = as_dict(as_dict(data.get("output")).get("message")).get("content")
    if not isinstance(content, list):
        raise malformed("Converse answer has no output.message.content array")
    text, calls, answer = answer_parts(content)
    return _result(text, _usage(data.get("usage")), data.get("stopReason"), calls, answer)


def _result(
    text: str,
    usage: Usage,
    stop: object,
    calls: tuple[ToolCall, ...] = (),
    answer: str | None = None,
) -> ChatResult:
    """The whole answer; ``answer``, the forced tool's input, stands for its text."""
    if stop == "malformed_tool_use":
        raise malformed("Bedrock ended the answer with stopReason 'malformed_tool_use'")
    if not text and not calls and answer is None and stop in _FILTERED:
        raise ProviderError(
            ErrorKind.CONTENT_FILTER,
            f"the answer was withheld by Bedrock (stopReason {stop!r})",
            status=200,
            code=str(stop),
        )
    reason = _STOP_REASONS.get(stop, stop.lower()) if isinstance(stop, str) else None
    if answer is not None:
        text = answer
        if reason == "tool_calls" and not calls:
            reason = "stop"
    return ChatResult(text, "", usage, reason, RateLimitInfo(), tool_calls=calls)


def _usage(value: object) -> Usage:
    """Cache reads and writes are counted apart from ``inputTokens``; ours include them."""
    usage = as_dict(value)
    read = as_count(usage.get("cacheReadInputTokens"))
    written = as_count(usage.get("cacheWriteInputTokens"))
    return Usage(
        input_tokens=as_count(usage.get("inputTokens")) + read + written,
        output_tokens=as_count(usage.get("outputTokens")),
        cached_tokens=read,
        cache_write_tokens=written,
    )


def parse_error(status: int, headers: Headers, body: bytes) -> ProviderError:
    """Map an error response (any body, JSON or not) to a `ProviderError`; never raises."""
    data = load_json(body)
    name = _error_name(headers, data)
    if not name and not isinstance(data, dict):
        return non_json_error(status, headers, body)
    fields = as_dict(data)
    message = as_str(fields.get("message") or fields.get("Message")).strip()
    return _error(name, message, status, retry_after_s(headers))


def _error_name(headers: Headers, data: object) -> str:
    """The exception name: ``x-amzn-ErrorType`` up to its ``:``, else the body's type."""
    header = headers.get("x-amzn-errortype", "")
    if header:
        return header.partition(":")[0].strip()
    fields = as_dict(data)
    tag = as_str(fields.get("__type") or fields.get("code") or fields.get("Code"))
    return tag.rpartition("#")[2]


def _error(name: str, message: str, status: int | None, wait: float | None) -> ProviderError:
    kind = _EXCEPTION_KINDS.get(name.lower())
    if kind is ErrorKind.BAD_REQUEST and _INVALID_MODEL in message.lower():
        kind = ErrorKind.NOT_FOUND
    elif kind is ErrorKind.PERMISSION and _NO_PAYMENT in message:
        kind = ErrorKind.QUOTA  # a model's Marketplace subscription with no way to pay
    if kind is None:
        kind = kind_for_status(status) if status is not None else ErrorKind.SERVER
    text = snippet(message.encode()) if message else f"{name or 'error'} with no message"
    return ProviderError(kind, text, status=status, retry_after_s=wait, code=name or None)


class _Stream:
    """Accumulates one ``converse-stream`` answer, fed message by message."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._tools = StreamedTools()
        self._usage = Usage()
        self._stop: object = None
        self._stopped = False

    def feed(self, event: str, data: str) -> list[str | ToolCallDelta]:
        if event not in _EVENTS and _is_exception(event):
            message = as_str(as_dict(load_json(data)).get("message"))
            raise _error(event[:1].upper() + event[1:], message.strip(), None, None)
        payload = load_json(data)
        if not isinstance(payload, dict):
            raise malformed(
                f"stream event {event!r} is not a JSON object: {snippet(data.encode())}"
            )
        block = as_count(payload.get("contentBlockIndex"))
        if event == "contentBlockStart":
            return self._tools.start(block, as_dict(payload.get("start")))
        if event == "contentBlockDelta":
            return self._delta(block, as_dict(payload.get("delta")))
        if event == "messageStop":
            self._stop = payload.get("stopReason")
            self._stopped = True
        elif event == "metadata":
            self._usage = _usage(payload.get("usage"))
        return []

    def _delta(self, block: int, delta: dict[str, object]) -> list[str | ToolCallDelta]:
        if "toolUse" in delta:
            return self._tools.delta(block, as_str(as_dict(delta["toolUse"]).get("input")))
        text = as_str(delta.get("text"))
        self._text.append(text)
        return [text] if text else []

    def finish(self) -> ChatResult:
        if not self._stopped:
            raise malformed("stream ended before messageStop")
        calls = self._tools.calls()
        text = "".join(self._text)
        return _result(text, self._usage, self._stop, calls, self._tools.answer())

    def usage_so_far(self) -> Usage:
        return self._usage


def _is_exception(name: str) -> bool:
    return name.lower() in _EXCEPTION_KINDS or name.endswith(_ERROR_SUFFIXES)


def stream_parser(headers: Headers) -> _Stream:  # noqa: ARG001 - no header matters
    """Start parsing a ``converse-stream`` answer."""
    return _Stream()


def rate_limits(headers: Headers) -> RateLimitInfo:  # noqa: ARG001
    """Bedrock sends no rate-limit headers."""
    return RateLimitInfo()


def models_request(endpoint: Endpoint) -> HttpCall:
    """Build ``GET {control plane}/foundation-models`` (to sign with the same region)."""
    return HttpCall(
        "GET", f"{control_url(endpoint)}/foundation-models", _headers(endpoint, body=False)
    )


def parse_models(status: int, headers: Headers, body: bytes) -> list[str]:
    """Return the ``modelSummaries[].modelId`` of a ``ListFoundationModels`` answer."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    listed = data.get("modelSummaries") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        raise malformed(f"model list has no 'modelSummaries' array: {snippet(body)}")
    return [i for item in listed if (i := as_str(as_dict(item).get("modelId")))]


def check_models(
    endpoint: Endpoint, status: int, headers: Headers, body: bytes
) -> ProviderError | None:
    """Return ``None`` when the credentials work and the model is offered, else the error.

    An inference profile (``us.anthropic.claude-...``) passes when the model after its
    first dot is listed; an ARN other than a foundation model's is not checked.
    """
    try:
        ids = parse_models(status, headers, body)
    except ProviderError as error:
        return error
    model = endpoint.model
    if model.startswith("arn:"):
        if ":foundation-model/" not in model:
            return None
        model = model.rpartition("/")[2]
    if model in ids or model.partition(".")[2] in ids:
        return None
    close = difflib.get_close_matches(model, ids, n=3, cutoff=0.5)
    return ProviderError(
        ErrorKind.NOT_FOUND,
        f"model {endpoint.model!r} is not offered by Bedrock in {region_of(endpoint)}; "
        f"close matches: {', '.join(close) or 'none'}",
        code="ResourceNotFoundException",
    )


def embed_request(endpoint: Endpoint, request: EmbedRequest) -> HttpCall:
    """Build ``POST /model/{modelId}/invoke`` for a Cohere embed model.

    Raises:
        ProviderError: ``bad_request`` for a Titan embeddings model, or too many texts.
    """
    if "titan-embed" in request.model:
        raise ProviderError(
            ErrorKind.BAD_REQUEST,
            "Amazon Titan embeddings take one text per call, which callboard does not do; "
            "use a Cohere embed model on Bedrock (cohere.embed-v4:0, cohere.embed-english-v3)",
        )
    if len(request.texts) > MAX_EMBED_TEXTS:
        raise ProviderError(
            ErrorKind.BAD_REQUEST,
            f"Cohere embed models on Bedrock take at most {MAX_EMBED_TEXTS} texts a call, "
            f"not {len(request.texts)}",
        )
    input_type = request.input_type or "document"
    body: dict[str, object] = {
        "texts": list(request.texts),
        "input_type": _INPUT_TYPES.get(input_type, input_type),
        "embedding_types": ["float"],
    }
    if request.dimensions is not None:
        body["output_dimension"] = request.dimensions
    url = f"{endpoint.base_url}/model/{model_path(request.model)}/invoke"
    return HttpCall("POST", url, _headers(endpoint, body=True), body)


def parse_embeddings(status: int, headers: Headers, body: bytes) -> EmbedResult:
    """Parse Cohere's ``embeddings`` (a list, or ``{"float": [...]}``) in input order."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    found = data.get("embeddings") if isinstance(data, dict) else None
    if isinstance(found, dict):
        found = found.get("float")
    if not isinstance(found, list) or not all(_is_vector(v) for v in found):
        raise malformed(f"embeddings answer has no float 'embeddings': {snippet(body)}")
    tokens = int_header(headers, "x-amzn-bedrock-input-token-count") or 0
    vectors = tuple(tuple(float(x) for x in vector) for vector in found)
    return EmbedResult(vectors, "", Usage(input_tokens=tokens))


def _is_vector(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in value
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
    framing=Framing.AWS_EVENTSTREAM,
    list_models=ListModels(request=models_request, parse=parse_models),
    embed=Embeddings(request=embed_request, parse=parse_embeddings),
    images=True,
    tools=True,
    image_urls=False,
    cache_points=True,
)
