"""Replicate's predictions API, as the fake server writes it (pure functions).

Documented shapes:

- ``POST /v1/models/{owner}/{name}/predictions`` (an official model, its latest version)
  and ``POST /v1/predictions`` with ``"version"`` (a 64-character version id, or
  ``owner/name:version``); the body is ``{"input": {...}}``. Language models take
  ``prompt`` (required), ``system_prompt``, ``max_tokens`` or ``max_new_tokens``,
  ``temperature``, ``top_p`` and ``stop_sequences`` (comma-separated); other inputs pass,
  unread. DeepSeek's models have no ``system_prompt`` input (Bifrost's Replicate provider,
  ``supportsSystemPrompt``), so for ``deepseek-ai/*`` the fake leaves it unread too: what is
  only there never reaches the model. Replicate has no tool calling and no JSON mode, so
  the fake reads none (a schema can only be asked for in words, in the prompts).
- The answer is the prediction object, HTTP 201: ``{"id", "model", "version", "input",
  "logs", "output", "data_removed", "error", "status", "created_at", "started_at",
  "completed_at", "urls": {"cancel", "get", "stream", "web"}, "metrics":
  {"input_token_count", "output_token_count", "predict_time", "total_time",
  "tokens_per_second", "time_to_first_token"}}``, its output a list of text chunks. The
  fake always answers as in sync mode (``Prefer: wait``) with the prediction ended.
- Statuses ``starting``, ``processing``, ``succeeded``, ``failed``, ``canceled``,
  ``aborted``; ``Answer(finish=...)`` names one to answer with (``"processing"``: a
  prediction still running when the wait ran out), as does ``Fail(code="failed")``
  (``"canceled"``, ``"aborted"``) with ``message`` as the prediction's ``error``.
- Keys as ``Authorization: Bearer <token>`` (or the older ``Token <token>``).
- Errors are problem details ``{"title", "detail", "status"}``: 401 ``Unauthenticated``, 402
  ``Insufficient credit``, 404, 422 ``Input validation failed`` (with ``invalid_fields``)
  or ``Invalid version or not permitted``, 429 ``Request was throttled. Your rate limit
  resets in ~Ns`` (no ``retry-after`` header unless a `Fail` gives ``retry_after_s``), 500.
- ``GET /v1/models`` (a page: ``{"next", "previous", "results"}``) and
  ``GET /v1/models/{owner}/{name}``. No rate-limit headers.
- A create call with ``"stream": true`` answers at once with the prediction
  ``starting``; its ``urls.stream`` (``GET /v1/stream/{id}`` on the fake) sends
  ``event: output`` with each piece of text, then ``event: done`` with ``{}`` (or
  ``event: error`` when the script breaks it); its ``urls.get`` (``GET
  /v1/predictions/{id}``) then gives the finished prediction with its token counts.
  Events carry ``id`` fields, as Replicate's do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from runtime.testing._budget import BudgetState
from runtime.testing._completion import (
    AskError,
    ChatAsk,
    Completion,
    positive_int,
    random_id,
    split_text,
)
from runtime.testing._provider import FakeProvider
from runtime.testing._script import Fail, StreamError
from runtime.testing._wire import (
    Action,
    Reply,
    Route,
    StreamPlan,
    Wire,
    sse_frame,
    wire_of,
)

NAME: str = "replicate"
API_ROOT: str = "/v1"
_MODEL = "{model:[^/]+/[^/]+}"
ROUTES: tuple[Route, ...] = (
    Route("POST", f"/v1/models/{_MODEL}/predictions", Action.CHAT),
    Route("POST", "/v1/predictions", Action.CHAT),
    Route("GET", "/v1/models", Action.LIST_MODELS),
    Route("GET", f"/v1/models/{_MODEL}", Action.GET_MODEL),
    Route("GET", "/v1/stream/{prediction}", Action.FETCH_STREAM),
    Route("GET", "/v1/predictions/{prediction}", Action.FETCH_RESULT),
)
MODELS: tuple[str, ...] = (
    "meta/meta-llama-3-8b-instruct",
    "meta/meta-llama-3-70b-instruct",
    "ibm-granite/granite-3.3-8b-instruct",
    "deepseek-ai/deepseek-r1",
)
REQUESTS_PER_MINUTE: int = 600
"""Replicate's documented limit for creating predictions."""
TOKENS_PER_MINUTE: int = 10_000_000

