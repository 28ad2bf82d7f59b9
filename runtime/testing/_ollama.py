"""Ollama's native API wire format, as the fake server writes it (pure functions).

Documented shapes: ``POST /api/chat`` (``stream`` defaults to true; ``options`` with
``num_predict``, ``stop``; base64 ``images``), its answer with ``done``, ``done_reason``,
the durations in nanoseconds, ``prompt_eval_count`` and ``eval_count``; the stream of
``application/x-ndjson`` lines ending with the one that has ``done: true``; errors
``{"error": "..."}`` under the HTTP status, or as a line mid-stream; ``GET /api/tags``
and ``POST /api/embed``. A model named without a tag is ``name:latest``. A local Ollama
asks for no key; this fake, given ``keys``, answers as Ollama behind an authenticating
proxy (or ollama.com) does: 401 ``{"error": "unauthorized"}``. Ollama sends no rate-limit
or request-id headers. Unknown paths get ``404 page not found`` (as JSON here: the real
server sends it as plain text).

Tools (``docs/api.md``, ``docs/openapi.yaml`` and ``docs/capabilities/tool-calling.mdx``
of ollama/ollama): ``tools`` of ``{"type": "function", "function": {name, description,
parameters}}``; a model whose template has no tool support refuses them with 400
``registry.ollama.ai/library/<model> does not support tools`` (quoted in ollama/ollama
#14795; here the ``gemma3`` family); call arguments sent back as anything but an object
get Go's unmarshal error (``api.ToolCallFunctionArguments``); ``format`` is ``"json"`` or
a JSON schema, anything else 400 ``invalid format: expected "json" or a valid JSON
schema``. Ollama has no ``tool_choice`` and pairs results with calls by name, so the fake
checks no pairing. Calls are answered as ``message.tool_calls`` of ``{"function":
{"name", "arguments": {...}}}`` without ids (``index`` when not 0, as Go's ``omitempty``
writes it), ``done_reason: "stop"``; streamed, as ollama/ollama#12557 shows: one line per
call holding it whole (``done: false``, content ``""``), then the final line. Ollama has
no refusal field: a scripted refusal is answered as the model's text.

Each public function has the signature `runtime.testing._wire.EmbedWire` asks for, so some
ignore arguments other protocols need.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import string
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from runtime.testing._budget import BudgetState, whole_seconds
from runtime.testing._completion import (
    AskError,
    ChatAsk,
    Completion,
    Ending,
    split_text,
    stop_list,
    texts_of,
)
from runtime.testing._provider import FakeProvider
from runtime.testing._script import Fail, StreamError, ToolUse
from runtime.testing._wire import (
    Action,
    EmbedAsk,
    EmbedWire,
    Reply,
    Route,
    StreamPlan,
    wire_of,
)

NAME: str = "ollama"
API_ROOT: str = ""
ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/chat", Action.CHAT),
    Route("GET", "/api/tags", Action.LIST_MODELS),
    Route("POST", "/api/embed", Action.EMBED),
)
MODELS: tuple[str, ...] = (
    "llama3.2:latest",
    "qwen3:8b",
    "gemma3:4b",
    "mistral:latest",
    "nomic-embed-text:latest",
    "embeddinggemma:latest",
)
REQUESTS_PER_MINUTE: int = 10_000
TOKENS_PER_MINUTE: int = 10_000_000
CONTENT_TYPE = "application/x-ndjson"

_DONE_REASON = {Ending.NATURAL: "stop", Ending.STOP_SEQUENCE: "stop", Ending.LENGTH: "length"}
_ERRORS: dict[int, str] = {
    400: "missing request body",
    401: "unauthorized",
    403: "forbidden",
    429: "too many requests",
    500: "the model failed to generate a response",
    502: "the cloud model could not be reached",
    503: "server busy, please try again.  maximum pending requests exceeded",
}
_STREAM_ERROR = "an error was encountered while running the model"
_NANOS_PER_TOKEN = 20_000_000
_BASE64 = frozenset(string.ascii_letters + string.digits + "+/=")
_NO_TOOLS = ("gemma3",)
"""Model families whose template takes no tools."""


def tagged(model: str) -> str:
    """``model`` with its tag: a name without one means ``name:latest``."""
    return model if ":" in model.rsplit("/", 1)[-1] else f"{model}:latest"


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:  # noqa: ARG001
    """The key of an ``Authorization: Bearer`` header."""
    scheme, _, key = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


def error_body(message: str) -> Any:
    """Ollama's error envelope."""
    return {"error": message}


def auth_error(presented: str | None) -> Reply:  # noqa: ARG001
    """401 ``unauthorized``, with or without a key."""
    return Reply(401, error_body("unauthorized"))


def header_error(headers: Mapping[str, str]) -> Reply | None:  # noqa: ARG001
    """Ollama requires no header."""
    return None


