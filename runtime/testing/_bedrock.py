"""The AWS Bedrock wire format (Converse, ConverseStream), as the fake server writes it.

Documented shapes: ``ConverseResponse`` (``output.message``, ``stopReason``, ``usage``
with cache reads and writes counted apart from ``inputTokens``, ``metrics.latencyMs``);
``ConverseStream`` as binary AWS event-stream messages (``messageStart``,
``contentBlockDelta``..., ``contentBlockStop``, ``messageStop``, ``metadata``; no
``contentBlockStart`` for text), with exceptions as messages whose ``:message-type`` is
``exception``; errors as ``{"message"}`` bodies named by the ``x-amzn-ErrorType``
header; the control plane's ``ListFoundationModels`` / ``GetFoundationModel``; and
Cohere embeddings through ``InvokeModel`` (``/model/{modelId}/invoke``).

Tools (`runtime.testing._bedrock_tools` lists the shapes, the refusals and where each came
from): ``toolConfig`` and ``outputConfig`` are read and checked per model; calls are
``toolUse`` blocks with ``stopReason: "tool_use"`` and ``tooluse_`` ids, streamed as a
``contentBlockStart`` (``start.toolUse``) and ``contentBlockDelta`` fragments of the
input (``delta.toolUse.input``) before the block's ``contentBlockStop``; a refusal, which
Converse has no field for, is answered as a filtered answer: no content, ``stopReason:
"content_filtered"``.

Bedrock sends no rate-limit headers and no ``retry-after`` (but a scripted `Fail` with
``retry_after_s`` gets one, as the script asks).

Authentication is checked loosely: a SigV4 ``Authorization`` header scoped to the
``bedrock`` service presents its access key id, a ``Bearer`` header a Bedrock API key;
signatures are not verified. Event-stream messages are encoded here (botocore only
decodes them): prelude (total and headers length, CRC32), string headers, payload, CRC32.

Each public function has the signature `runtime.testing._wire.Wire` asks for, so some
ignore arguments other protocols need.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import uuid
import zlib
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web

from runtime.testing._bedrock_tools import (
    block_text,
    check_tool_turns,
    invalid,
    model_answer,
    read_tools,
)
from runtime.testing._budget import BudgetState
from runtime.testing._completion import (
    AskError,
    ChatAsk,
    Completion,
    Ending,
    positive_int,
    split_text,
    stop_list,
)
from runtime.testing._provider import FakeProvider, _json
from runtime.testing._script import Answer, Behaviour, Fail, StreamError
from runtime.testing._sigv4 import signature_matches
from runtime.testing._wire import (
    Action,
    EmbedAsk,
    Reply,
    Route,
    StreamPlan,
    Wire,
    wire_of,
)

NAME: str = "bedrock"
API_ROOT: str = ""
ROUTES: tuple[Route, ...] = (
    Route("POST", "/model/{model}/converse", Action.CHAT),
    Route("POST", "/model/{model}/converse-stream", Action.CHAT_STREAM),
    Route("POST", "/model/{model}/invoke", Action.EMBED),
    Route("GET", "/foundation-models", Action.LIST_MODELS),
    Route("GET", "/foundation-models/{model}", Action.GET_MODEL),
)
MODELS: tuple[str, ...] = (
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "anthropic.claude-sonnet-4-20250514-v1:0",
    "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "amazon.nova-lite-v1:0",
    "amazon.nova-pro-v1:0",
    "meta.llama3-3-70b-instruct-v1:0",
    "deepseek.r1-v1:0",
    "mistral.mistral-large-2407-v1:0",
    "cohere.embed-english-v3",
    "cohere.embed-v4:0",
)
REQUESTS_PER_MINUTE: int = 250
TOKENS_PER_MINUTE: int = 2_000_000
EVENT_STREAM = "application/vnd.amazon.eventstream"

_ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_AGAIN = "Try your request again."
_EXCEPTIONS: dict[str, tuple[int, str]] = {
    "ValidationException": (400, "Malformed input request, please reformat your input."),
    "ServiceQuotaExceededException": (
        400,
        "Your request exceeds the service quota for your account. You can resubmit it later.",
    ),
    "UnrecognizedClientException": (403, "The security token included in the request is invalid."),
    "ExpiredTokenException": (403, "The security token included in the request is expired"),
    "AccessDeniedException": (
        403,
        "You don't have access to the model with the specified model ID.",
    ),
    "ResourceNotFoundException": (404, "Could not resolve the foundation model you asked for."),
    "ModelTimeoutException": (408, f"Model has timed out in processing the request. {_AGAIN}"),
    "ModelErrorException": (424, f"The model failed while processing the request. {_AGAIN}"),
    "ModelStreamErrorException": (424, f"The model failed while streaming its response. {_AGAIN}"),
    "ThrottlingException": (429, "Too many requests, please wait before trying again."),
    "ModelNotReadyException": (
        429,
        f"Model is not ready for inference. Wait and {_AGAIN[0].lower()}{_AGAIN[1:]}",
    ),
    "InternalServerException": (500, f"The system encountered an unexpected error. {_AGAIN}"),
    "ServiceUnavailableException": (503, "Bedrock is unable to process your request."),
}
_BY_STATUS = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
    504: "ModelTimeoutException",
}
_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s,]+)/\d{8}/[a-z0-9-]+/(?P<service>[\w-]+)"
    r"/aws4_request, ?SignedHeaders=[a-z0-9;-]+, ?Signature=[0-9a-f]{64}"
)
_STOP_REASONS = {
    Ending.NATURAL: "end_turn",
    Ending.STOP_SEQUENCE: "stop_sequence",
    Ending.LENGTH: "max_tokens",
}
_GEOGRAPHIES = frozenset({"us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"})
_MALFORMED = "Malformed input request, please reformat your input and try again."
_EMBED_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
_EMBED_DIMENSIONS = (256, 512, 1024, 1536)
MAX_EMBED_TEXTS = 96
_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_BLOCK_KINDS = ("text", "image", "cachePoint", "toolUse", "toolResult")
_FRAGMENT = 8
"""Characters of a call's input per streamed ``delta.toolUse.input`` fragment."""


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:  # noqa: ARG001
    """The access key id of a SigV4 signature, or a Bearer key; else the raw header."""
    value = headers.get("Authorization", "").strip()
    return _credential(value) or value or None


