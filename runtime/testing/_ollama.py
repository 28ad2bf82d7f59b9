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
from runtime.testing._script import Fail, StreamError
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
        raise AskError(_unmarshal_error("messages", "[]api.Message", messages))
    prompt: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping):
            raise AskError(_unmarshal_error("messages", "api.Message", message))
        prompt.extend(texts_of(message.get("content")))
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
    )


def _check_images(images: Any) -> None:
    if images is None:
        return
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise AskError(_unmarshal_error("messages.images", "[]api.ImageData", images))
    for image in images:
        bad = next((i for i, char in enumerate(image) if char not in _BASE64), None)
        if bad is not None:
            raise AskError(f"illegal base64 data at input byte {bad}")
        try:
            binascii.a2b_base64(image, strict_mode=True)
        except binascii.Error:
            raise AskError(f"illegal base64 data at input byte {len(image)}") from None


def _unmarshal_error(field: str, go_type: str, value: Any) -> str:
    kind = {str: "string", int: "number", float: "number", bool: "bool", dict: "object"}
    found = kind.get(type(value), "array")
    return (
        f"json: cannot unmarshal {found} into Go struct field ChatRequest.{field} of type {go_type}"
    )


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
    """A finished chat response."""
    return _final(completion, model, completion.text)


def stream(completion: Completion, ask: ChatAsk) -> StreamPlan:
    """One NDJSON line per piece of text (``done: false``), then the final line."""
    body = tuple(
        _line({**_head(ask.model, piece), "done": False}) for piece in split_text(completion.text)
    )
    tail = (_line(_final(completion, ask.model, "")),)
    thinking = {"role": "assistant", "content": "", "thinking": "Hmm. "}
    idle = _line({**_head(ask.model, ""), "message": thinking, "done": False})
    return StreamPlan((), body, tail, CONTENT_TYPE, idle)


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