def read_ask(
    body: Any,
    *,
    model: str | None,  # noqa: ARG001 - Ollama has the model in the body
    stream: bool,  # noqa: ARG001 - ...and says in the body whether to stream
    query: Mapping[str, str],  # noqa: ARG001
) -> ChatAsk:
    """Read a ``POST /api/chat`` body; ``stream`` defaults to true, as Ollama's does."""
    if not isinstance(body, Mapping):
        raise AskError("missing request body")
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise AskError("model is required")
    messages = body.get("messages", [])
    if not isinstance(messages, list):
        raise AskError(_unmarshal_error("ChatRequest.messages", "[]api.Message", messages))
    prompt: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping):
            raise AskError(_unmarshal_error("ChatRequest.messages", "api.Message", message))
        prompt.extend(texts_of(message.get("content")))
        prompt.extend(_call_texts(message.get("tool_calls")))
        _check_images(message.get("images"))
    options = body.get("options")
    options = options if isinstance(options, Mapping) else {}
    limit = options.get("num_predict")
    return ChatAsk(
        model=tagged(name),
        prompt="\n".join(prompt),
        stream=body.get("stream", True) is not False,
        max_tokens=limit if isinstance(limit, int) and limit > 0 else None,
        stop=stop_list(options.get("stop")),
        event_stream=False,
        tools=_read_tools(body.get("tools"), tagged(name)),
        json_schema=_read_format(body.get("format")),
    )


def _call_texts(calls: Any) -> list[str]:
    """The arguments of an assistant turn's calls, as text (they count as input)."""
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise AskError(_unmarshal_error("Message.messages.tool_calls", "[]api.ToolCall", calls))
    texts = []
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        arguments = function.get("arguments", {}) if isinstance(function, Mapping) else {}
        if not isinstance(arguments, Mapping):
            field = "ToolCallFunction.messages.tool_calls.function.arguments"
            raise AskError(_unmarshal_error(field, "api.ToolCallFunctionArguments", arguments))
        texts.append(json.dumps(arguments))
    return texts


def _read_tools(tools: Any, model: str) -> tuple[str, ...]:
    """The names of ``tools``; a model without tool support refuses them."""
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise AskError(_unmarshal_error("ChatRequest.tools", "api.Tools", tools))
    if tools and model.split(":", 1)[0].rsplit("/", 1)[-1].startswith(_NO_TOOLS):
        raise AskError(f"registry.ollama.ai/library/{model} does not support tools")
    names = []
    for tool in tools:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if name is not None and not isinstance(name, str):
            raise AskError(_unmarshal_error("ToolFunction.tools.function.name", "string", name))
        names.append(name or "")
    return tuple(names)


def _read_format(value: Any) -> bool:
    """Whether JSON was asked for: ``format`` is ``"json"`` or a JSON schema object."""
    if value is None or value == "":
        return False
    if value == "json" or isinstance(value, Mapping):
        return True
    raise AskError('invalid format: expected "json" or a valid JSON schema')


def _check_images(images: Any) -> None:
    if images is None:
        return
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise AskError(_unmarshal_error("Message.messages.images", "[]api.ImageData", images))
    for image in images:
        bad = next((i for i, char in enumerate(image) if char not in _BASE64), None)
        if bad is not None:
            raise AskError(f"illegal base64 data at input byte {bad}")
        try:
            binascii.a2b_base64(image, strict_mode=True)
        except binascii.Error:
            raise AskError(f"illegal base64 data at input byte {len(image)}") from None


def _unmarshal_error(field: str, go_type: str, value: Any) -> str:
    """Go's error for a JSON value of the wrong type.

    ``field`` is the innermost struct's name, then the path from the body
    (``Message.messages.images``), as Go's decoder writes it.
    """
    kind = {str: "string", int: "number", float: "number", bool: "bool", dict: "object"}
    found = "null" if value is None else kind.get(type(value), "array")
    return f"json: cannot unmarshal {found} into Go struct field {field} of type {go_type}"


def bad_request(error: AskError) -> Reply:
    """400 with the reason."""
    return Reply(400, error_body(error.message))


def unknown_model(model: str) -> Reply:
    """404: the server has not pulled the model."""
    return Reply(404, error_body(f'model "{model}" not found, try pulling it first'))


def unknown_path(method: str, path: str) -> Reply:  # noqa: ARG001
    """404 ``404 page not found``."""
    return Reply(404, error_body("404 page not found"))


def failure(fail: Fail, model: str) -> Reply:
    """The error Ollama answers with ``fail.status``."""
    if fail.status == 404:  # noqa: PLR2004
        message = f'model "{model}" not found, try pulling it first'
    else:
        message = _ERRORS.get(fail.status, "internal server error")
    headers = {}
    if fail.retry_after_s is not None:
        headers["retry-after"] = str(whole_seconds(fail.retry_after_s))
    return Reply(fail.status, error_body(fail.message or message), headers)


def rate_limited(model: str, limit: int, wait_s: float) -> Reply:  # noqa: ARG001
    """429, as ollama.com answers past its limits."""
    headers = {"retry-after": str(whole_seconds(wait_s))}
    return Reply(429, error_body(_ERRORS[429]), headers)


def limit_headers(requests: BudgetState, tokens: BudgetState) -> dict[str, str]:  # noqa: ARG001
    """Ollama sends no rate-limit headers."""
    return {}