def _credential(value: str) -> str | None:
    scheme, _, key = value.partition(" ")
    if scheme.lower() == "bearer":
        return key.strip() or None
    signed = _SIGV4.fullmatch(value)
    return signed["key"] if signed and signed["service"] == "bedrock" else None


def error_reply(name: str, message: str | None = None, status: int | None = None) -> Reply:
    """An AWS JSON error: ``{"message"}`` named by ``x-amzn-ErrorType``."""
    known_status, known_message = _EXCEPTIONS.get(name, (500, "An error occurred."))
    headers = {"x-amzn-ErrorType": name + _ERROR_TYPE_SUFFIX}
    return Reply(status or known_status, {"message": message or known_message}, headers)


def auth_error(presented: str | None) -> Reply:
    """403: no ``Authorization``, a malformed signature, or a key that is not accepted."""
    if presented is None:
        return Reply(
            403,
            {"message": "Missing Authentication Token"},
            _type("MissingAuthenticationTokenException"),
        )
    if presented.startswith("AWS4-HMAC-SHA256"):
        return _signature_error(presented)
    return error_reply("UnrecognizedClientException")


def header_error(headers: Mapping[str, str]) -> Reply | None:
    """Even a fake that takes any key wants a SigV4 signature or a Bearer key."""
    if _credential(headers.get("Authorization", "").strip()) is None:
        return auth_error(presented_key(headers, {}))
    return None


def _signature_error(header: str) -> Reply:
    if "Credential=" not in header or "Signature=" not in header:
        message = (
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
            f"parameters. Authorization={header.split(' ', 1)[0]}"
        )
        return Reply(403, {"message": message}, _type("IncompleteSignatureException"))
    message = "Credential should be scoped to correct service: 'bedrock'. "
    return Reply(403, {"message": message}, _type("InvalidSignatureException"))


