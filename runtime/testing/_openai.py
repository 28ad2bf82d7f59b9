"""The OpenAI Chat Completions wire format, as the fake server writes it (pure functions).

Documented shapes: ``chat.completion`` and ``chat.completion.chunk`` objects, the final
usage chunk with empty ``choices`` (``stream_options.include_usage``), ``data: [DONE]``,
content parts (``text``, and ``image_url`` with an ``http(s):`` or base64 ``data:`` URL),
the embeddings ``list`` (vectors as floats or, with ``encoding_format: "base64"``,
little-endian float32 in base64), error bodies ``{"error": {"message", "type", "param",
"code"}}`` and the ``x-ratelimit-*`` headers with Go-style durations.

Each public function has the signature `runtime.testing._wire.Wire` asks for, so some
ignore arguments other protocols need.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from runtime.testing._budget import BudgetState, go_duration, whole_seconds
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
    EmbedAsk,
    Reply,
    Route,
    StreamPlan,
    Wire,
    sse_frame,
    wire_of,
)

NAME: str = "openai"
API_ROOT: str = "/v1"
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/chat/completions", Action.CHAT),
    Route("POST", "/v1/embeddings", Action.EMBED),
    Route("GET", "/v1/models", Action.LIST_MODELS),
    Route("GET", "/v1/models/{model}", Action.GET_MODEL),
)
MODELS: tuple[str, ...] = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-5",
    "gpt-5-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)
REQUESTS_PER_MINUTE: int = 5_000
TOKENS_PER_MINUTE: int = 2_000_000

_FINISH = {Ending.NATURAL: "stop", Ending.STOP_SEQUENCE: "stop", Ending.LENGTH: "length"}
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field "
    "(with blank username) if you're accessing the API from your browser and are prompted for "
    "a username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported.",
    ),
    404: ("invalid_request_error", None, "The requested resource was not found."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}
_PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
_IMAGE_URL_HINT = (
    "Expected a base64-encoded data URL with an image MIME type "
    "(e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got "
)
_BAD_INPUT = (
    "'$.input' is invalid. Please check the API reference: "
    "https://platform.openai.com/docs/api-reference."
)
_INSUFFICIENT_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:  # noqa: ARG001
    """The key of an ``Authorization: Bearer`` header."""
    scheme, _, key = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


def mask_key(key: str) -> str:
    """Mask a key as OpenAI's 401 message does: first 8 and last 4 characters shown."""
    if len(key) <= 12:  # noqa: PLR2004 - too short to show both ends
        return key[: len(key) // 2] + "*" * (len(key) - len(key) // 2)
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


def error_body(message: str, kind: str, code: str | None, param: str | None = None) -> Any:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def auth_error(presented: str | None) -> Reply:
    """401: no key, or an incorrect (or revoked) one."""
    if presented is None:
        return Reply(401, error_body(_NO_KEY, "invalid_request_error", None))
    message = (
        f"Incorrect API key provided: {mask_key(presented)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    return Reply(401, error_body(message, "invalid_request_error", "invalid_api_key"))


def header_error(headers: Mapping[str, str]) -> Reply | None:  # noqa: ARG001
    """OpenAI requires no header but the key."""
    return None


def read_ask(
    body: Any,
    *,
    model: str | None,  # noqa: ARG001 - OpenAI has the model in the body
    stream: bool,  # noqa: ARG001 - ...and says in the body whether to stream
    query: Mapping[str, str],  # noqa: ARG001
) -> ChatAsk:
    """Read a ``POST /v1/chat/completions`` body."""
    if not isinstance(body, Mapping):
        raise AskError("We could not parse the JSON body of your request.")
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise AskError("you must provide a model parameter")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise AskError("Missing required parameter: 'messages'.", "messages")
    for i, message in enumerate(messages):
        if isinstance(message, Mapping):
            _check_parts(message.get("content"), f"messages[{i}]")
    check_tool_turns(messages)
    tools = read_tools(body.get("tools"))
    choice = read_tool_choice(body.get("tool_choice"), tools)
    schema = _read_response_format(body.get("response_format"))
    prompt = "\n".join(
        text for m in messages if isinstance(m, Mapping) for text in texts_of(m.get("content"))
    )
    max_tokens = positive_int(body, "max_completion_tokens") or positive_int(body, "max_tokens")
    options = body.get("stream_options")
    if options is not None and body.get("stream") is not True:
        message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        raise AskError(message, "stream_options")
    return ChatAsk(
        model=name,
        prompt=prompt,
        stream=body.get("stream") is True,
        max_tokens=max_tokens,
        stop=stop_list(body.get("stop")),
        include_usage=isinstance(options, Mapping) and options.get("include_usage") is True,
        tools=tools,
        tool_choice=choice,
        json_schema=schema,
    )


def check_tool_turns(messages: list[Any]) -> None:
    """Refuse tool turns as OpenAI does (shared by Azure).

    A tool message must answer a call of the assistant message just before it, and every
    call of an assistant message must be answered before the next other message.
    """
    pending: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, Mapping) else None
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                raise AskError(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            pending.discard(call_id)
            continue
        if pending:
            ids = ", ".join(sorted(pending))
            raise AskError(
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {ids}",
                f"messages.[{i}].role",
            )
        calls = message.get("tool_calls") if role == "assistant" else None
        pending = (
            {str(as_mapping(c).get("id")) for c in calls} if isinstance(calls, list) else set()
        )


def read_tools(value: Any) -> tuple[str, ...]:
    """Read ``tools`` (``[{"type": "function", "function": {"name", "parameters"}}]``)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise AskError("Invalid type for 'tools': expected an array.", "tools")
    names = []
    for i, tool in enumerate(value):
        function = as_mapping(as_mapping(tool).get("function"))
        name = function.get("name")
        if as_mapping(tool).get("type") != "function" or not isinstance(name, str):
            raise AskError(f"Missing required parameter: 'tools[{i}].function'.", f"tools[{i}]")
        if not _TOOL_NAME.fullmatch(name):
            raise AskError(
                f"Invalid 'tools[{i}].function.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"tools[{i}].function.name",
                "invalid_value",
            )
        parameters = function.get("parameters", {})
        if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
            raise AskError(
                f"Invalid schema for function '{name}': schema must be a JSON Schema of "
                "'type: \"object\"'.",
                f"tools[{i}].function.parameters",
                "invalid_function_parameters",
            )
        names.append(name)
    return tuple(names)


def read_tool_choice(value: Any, tools: tuple[str, ...]) -> str | None:
    """Read ``tool_choice``: a mode, or ``{"type": "function", "function": {"name"}}``."""
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        if not tools:
            raise AskError(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
                "are specified.",
                "tool_choice",
            )
        return str(value)
    name = as_mapping(as_mapping(value).get("function")).get("name")
    if not isinstance(name, str) or name not in tools:
        raise AskError(
            f"Invalid value for 'tool_choice': no function named '{name}' was specified in "
            "the 'tools' parameter.",
            "tool_choice",
        )
    return name


def _read_response_format(value: Any) -> bool:
    if value is None:
        return False
    kind = as_mapping(value).get("type")
    if kind == "json_schema":
        spec = as_mapping(as_mapping(value).get("json_schema"))
        if not isinstance(spec.get("name"), str) or not isinstance(spec.get("schema"), Mapping):
            raise AskError(
                "Missing required parameter: 'response_format.json_schema.name'.",
                "response_format.json_schema",
            )
        return True
    if kind in ("json_object", "text"):
        return bool(kind == "json_object")
    raise AskError(f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', "
                   "and 'json_schema'.", "response_format.type", "invalid_value")  # fmt: skip


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def _check_parts(content: Any, where: str) -> None:
    """Refuse content parts the real API refuses: unknown types, text without text, bad images."""
    if not isinstance(content, list):
        return
    for j, part in enumerate(content):
        here = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind not in _PART_TYPES:
            supported = ", ".join(f"'{t}'" for t in _PART_TYPES[:-1])
            last = _PART_TYPES[-1]
            message = f"Invalid value: '{kind}'. Supported values are: {supported}, and '{last}'."
            raise AskError(message, f"{here}.type", "invalid_value")
        if kind == "text" and not isinstance(part.get("text"), str):
            raise AskError(f"Missing required parameter: '{here}.text'.", f"{here}.text")
        if kind == "image_url":
            _check_image_url(part.get("image_url"), f"{here}.image_url")


def _check_image_url(image: Any, where: str) -> None:
    param = f"{where}.url"
    url = image.get("url") if isinstance(image, Mapping) else None
    if not isinstance(url, str):
        raise AskError(f"Missing required parameter: '{param}'.", param)
    if url.startswith(("https://", "http://")):
        return
    problem = _data_url_problem(url)
    if problem:
        message = f"Invalid image URL: '{param}'. {_IMAGE_URL_HINT}{problem}"
        raise AskError(message, param, "invalid_value")


def _data_url_problem(url: str) -> str | None:
    if not url.startswith("data:"):
        return "a value without the 'data:' prefix."
    head, _, data = url.removeprefix("data:").partition(",")
    media_type, _, encoding = head.partition(";")
    if not media_type.startswith("image/"):
        return f"unsupported MIME type '{media_type}'."
    if encoding != "base64" or not data:
        return "empty base64-encoded bytes."
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return "invalid base64-encoded bytes."
    return None


def bad_request(error: AskError) -> Reply:
    """400 ``invalid_request_error``."""
    code = error.code
    if code is None and error.message.startswith("Missing"):
        code = "missing_required_parameter"
    return Reply(400, error_body(error.message, "invalid_request_error", code, error.param))


def read_embed(body: Any) -> EmbedAsk:
    """Read a ``POST /v1/embeddings`` body: ``input`` is a string or a list of strings."""
    if not isinstance(body, Mapping):
        raise AskError("We could not parse the JSON body of your request.")
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise AskError("you must provide a model parameter")
    given = body.get("input")
    texts = (given,) if isinstance(given, str) else tuple(given or ())
    if not texts or not all(isinstance(t, str) and t for t in texts):
        raise AskError(_BAD_INPUT)
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        message = f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'."
        raise AskError(message, "encoding_format", "invalid_value")
    return EmbedAsk(name, texts, positive_int(body, "dimensions"), encoding)


def embed_answer(ask: EmbedAsk, vectors: tuple[tuple[float, ...], ...], input_tokens: int) -> Any:
    """An embeddings ``list``: one ``embedding`` object per input, with its ``index``."""
    data = [
        {"object": "embedding", "index": i, "embedding": _encoded(vector, ask.encoding)}
        for i, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": input_tokens, "total_tokens": input_tokens}
    return {"object": "list", "data": data, "model": ask.model, "usage": usage}


def _encoded(vector: tuple[float, ...], encoding: str) -> Any:
    if encoding != "base64":
        return list(vector)
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def unknown_model(model: str) -> Reply:
    """404 ``model_not_found``."""
    message = f"The model `{model}` does not exist or you do not have access to it."
    return Reply(404, error_body(message, "invalid_request_error", "model_not_found"))


def unknown_path(method: str, path: str) -> Reply:
    """404 ``Invalid URL``."""
    return Reply(404, error_body(f"Invalid URL ({method} {path})", "invalid_request_error", None))


def failure(fail: Fail, model: str) -> Reply:  # noqa: ARG001
    """The error body OpenAI sends with ``fail.status``."""
    code: str | None
    if fail.code == "insufficient_quota":
        kind, code, message = "insufficient_quota", "insufficient_quota", _INSUFFICIENT_QUOTA
    else:
        kind, code, message = _ERRORS.get(fail.status, ("server_error", None, "Unexpected error."))
        code = fail.code or code
    headers = {}
    if fail.retry_after_s is not None:
        headers["retry-after"] = str(whole_seconds(fail.retry_after_s))
    return Reply(fail.status, error_body(fail.message or message, kind, code), headers)


def rate_limited(model: str, limit: int, wait_s: float) -> Reply:
    """429 ``rate_limit_exceeded`` for the requests-per-minute limit."""
    message = (
        f"Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
        f"Limit {limit}, Used {limit}, Requested 1. Please try again in {go_duration(wait_s)}. "
        "Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    headers = {"retry-after": str(whole_seconds(wait_s))}
    return Reply(429, error_body(message, "requests", "rate_limit_exceeded"), headers)


def limit_headers(requests: BudgetState, tokens: BudgetState) -> dict[str, str]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``."""
    return {
        "x-ratelimit-limit-requests": str(requests.limit),
        "x-ratelimit-limit-tokens": str(tokens.limit),
        "x-ratelimit-remaining-requests": str(requests.remaining),
        "x-ratelimit-remaining-tokens": str(tokens.remaining),
        "x-ratelimit-reset-requests": go_duration(requests.reset_s),
        "x-ratelimit-reset-tokens": go_duration(tokens.reset_s),
    }


def id_headers() -> dict[str, str]:
    """``x-request-id``."""
    return {"x-request-id": random_id("req_", 32, "0123456789abcdef")}


def answer(completion: Completion, model: str) -> Any:
    """A ``chat.completion`` object (with ``tool_calls`` when the model calls tools)."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if completion.refusal else completion.text or None,
        "refusal": completion.refusal,
        "annotations": [],
    }
    if completion.tool_calls:
        message["tool_calls"] = [_tool_call(call) for call in completion.tool_calls]
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": _finish(completion),
    }
    return {**_envelope("chat.completion", model), "choices": [choice], "usage": _usage(completion)}


def stream(completion: Completion, ask: ChatAsk) -> StreamPlan:
    """``chat.completion.chunk`` events: role, text deltas, finish, usage, ``[DONE]``."""
    envelope = _envelope("chat.completion.chunk", ask.model)
    extra = {"usage": None} if ask.include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse_frame({**envelope, "choices": [choice], **extra})

    head = (chunk({"role": "assistant", "content": "", "refusal": None}),)
    pieces: list[dict[str, Any]]
    if completion.refusal:
        pieces = [{"refusal": piece} for piece in split_text(completion.refusal)]
    else:
        pieces = [{"content": piece} for piece in split_text(completion.text)]
    pieces += [{"tool_calls": [piece]} for piece in tool_call_pieces(completion.tool_calls)]
    body = tuple(chunk(delta) for delta in pieces)
    tail = [chunk({}, _finish(completion))]
    if ask.include_usage:
        tail.append(sse_frame({**envelope, "choices": [], "usage": _usage(completion)}))
    tail.append(sse_frame("[DONE]"))
    return StreamPlan(head, body, tuple(tail), idle=chunk({}))


def _tool_call(call: ToolUse) -> dict[str, Any]:
    arguments = json.dumps(dict(call.arguments))
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def tool_call_pieces(calls: tuple[ToolUse, ...]) -> list[dict[str, Any]]:
    """Each call streamed as OpenAI does: id and name first, then its arguments in fragments."""
    pieces: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        first = {"index": index, "id": call.id, "type": "function"}
        pieces.append({**first, "function": {"name": call.name, "arguments": ""}})
        text = json.dumps(dict(call.arguments))
        pieces += [
            {"index": index, "function": {"arguments": text[i : i + 8]}}
            for i in range(0, len(text), 8)
        ]
    return pieces


def stream_error(error: StreamError) -> bytes | None:
    """``data: {"error": ...}``, as OpenAI reports a failure mid-stream."""
    message = error.message or "The server had an error while processing your request."
    return sse_frame(error_body(message, "server_error", error.code))


def stream_error_failure(error: StreamError) -> Fail:
    """A 500 ``server_error``."""
    return Fail(500, code=error.code, message=error.message)


def model_list(models: tuple[str, ...]) -> Any:
    """``GET /v1/models``."""
    return {"object": "list", "data": [model_info(m) for m in models]}


def model_info(model: str) -> Any:
    """``GET /v1/models/{model}``."""
    return {"id": model, "object": "model", "created": 1_715_367_049, "owned_by": "system"}


def _envelope(kind: str, model: str) -> dict[str, Any]:
    return {
        "id": random_id("chatcmpl-", 29),
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": random_id("fp_", 10, "0123456789abcdef"),
    }


def _finish(completion: Completion) -> str:
    if completion.tool_calls and not completion.finish:
        return "tool_calls"
    return completion.finish or _FINISH[completion.ending]


def _usage(completion: Completion) -> dict[str, Any]:
    return {
        "prompt_tokens": completion.input_tokens,
        "completion_tokens": completion.output_tokens,
        "total_tokens": completion.input_tokens + completion.output_tokens,
        "prompt_tokens_details": {"cached_tokens": completion.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class FakeOpenAI(FakeProvider):
    """A fake OpenAI Chat Completions API: ``POST /v1/chat/completions``, ``GET /v1/models``.

    Keys go in ``Authorization: Bearer``; answers carry ``x-ratelimit-*`` headers.
    """

    wire: ClassVar[Wire] = wire_of(__name__)