PREDICTION_STATUSES = frozenset(
    {"starting", "processing", "succeeded", "failed", "canceled", "aborted"}
)
_ENDED = frozenset({"succeeded", "failed", "canceled", "aborted"})
_HEX = "0123456789abcdef"
_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
_UNAUTHENTICATED = "You did not pass a valid authentication token"
_NO_CREDIT = (
    "You have insufficient credit to run this model. Go to "
    "https://replicate.com/account/billing#billing to purchase credit. Once you purchase "
    "credit, please wait a few minutes before trying again."
)
_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("Bad request", "The request could not be understood."),
    401: ("Unauthenticated", _UNAUTHENTICATED),
    402: ("Insufficient credit", _NO_CREDIT),
    403: ("Forbidden", "You do not have permission to perform this action."),
    404: ("Not found", "Not found."),
    422: ("Input validation failed", "- input: invalid input"),
    500: ("Internal server error", "An internal error occurred. Please try again later."),
    503: ("Service unavailable", "The service is temporarily unavailable."),
}
_FAILED_TEXT = {
    "failed": "Prediction failed.",
    "canceled": "Prediction was canceled.",
    "aborted": "Prediction was aborted: its deadline passed before it started.",
}


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:  # noqa: ARG001
    """The token of an ``Authorization: Bearer`` (or ``Token``) header."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token"):
        return None
    return token.strip() or None


def problem(status: int, title: str, detail: str, **extra: Any) -> Any:
    """Replicate's problem-details body."""
    return {"title": title, "detail": detail, "status": status, **extra}


def auth_error(presented: str | None) -> Reply:  # noqa: ARG001 - one answer for both
    """401 ``Unauthenticated``, for a missing or an invalid token alike."""
    return Reply(401, problem(401, "Unauthenticated", _UNAUTHENTICATED))


def header_error(headers: Mapping[str, str]) -> Reply | None:  # noqa: ARG001
    """Replicate requires no header but the token (``Prefer: wait`` is optional)."""
    return None


def read_ask(
    body: Any,
    *,
    model: str | None,
    stream: bool,  # noqa: ARG001 - the body says whether to stream
    query: Mapping[str, str],  # noqa: ARG001
) -> ChatAsk:
    """Read a create-prediction body; the model comes from the path or ``version``.

    Raises:
        AskError: the real API would answer 422.
    """
    if not isinstance(body, Mapping):
        raise AskError("- (root): Invalid type. Expected: object", "(root)")
    name = model or body.get("version")
    if not isinstance(name, str) or not name:
        raise AskError("- version: version is required", "version")
    inputs = body.get("input")
    if not isinstance(inputs, Mapping):
        raise AskError("- input: input is required", "input")
    prompt = inputs.get("prompt")
    if not isinstance(prompt, str):
        raise AskError("- input.prompt: prompt is required", "input.prompt")
    system = inputs.get("system_prompt")
    if name.startswith("deepseek-ai/"):
        system = None
    texts = [system, prompt] if isinstance(system, str) and system else [prompt]
    max_tokens = positive_int(inputs, "max_tokens") or positive_int(inputs, "max_new_tokens")
    stops = inputs.get("stop_sequences")
    stop = tuple(s for s in stops.split(",") if s) if isinstance(stops, str) else ()
    streamed = body.get("stream") is True
    return ChatAsk(name, "\n".join(texts), stream=streamed, max_tokens=max_tokens, stop=stop)


def bad_request(error: AskError) -> Reply:
    """422 ``Input validation failed``, naming the field."""
    field = error.param or "input"
    detail = error.message if error.message.startswith("- ") else f"- {field}: {error.message}"
    invalid = [{"type": "invalid", "field": field, "description": detail.removeprefix("- ")}]
    body = problem(422, "Input validation failed", detail, invalid_fields=invalid)
    return Reply(422, body)


def unknown_model(model: str) -> Reply:
    """404 for a model name; 422 ``Invalid version or not permitted`` for a version."""
    if "/" in model and ":" not in model:
        return Reply(404, problem(404, "Not found", "Not found."))
    detail = (
        "The specified version does not exist (or perhaps you don't have permission to use it?)"
    )
    return Reply(422, problem(422, "Invalid version or not permitted", detail))


def unknown_path(method: str, path: str) -> Reply:  # noqa: ARG001
    """404 ``Not found``."""
    return Reply(404, problem(404, "Not found", "Not found."))