def signature_mismatch() -> Reply:
    """403 for a signature that is not the one the request's secret access key makes."""
    message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service "
        "documentation for details."
    )
    return Reply(403, {"message": message}, _type("InvalidSignatureException"))


def _type(name: str) -> dict[str, str]:
    return {"x-amzn-ErrorType": name + _ERROR_TYPE_SUFFIX}


def read_ask(
    body: Any,
    *,
    model: str | None,
    stream: bool,
    query: Mapping[str, str],  # noqa: ARG001
) -> ChatAsk:
    """Read a ``Converse`` body; the model and streaming come from the path.

    An inference profile (``us.anthropic...``) or a foundation-model ARN stands for the
    model it names.
    """
    if not isinstance(body, Mapping):
        raise AskError(_MALFORMED)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise AskError(invalid("messages", "Member must not be null"), "messages")
    system = body.get("system") or []
    config = body.get("inferenceConfig") or {}
    if not isinstance(system, list) or not isinstance(config, Mapping):
        raise AskError(_MALFORMED)
    texts = [t for b in system if isinstance(b, Mapping) and isinstance(t := b.get("text"), str)]
    for index, message in enumerate(messages):
        texts += _message_texts(message, f"messages.{index}", first=index == 0)
    foundation = base_model(model or "")
    check_tool_turns(messages, foundation, configured=body.get("toolConfig") is not None)
    tools = read_tools(body, foundation, stream=stream)
    try:
        max_tokens = positive_int(config, "maxTokens")
    except AskError:
        rule = "Member must have value greater than or equal to 1"
        raise AskError(invalid("inferenceConfig.maxTokens", rule, config["maxTokens"])) from None
    return ChatAsk(
        model=foundation,
        prompt="\n".join(texts),
        stream=stream,
        max_tokens=max_tokens,
        stop=stop_list(config.get("stopSequences")),
        event_stream=False,
        tools=tools.tools,
        tool_choice=tools.choice,
        json_schema=tools.json_schema,
    )


def base_model(model: str) -> str:
    """The foundation model an inference profile or a foundation-model ARN names."""
    if model.startswith("arn:") and ":foundation-model/" in model:
        return model.rpartition("/")[2]
    geography, dot, rest = model.partition(".")
    return rest if dot and geography in _GEOGRAPHIES else model


def _message_texts(message: Any, where: str, *, first: bool) -> list[str]:
    role = message.get("role") if isinstance(message, Mapping) else None
    if role not in ("user", "assistant"):
        rule = "Member must satisfy enum value set: [user, assistant]"
        raise AskError(invalid(f"{where}.member.role", rule, role))
    if first and role != "user":
        raise AskError(
            "A conversation must start with a user message. Try again with a conversation "
            "that starts with a user message."
        )
    content = message.get("content")
    if not isinstance(content, list) or not content:
        raise AskError(invalid(f"{where}.member.content", "Member must not be null"))
    return [_block_text(block, f"{where}.content.{i}") for i, block in enumerate(content)]


def _block_text(block: Any, where: str) -> str:
    kinds = [k for k in _BLOCK_KINDS if isinstance(block, Mapping) and k in block]
    if len(kinds) != 1:
        raise AskError(f"The ContentBlock at {where} must set one of: {', '.join(_BLOCK_KINDS)}.")
    value = block[kinds[0]]
    if kinds[0] in ("toolUse", "toolResult"):
        return block_text(kinds[0], value, where)
    if kinds[0] == "text":
        if not isinstance(value, str) or not value.strip():
            raise AskError(
                f"The text field in the ContentBlock object at {where} is blank. Add text to "
                "the text field, and try again."
            )
        return value
    if kinds[0] == "cachePoint" and (
        not isinstance(value, Mapping) or value.get("type") != "default"
    ):
        rule = "Member must satisfy enum value set: [default]"
        raise AskError(invalid(f"{where}.cachePoint.type", rule))
    if kinds[0] == "image":
        _check_image(value, f"{where}.image")
    return ""