def id_headers() -> dict[str, str]:
    """Ollama sends no request-id header."""
    return {}


def answer(completion: Completion, model: str) -> Any:
    """A finished chat response, with the calls whole in ``message.tool_calls``."""
    final = _final(completion, model, _text(completion))
    if completion.tool_calls:
        final["message"]["tool_calls"] = [
            _tool_call(index, call) for index, call in enumerate(completion.tool_calls)
        ]
    return final


def stream(completion: Completion, ask: ChatAsk) -> StreamPlan:
    """One NDJSON line per piece of text, one per whole call (``done: false``), the final line."""
    lines = [{**_head(ask.model, piece), "done": False} for piece in split_text(_text(completion))]
    for index, call in enumerate(completion.tool_calls):
        line = {**_head(ask.model, ""), "done": False}
        line["message"]["tool_calls"] = [_tool_call(index, call)]
        lines.append(line)
    tail = (_line(_final(completion, ask.model, "")),)
    thinking = {"role": "assistant", "content": "", "thinking": "Hmm. "}
    idle = _line({**_head(ask.model, ""), "message": thinking, "done": False})
    return StreamPlan((), tuple(_line(line) for line in lines), tail, CONTENT_TYPE, idle)


def _tool_call(index: int, call: ToolUse) -> dict[str, Any]:
    """A call as Ollama writes it: no id, ``index`` left out when 0 (Go's ``omitempty``)."""
    function: dict[str, Any] = {"name": call.name, "arguments": dict(call.arguments)}
    if index:
        function = {"index": index, **function}
    return {"function": function}


def _text(completion: Completion) -> str:
    """The answer's text: a scripted refusal is what the model says (Ollama has no field)."""
    return completion.refusal or completion.text


def stream_error(error: StreamError) -> bytes | None:
    """An ``{"error": ...}`` line; the status already sent stays 200."""
    return _line(error_body(error.message or _STREAM_ERROR))


def stream_error_failure(error: StreamError) -> Fail:
    """A 500 with the same message."""
    return Fail(500, code=error.code, message=error.message or _STREAM_ERROR)


def model_list(models: tuple[str, ...]) -> Any:
    """``GET /api/tags``: every model the server has pulled."""
    return {"models": [model_info(m) for m in models]}


def model_info(model: str) -> Any:
    """One entry of ``/api/tags``."""
    family = model.split(":", 1)[0].rsplit("/", maxsplit=1)[-1].rstrip("0123456789.") or model
    return {
        "name": model,
        "model": model,
        "modified_at": "2026-10-02T10:20:30.123456789Z",
        "size": 2_019_393_189,
        "digest": hashlib.sha256(model.encode()).hexdigest(),
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
        },
    }


def read_embed(body: Any) -> EmbedAsk:
    """Read a ``POST /api/embed`` body: ``input`` is one text or a list of them."""
    if not isinstance(body, Mapping):
        raise AskError("missing request body")
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise AskError("model is required")
    given = body.get("input")
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise AskError("invalid input type")
    dimensions = body.get("dimensions")
    return EmbedAsk(
        model=tagged(name),
        texts=tuple(texts),
        dimensions=dimensions if isinstance(dimensions, int) and dimensions > 0 else None,
    )


def embed_answer(ask: EmbedAsk, vectors: tuple[tuple[float, ...], ...], input_tokens: int) -> Any:
    """``{"model", "embeddings", "total_duration", "load_duration", "prompt_eval_count"}``."""
    return {
        "model": ask.model,
        "embeddings": [list(v) for v in vectors],
        "total_duration": 14_143_917,
        "load_duration": 1_019_500,
        "prompt_eval_count": input_tokens,
    }


def _head(model: str, text: str) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": _now(),
        "message": {"role": "assistant", "content": text},
    }


def _final(completion: Completion, model: str, text: str) -> dict[str, Any]:
    prompt_ns = completion.input_tokens * _NANOS_PER_TOKEN // 10
    eval_ns = completion.output_tokens * _NANOS_PER_TOKEN
    return {
        **_head(model, text),
        "done_reason": completion.finish or _DONE_REASON[completion.ending],
        "done": True,
        "total_duration": 4_000_000 + prompt_ns + eval_ns,
        "load_duration": 4_000_000,
        "prompt_eval_count": completion.input_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": completion.output_tokens,
        "eval_duration": eval_ns,
    }


def _line(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeOllama(FakeProvider):
    """A fake Ollama server: ``POST /api/chat`` (NDJSON streams), ``/api/tags``, ``/api/embed``.

    The base URL has no version path. ``keys=None`` (the default) takes requests without a
    key, as a local Ollama does; given keys, it wants ``Authorization: Bearer`` as Ollama
    behind a proxy does. Models are named with their tag (``llama3.2:latest``); a request
    for ``llama3.2`` means ``llama3.2:latest``.
    """

    wire: ClassVar[EmbedWire] = wire_of(__name__)

    def __init__(self, *, models: str | Iterable[str] | None = None, **options: Any) -> None:
        super().__init__(models=models, **options)
        self.models = tuple(tagged(model) for model in self.models)