def failure(fail: Fail, model: str) -> Reply:
    """A problem for ``fail.status``; a prediction that ended so for ``code`` ``"failed"``..."""
    if fail.code in _FAILED_TEXT:
        error = fail.message or _FAILED_TEXT[fail.code]
        return Reply(201, prediction(model, fail.code, None, error=error))
    if fail.status == 429:  # noqa: PLR2004
        reply = _throttled(fail.retry_after_s or 1.0)
        if fail.retry_after_s is None:
            return reply
        return Reply(429, reply.body, {"retry-after": str(math.ceil(fail.retry_after_s))})
    title, detail = _PROBLEMS.get(fail.status, ("Error", "The request failed."))
    headers = {}
    if fail.retry_after_s is not None:
        headers["retry-after"] = str(math.ceil(fail.retry_after_s))
    body = problem(fail.status, fail.code or title, fail.message or detail)
    return Reply(fail.status, body, headers)


def _throttled(wait_s: float) -> Reply:
    detail = f"Request was throttled. Your rate limit resets in ~{max(math.ceil(wait_s), 1)}s."
    return Reply(429, problem(429, "Request was throttled", detail))


def rate_limited(model: str, limit: int, wait_s: float) -> Reply:  # noqa: ARG001
    """429 ``Request was throttled``, its wait said in ``detail`` only."""
    return _throttled(wait_s)


def limit_headers(requests: BudgetState, tokens: BudgetState) -> dict[str, str]:  # noqa: ARG001
    """Replicate sends no rate-limit headers."""
    return {}


def id_headers() -> dict[str, str]:
    """Replicate documents no request-id header."""
    return {}