def _check_image(image: Any, where: str) -> None:
    image = image if isinstance(image, Mapping) else {}
    if image.get("format") not in ("png", "jpeg", "gif", "webp"):
        rule = "Member must satisfy enum value set: [png, jpeg, gif, webp]"
        raise AskError(invalid(f"{where}.format", rule, image.get("format")))
    source = image.get("source")
    data = source.get("bytes") if isinstance(source, Mapping) else None
    try:
        valid = isinstance(data, str) and bool(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise AskError(f"The image at {where} has no valid base64 source.bytes.")


def read_embed(body: Any) -> EmbedAsk:
    """Read a Cohere embed ``InvokeModel`` body; the model comes from the path."""
    if not isinstance(body, Mapping):
        raise AskError(_MALFORMED)
    texts = body.get("texts")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise AskError(invalid("texts", "Member must be a list of strings", texts))
    if len(texts) > MAX_EMBED_TEXTS:
        rule = f"Member must have length less than or equal to {MAX_EMBED_TEXTS}"
        raise AskError(invalid("texts", rule, len(texts)))
    if body.get("input_type") not in _EMBED_INPUT_TYPES:
        rule = f"Member must satisfy enum value set: [{', '.join(_EMBED_INPUT_TYPES)}]"
        raise AskError(invalid("input_type", rule, body.get("input_type")))
    dimension = body.get("output_dimension")
    if dimension is not None and dimension not in _EMBED_DIMENSIONS:
        rule = "Member must satisfy enum value set: [256, 512, 1024, 1536]"
        raise AskError(invalid("output_dimension", rule, dimension))
    return EmbedAsk(model="", texts=tuple(texts), dimensions=dimension)


def embed_answer(ask: EmbedAsk, vectors: tuple[tuple[float, ...], ...], input_tokens: int) -> Any:  # noqa: ARG001
    """Cohere's answer by type: ``{"id", "embeddings": {"float"}, "texts", "response_type"}``."""
    return {
        "id": str(uuid.uuid4()),
        "embeddings": {"float": [list(v) for v in vectors]},
        "texts": list(ask.texts),
        "response_type": "embeddings_by_type",
    }


def bad_request(error: AskError) -> Reply:
    """400 ``ValidationException``."""
    return error_reply("ValidationException", error.message)


def unknown_model(model: str) -> Reply:  # noqa: ARG001
    """400 ``ValidationException``: the model identifier is invalid."""
    return error_reply("ValidationException", "The provided model identifier is invalid.")


def unknown_path(method: str, path: str) -> Reply:
    """404 ``UnknownOperationException``."""
    return Reply(
        404, {"message": f"Unknown operation: {method} {path}"}, _type("UnknownOperationException")
    )


def failure(fail: Fail, model: str) -> Reply:  # noqa: ARG001
    """The exception Bedrock answers ``fail.status`` with (``fail.code`` names another)."""
    name = (
        _exception_name(fail.code)
        if fail.code
        else _BY_STATUS.get(fail.status, "InternalServerException")
    )
    reply = error_reply(name, fail.message, fail.status)
    if fail.retry_after_s is not None:
        return Reply(
            reply.status,
            reply.body,
            {**reply.headers, "retry-after": str(max(1, round(fail.retry_after_s)))},
        )
    return reply


def rate_limited(model: str, limit: int, wait_s: float) -> Reply:  # noqa: ARG001
    """429 ``ThrottlingException``, with no hint of how long to wait."""
    return error_reply("ThrottlingException")


def limit_headers(requests: BudgetState, tokens: BudgetState) -> dict[str, str]:  # noqa: ARG001
    """Bedrock sends no rate-limit headers."""
    return {}


def id_headers() -> dict[str, str]:
    """``x-amzn-RequestId``."""
    return {"x-amzn-RequestId": str(uuid.uuid4())}


def answer(completion: Completion, model: str) -> Any:  # noqa: ARG001
    """A ``ConverseResponse``: the text, then a ``toolUse`` block per call."""
    return {
        "output": {"message": {"role": "assistant", "content": _content(completion)}},
        "stopReason": _stop_reason(completion),
        "usage": _usage(completion),
        "metrics": {"latencyMs": 312},
    }


def _content(completion: Completion) -> list[dict[str, Any]]:
    """A refusal has no content (Converse has no refusal; its answer is a filtered one)."""
    if completion.refusal:
        return []
    calls = completion.tool_calls
    blocks = [{"text": completion.text}] if completion.text or not calls else []
    uses = [{"toolUseId": c.id, "name": c.name, "input": dict(c.arguments)} for c in calls]
    return blocks + [{"toolUse": use} for use in uses]


def stream(completion: Completion, ask: ChatAsk) -> StreamPlan:  # noqa: ARG001
    """Event-stream messages: start, content blocks, stop, metadata.

    Text comes as one ``contentBlockDelta`` per word (a text block has no
    ``contentBlockStart``); each call as a ``contentBlockStart`` naming it
    (``start.toolUse``) and its input in fragments (``delta.toolUse.input``); each block
    ends with ``contentBlockStop``. The last block's stop opens the tail.
    """
    head = (event_message("messageStart", {"role": "assistant"}),)
    body = _block_frames(completion)
    tail = (
        *body[-1:],
        event_message("messageStop", {"stopReason": _stop_reason(completion)}),
        event_message("metadata", {"usage": _usage(completion), "metrics": {"latencyMs": 312}}),
    )
    thinking = {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Hmm. "}}}
    idle = event_message("contentBlockDelta", thinking)
    return StreamPlan(head, tuple(body[:-1]), tail, EVENT_STREAM, idle)


def _block_frames(completion: Completion) -> list[bytes]:
    frames: list[bytes] = []
    calls = completion.tool_calls
    first = 0
    if not completion.refusal and (completion.text or not calls):
        frames += [_delta(0, {"text": piece}) for piece in split_text(completion.text)]
        frames.append(event_message("contentBlockStop", {"contentBlockIndex": 0}))
        first = 1
    for index, call in enumerate(calls, start=first):
        start = {"toolUse": {"toolUseId": call.id, "name": call.name}}
        frames.append(
            event_message("contentBlockStart", {"contentBlockIndex": index, "start": start})
        )
        text = json.dumps(dict(call.arguments))
        frames += [
            _delta(index, {"toolUse": {"input": text[i : i + _FRAGMENT]}})
            for i in range(0, len(text), _FRAGMENT)
        ]
        frames.append(event_message("contentBlockStop", {"contentBlockIndex": index}))
    return frames


def _delta(index: int, delta: Mapping[str, Any]) -> bytes:
    return event_message("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})


def stream_error(error: StreamError) -> bytes | None:
    """An exception message: ``throttlingException`` unless ``error.code`` names another."""
    name = _exception_name(error.code or "ThrottlingException")
    message = error.message or _EXCEPTIONS.get(name, (500, "An error occurred."))[1]
    stream_name = name[:1].lower() + name[1:]
    return encode_message(
        {
            ":exception-type": stream_name,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps({"message": message}).encode(),
    )


def stream_error_failure(error: StreamError) -> Fail:
    """The same exception as a plain error response."""
    name = _exception_name(error.code or "ThrottlingException")
    return Fail(_EXCEPTIONS.get(name, (500, ""))[0], code=name, message=error.message)


def model_list(models: tuple[str, ...]) -> Any:
    """``GET /foundation-models``: a ``ListFoundationModels`` answer."""
    return {"modelSummaries": [_summary(m) for m in models]}


def model_info(model: str) -> Any:
    """``GET /foundation-models/{model}``: a ``GetFoundationModel`` answer."""
    return {"modelDetails": _summary(model)}


def event_message(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """One ``:message-type: event`` message, its JSON padded with ``p`` as Bedrock's is."""
    padded = {**payload, "p": _PADDING[: 1 + len(json.dumps(payload)) % len(_PADDING)]}
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, json.dumps(padded, separators=(",", ":")).encode())


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """Encode one event-stream message with string headers and both CRC32 checksums."""
    encoded = b"".join(_string_header(name, value) for name, value in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _string_header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack(">B", len(raw_name))
        + raw_name
        + b"\x07"
        + struct.pack(">H", len(raw_value))
        + raw_value
    )


def _exception_name(code: str) -> str:
    name = code[:1].upper() + code[1:]
    return name if name in _EXCEPTIONS or name.endswith("Exception") else "InternalServerException"


def _stop_reason(completion: Completion) -> str:
    if completion.finish:
        return completion.finish
    if completion.refusal:
        return "content_filtered"
    return "tool_use" if completion.tool_calls else _STOP_REASONS[completion.ending]


def _usage(completion: Completion) -> dict[str, int]:
    cached, written = completion.cached_tokens, completion.cache_write_tokens
    fresh = completion.input_tokens - cached - written
    usage = {
        "inputTokens": fresh,
        "outputTokens": completion.output_tokens,
        "totalTokens": completion.input_tokens + completion.output_tokens,
    }
    if cached or written:
        usage |= {"cacheReadInputTokens": cached, "cacheWriteInputTokens": written}
    return usage


def _summary(model: str) -> dict[str, Any]:
    provider = model.partition(".")[0]
    embedding = ".embed" in model
    return {
        "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{model}",
        "modelId": model,
        "modelName": model.partition(".")[2].rpartition("-v")[0] or model,
        "providerName": provider.capitalize(),
        "inputModalities": ["TEXT"] if embedding else ["TEXT", "IMAGE"],
        "outputModalities": ["EMBEDDING"] if embedding else ["TEXT"],
        "responseStreamingSupported": not embedding,
        "customizationsSupported": [],
        "inferenceTypesSupported": ["ON_DEMAND"],
        "modelLifecycle": {"status": "ACTIVE"},
    }


class FakeBedrock(FakeProvider):
    """A fake Bedrock runtime and control plane on one port.

    Serves ``POST /model/{modelId}/converse`` and ``/converse-stream`` (answers as binary
    AWS event-stream messages), ``/invoke`` for Cohere embed models, and
    ``GET /foundation-models[/{modelId}]``; ``base_url``
    has no version path, as ``https://bedrock-runtime.{region}.amazonaws.com`` has none.
    Every request needs an ``Authorization`` header: a SigV4 signature scoped to
    ``bedrock``, whose access key id is checked against ``keys``, or a Bedrock API key as
    ``Bearer``. ``secrets`` maps access key ids to their secret access keys: a request
    signed with one of them has its signature verified as AWS does (it needs botocore),
    and one that does not match is refused with 403 ``InvalidSignatureException``. An
    inference profile id (``us.<model>``) reaches ``<model>``. There are no rate-limit
    headers, and errors carry their exception name in ``x-amzn-ErrorType``. Models take
    tools as Bedrock's do (`runtime.testing._bedrock_tools.tool_support`): Claude and Nova
    all of it, Llama none while streaming, DeepSeek-R1 none at all; Claude Sonnet 4.5 is
    the model with native structured output.
    """

    wire: ClassVar[Wire] = wire_of(__name__)

    def __init__(self, *, secrets: Mapping[str, str] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.secrets: dict[str, str] = dict(secrets or {})

    async def _perform(
        self, request: web.Request, ask: ChatAsk, behaviour: Behaviour, headers: dict[str, str]
    ) -> web.StreamResponse:
        """Answer as a Bedrock model does (`model_answer`: its call ids, its forced calls)."""
        if isinstance(behaviour, Answer):
            behaviour = model_answer(ask, behaviour)
        return await super()._perform(request, ask, behaviour, headers)

    async def _dispatch(self, action: Action, request: web.Request) -> web.StreamResponse:
        """Verify the signature of a request signed with a known secret, then answer it."""
        if self.secrets:
            body = await request.read()
            url = f"http://{request.headers.get('Host', request.host)}{request.raw_path}"
            matches = signature_matches(
                request.method, url, request.headers, body, secrets=self.secrets
            )
            if matches is False:
                return _json(signature_mismatch())
        return await super()._dispatch(action, request)