def answer(completion: Completion, model: str) -> Reply:
    """HTTP 201 with the prediction: ``succeeded``, or the status ``Answer.finish`` names."""
    status = completion.finish if completion.finish in PREDICTION_STATUSES else "succeeded"
    pieces = split_text(completion.text)
    output: list[str] | None = None
    if status == "succeeded":
        output = pieces
    elif status == "processing":
        output = pieces[: len(pieces) // 2]
    error = _FAILED_TEXT.get(status) if status != "succeeded" else None
    return Reply(201, prediction(model, status, output, error=error, completion=completion))


def started(model: str, ident: str, base_url: str) -> Any:
    """A prediction created to be streamed: ``starting``, its URLs on the fake."""
    return prediction(model, "starting", None, ident=ident, base_url=base_url)


def finished(completion: Completion, model: str, ident: str, base_url: str) -> Any:
    """The streamed prediction once done: ``succeeded``, with its output and token counts."""
    output = split_text(completion.text)
    return prediction(
        model, "succeeded", output, completion=completion, ident=ident, base_url=base_url
    )


def prediction(
    model: str,
    status: str,
    output: list[str] | None,
    *,
    error: str | None = None,
    completion: Completion | None = None,
    ident: str | None = None,
    base_url: str | None = None,
) -> dict[str, Any]:
    """A prediction object of ``model`` (``owner/name`` or ``owner/name:version``).

    Its URLs are Replicate's, or under ``base_url`` (the fake's) for one to be streamed.
    """
    name, _, version = model.partition(":")
    ident = ident or random_id("", 26, _LOWER)
    root = base_url or "https://api.replicate.com/v1"
    api = f"{root}/predictions/{ident}"
    stream_url = (
        f"{root}/stream/{ident}"
        if base_url
        else (f"https://stream.replicate.com/v1/files/{random_id('', 40, _LOWER)}")
    )
    now = _timestamp(time.time())
    metrics: dict[str, Any] = {}
    if completion is not None and status == "succeeded":
        metrics = {
            "input_token_count": completion.input_tokens,
            "output_token_count": completion.output_tokens,
            "predict_time": 0.42,
            "total_time": 0.5,
            "tokens_per_second": round(completion.output_tokens / 0.42, 3),
            "time_to_first_token": 0.08,
        }
    return {
        "id": ident,
        "model": name,
        "version": version or version_of(name),
        "input": {},
        "logs": "",
        "output": output,
        "data_removed": False,
        "error": error,
        "status": status,
        "created_at": now,
        "started_at": None if status == "starting" else now,
        "completed_at": now if status in _ENDED else None,
        "urls": {
            "cancel": f"{api}/cancel",
            "get": api,
            "stream": stream_url,
            "web": f"https://replicate.com/p/{ident}",
        },
        "metrics": metrics,
    }


def version_of(model: str) -> str:
    """A model's (fake) latest version id: 64 hexadecimal digits that depend on its name."""
    return hashlib.sha256(model.encode()).hexdigest()


def _timestamp(when: float) -> str:
    return (
        datetime.fromtimestamp(when, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    )


def stream(completion: Completion, ask: ChatAsk) -> StreamPlan:  # noqa: ARG001
    """What ``urls.stream`` sends: ``event: output`` per text chunk, then ``event: done``.

    Its non-content frame is an SSE comment (``: keep-alive``).
    """
    pieces = split_text(completion.text)
    body = tuple(_event("output", piece, i) for i, piece in enumerate(pieces))
    done = _event("done", "{}", len(pieces))
    return StreamPlan((), body, (done,), idle=b": keep-alive\n\n")


def _event(name: str, data: str, number: int) -> bytes:
    """A server-sent event with an ``id``, as Replicate's stream sends them.

    Text with line breaks takes one ``data`` line per line, as the SSE format wants.
    """
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {name}\nid: {number}\n{lines}\n".encode()


def stream_error(error: StreamError) -> bytes | None:
    """``event: error`` with the failure's detail."""
    return sse_frame({"detail": error.message or "Prediction failed."}, "error")


def stream_error_failure(error: StreamError) -> Fail:
    """A ``failed`` prediction."""
    return Fail(201, code="failed", message=error.message)


def model_list(models: tuple[str, ...]) -> Any:
    """``GET /v1/models``: one page, each model once (pinned versions folded)."""
    return {"next": None, "previous": None, "results": [model_info(m) for m in names(models)]}


def model_info(model: str) -> Any:
    """``GET /v1/models/{owner}/{name}``."""
    name, _, version = model.partition(":")
    owner, _, short = name.partition("/")
    return {
        "url": f"https://replicate.com/{name}",
        "owner": owner,
        "name": short,
        "description": "A language model served by a loopback fake.",
        "visibility": "public",
        "github_url": None,
        "paper_url": None,
        "license_url": None,
        "run_count": 0,
        "cover_image_url": None,
        "default_example": None,
        "latest_version": {
            "id": version or version_of(name),
            "created_at": "2024-04-17T21:44:13.482460Z",
            "cog_version": "0.9.6",
            "openapi_schema": {},
        },
    }


def names(models: Iterable[str]) -> tuple[str, ...]:
    """``owner/name`` of each model, each once, in order (versions dropped)."""
    return tuple(dict.fromkeys(m.partition(":")[0] for m in models if "/" in m))


def with_model_names(models: tuple[str, ...]) -> tuple[str, ...]:
    """``models`` plus ``owner/name`` for each pinned ``owner/name:version`` in it."""
    return tuple(dict.fromkeys((*models, *names(models))))


def pinned(version: str, models: Iterable[str]) -> str:
    """The ``owner/name:version`` of ``models`` that a bare version id names, else ``version``."""
    if "/" in version:
        return version
    return next((m for m in models if m.endswith(f":{version}")), version)


class FakeReplicate(FakeProvider):
    """A fake Replicate API: predictions, sync or streamed, ``GET /v1/models[/{owner}/{name}]``.

    ``models`` are ``owner/name`` (run with ``POST /v1/models/{owner}/{name}/predictions``)
    or ``owner/name:version`` (run with ``POST /v1/predictions`` and that ``version``, the
    id alone or the full name); a pinned model also offers its ``owner/name``. Tokens go in
    ``Authorization: Bearer``. A create call answers HTTP 201 with the prediction as sync
    mode returns it; ``Answer(finish="processing")`` answers one still running when the
    wait ran out, ``Fail(201, code="failed", message=...)`` one that failed. With
    ``"stream": true`` it answers the prediction ``starting``, whose ``urls.stream`` and
    then ``urls.get`` are served by the fake (a `StreamError` breaks the stream with an
    ``error`` event; a `Stall` stalls it).
    """

    wire: ClassVar[Wire] = wire_of(__name__)

    def __init__(self, *, models: str | Iterable[str] | None = None, **options: Any) -> None:
        super().__init__(models=models, **options)
        self.models = with_model_names(self.models)

    def _read_ask(self, request: web.Request, model: str | None, *, stream: bool) -> ChatAsk:
        ask = super()._read_ask(request, model, stream=stream)
        return dataclasses.replace(ask, model=pinned(ask.model, self.models))
