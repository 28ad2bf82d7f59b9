"""Replicate's predictions API, for the language models it hosts.

A chat is one prediction, created in sync mode: ``POST
{base}/models/{owner}/{name}/predictions`` for a model ``owner/name`` (it runs the model's
latest version), or ``POST {base}/predictions`` with ``"version"`` for a pinned
``owner/name:version``. The request carries ``Authorization: Bearer <token>`` and ``Prefer:
wait=55``, which holds it open until the prediction ends or 55 s pass (Replicate allows 1 to
60), so a prediction still running comes back, with its id, before callboard's default 60 s
``request_s`` gives up on it; the body is ``{"input": {...}}`` with the inputs language
models on Replicate take: ``prompt`` (the conversation, flattened: a lone user message as it
is, else ``User:`` / ``Assistant:`` turns ending with ``Assistant:``), ``system_prompt``,
``max_tokens`` and ``max_new_tokens`` (models name it one way or the other and ignore the
other), ``temperature``, ``top_p`` and ``stop_sequences`` (comma-separated). Inputs differ
from model to model, so images are not sent (``images=False``). Some models take no
``system_prompt`` (DeepSeek's, base models such as ``meta/meta-llama-3-8b``; the list is a
peer gateway's, Bifrost's ``unsupportedSystemPromptModels``, as Replicate documents inputs
per model only): for them the system prompt leads the ``prompt`` instead of being lost.

Replicate has no tool calling (``tools=False``: the router skips it for tasks with tools).
A conversation that used tools elsewhere is flattened like the rest: a call as ``[called
name {arguments}]`` in its assistant turn, a result as ``Tool name returned: ...`` (or
``failed``). Nor has it a JSON mode, so structured output takes the last resort: the
instruction with the schema (`output_instruction`) ends the system prompt, and the
runtime checks the answer against the schema as for any provider.

The answer is the prediction object, HTTP 201: ``{"id", "model", "version", "status",
"output", "error", "metrics": {"input_token_count", "output_token_count", "predict_time"},
"urls": {"get", "cancel", "stream"}}``. ``output`` is a list of text chunks (or one string);
``status`` ``succeeded`` is an answer, ``failed`` an error (``bad_request`` when its text
says the input was invalid, else ``server``), ``canceled`` and ``aborted`` (a deadline
passed) are ``timeout``, and ``starting`` or ``processing`` mean the wait ran out first
(``timeout``; the prediction goes on running, and is billed, on Replicate). Replicate does
not say why an output ended, so the finish reason is ``None``.

A streamed answer takes three requests (`StreamByUrl`), and only callers who stream
(`Callboard.stream`) get one (``stream_on_demand``): the create call carries ``"stream":
true`` and no ``Prefer: wait``, and answers at once with the prediction ``starting``; its
``urls.stream`` is read with ``GET`` (``Accept: text/event-stream``, the same token) as
server-sent events: ``output`` (a piece of text, as is), ``logs`` (ignored), ``error``
(the prediction failed: ``server``) and ``done`` (``{}``, or ``{"reason": "canceled"}``
when it was canceled: ``timeout``). A model that does not stream has no ``urls.stream``:
that is a ``bad_request`` saying to set ``stream = false`` for the provider (the
prediction it created runs on). Once ``done`` has come, ``GET urls.get`` fetches the
finished prediction for its token counts; should that fail, the streamed text stands
with unknown (zero) counts.

Errors are problem details, ``{"title", "detail", "status"}`` (401 unauthenticated, 402
insufficient credit, 404, 422 invalid input or version, 429 throttled: "Your rate limit
resets in ~30s", read as the wait when there is no ``retry-after``). Replicate sends no
rate-limit headers. The start-up check is ``GET {base}/models/{owner}/{name}`` (a pinned
version is checked by the first call). `ListModels` reads the first page of
``GET {base}/models`` (``results[]`` as ``owner/name``; the next pages, behind the
``next`` cursor, are left out: there are thousands of public models). No embeddings.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from runtime._chat import ChatRequest, ChatResult, RateLimitInfo, Usage
from runtime._errors import ErrorKind, ProviderError
from runtime.protocols._base import HttpCall, ListModels, StreamByUrl, WireProtocol
from runtime.protocols._common import (
    as_count,
    as_dict,
    as_str,
    is_error,
    key_headers,
    kind_for_status,
    load_json,
    malformed,
    non_json_error,
    output_instruction,
    retry_after_s,
    snippet,
    without_none,
)

if TYPE_CHECKING:
    from runtime._chat import Message, Tuning
    from runtime.protocols._base import Endpoint, Headers, StreamParser

NAME = "replicate"
DEFAULT_BASE_URL = "https://api.replicate.com/v1"

_RUNNING = frozenset({"starting", "processing"})
_ENDED_EARLY = frozenset({"canceled", "aborted"})
_INVALID_INPUT = re.compile(
    r"\b(invalid|validation|must be|is required|not a valid|too long|exceeds?)\b", re.IGNORECASE
)
_RESETS_IN = re.compile(r"resets in ~?\s*(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
_NO_VERSION = "invalid version or not permitted"
_ROLES = {"user": "User", "assistant": "Assistant"}
_NO_SYSTEM_PROMPT = frozenset(
    {
        "meta/meta-llama-3-8b",
        "meta/llama-2-70b",
        "openai/gpt-oss-20b",
        "openai/o1-mini",
        "xai/grok-4",
    }
)
"""Models whose inputs have no ``system_prompt`` (with every ``deepseek-ai/deepseek-*``)."""


def chat_request(endpoint: Endpoint, request: ChatRequest, stream: bool) -> HttpCall:
    """Build the prediction for the conversation: in sync mode, or to be streamed by URL."""
    turns, system = ChatRequest.split_system(request.messages, request.system)
    if request.output is not None:
        instruction = output_instruction(request.output)
        system = f"{system}\n\n{instruction}" if system else instruction
    name, _, version = request.model.partition(":")
    inputs: dict[str, object] = {"prompt": _prompt(turns)}
    if system and takes_system_prompt(name):
        inputs["system_prompt"] = system
    elif system:
        inputs["prompt"] = f"{system}\n\n{inputs['prompt']}"
    inputs.update(_tuning(request.tuning))
    if version:
        url = f"{endpoint.base_url}/predictions"
        body: dict[str, object] = {"version": version, "input": inputs}
    else:
        url = f"{endpoint.base_url}/models/{_model_path(name)}/predictions"
        body = {"input": inputs}
    if stream:
        body["stream"] = True
    headers = _headers(endpoint, body=True, wait=not stream)
    return HttpCall("POST", url, headers, body, stream=stream)


def takes_system_prompt(model: str) -> bool:
    """Whether the model ``owner/name`` has a ``system_prompt`` input."""
    name = model.lower()
    return not name.startswith("deepseek-ai/deepseek") and name not in _NO_SYSTEM_PROMPT


def _prompt(turns: tuple[Message, ...]) -> str:
    """One prompt for the conversation: a lone user message as is, else labelled turns."""
    if len(turns) == 1 and turns[0].role == "user":
        return turns[0].text
    lines = [_line(m) for m in turns]
    if turns and turns[-1].role in ("user", "tool"):
        lines.append("Assistant:")
    return "\n\n".join(lines)


def _line(message: Message) -> str:
    """One labelled turn; tool calls and results in words (Replicate has no tools)."""
    if message.role == "tool":
        outcome = "failed" if message.is_error else "returned"
        return f"Tool {message.tool_name or message.tool_call_id} {outcome}: {message.text}"
    calls = [f"[called {c.name} {c.raw_arguments}]" for c in message.tool_calls]
    text = " ".join(part for part in (message.text, *calls) if part)
    return f"{_ROLES.get(message.role, 'User')}: {text}"


def _tuning(tuning: Tuning) -> dict[str, object]:
    values: dict[str, object] = {
        "max_tokens": tuning.max_tokens,
        "max_new_tokens": tuning.max_tokens,
        "temperature": tuning.temperature,
        "top_p": tuning.top_p,
        "stop_sequences": ",".join(tuning.stop) if tuning.stop else None,
    }
    return without_none(values)


def _model_path(name: str) -> str:
    """``owner/name`` as two path segments, each escaped."""
    return "/".join(quote(part, safe="") for part in name.split("/", 1))


SYNC_WAIT_S = 55
"""How long Replicate holds a create call open (``Prefer: wait=``), under ``request_s``."""


def _headers(endpoint: Endpoint, *, body: bool, wait: bool = True) -> tuple[tuple[str, str], ...]:
    prefer = (("prefer", f"wait={SYNC_WAIT_S}"),) if body and wait else ()
    return key_headers(endpoint, body=body, trailing=prefer)


def parse_chat(status: int, headers: Headers, body: bytes) -> ChatResult:
    """Parse a prediction object; only a ``succeeded`` one is an answer."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    if not isinstance(data, dict):
        raise malformed(f"prediction is not a JSON object: {snippet(body)}", status)
    state = as_str(data.get("status"))
    if state == "succeeded":
        metrics = as_dict(data.get("metrics"))
        usage = Usage(
            input_tokens=as_count(metrics.get("input_token_count")),
            output_tokens=as_count(metrics.get("output_token_count")),
        )
        model = as_str(data.get("model")) or as_str(data.get("version"))
        return ChatResult(_output_text(data.get("output"), status), model, usage, None)
    raise _unfinished(state, data, status)


def _output_text(output: object, status: int) -> str:
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    if isinstance(output, list) and all(isinstance(chunk, str) for chunk in output):
        return "".join(output)
    raise malformed("prediction output is not text (a string or a list of strings)", status)


def _unfinished(state: str, data: dict[str, object], status: int) -> ProviderError:
    """The error for a prediction that did not succeed (or has no known status)."""
    ident = as_str(data.get("id")) or "?"
    error = data.get("error")
    said = snippet(str(error).encode()) if error else "no error text"
    if state in _RUNNING:
        return ProviderError(
            ErrorKind.TIMEOUT,
            f"the prediction did not finish within Replicate's wait; prediction {ident} is "
            f"still {state} on Replicate (and will be billed); use a faster model or "
            "fewer max_tokens",
            status=status,
            code=state,
        )
    if state == "failed":
        kind = ErrorKind.BAD_REQUEST if _INVALID_INPUT.search(said) else ErrorKind.SERVER
        return ProviderError(kind, f"prediction {ident} failed: {said}", status=status, code=state)
    if state in _ENDED_EARLY:
        return ProviderError(
            ErrorKind.TIMEOUT,
            f"prediction {ident} was {state} (canceled, or past its deadline): {said}",
            status=status,
            code=state,
        )
    return malformed(f"prediction has an unknown status {state!r}: {snippet(str(data).encode())}")


def parse_error(status: int, headers: Headers, body: bytes) -> ProviderError:
    """Map a problem-details error (any body, JSON or not) to a `ProviderError`; never raises."""
    data = load_json(body)
    if data is None:
        return non_json_error(status, headers, body)
    problem = as_dict(data)
    detail = as_str(problem.get("detail")).strip()
    title = as_str(problem.get("title")).strip()
    if not detail and not title and "error" in problem:
        detail = as_str(problem.get("error"))
    if not detail and not title:
        message = f"unrecognized error body: {snippet(body)}"
    elif title and title.lower() not in detail.lower():
        message = snippet(f"{title}: {detail}".rstrip(": ").encode())
    else:
        message = snippet(detail.encode())
    kind = kind_for_status(status)
    if status == 422 and _NO_VERSION in title.lower():  # noqa: PLR2004
        kind = ErrorKind.NOT_FOUND
    elif status == 402:  # noqa: PLR2004
        message = f"the account's credit is used up (add credit at replicate.com): {message}"
    wait = retry_after_s(headers)
    if wait is None and kind is ErrorKind.RATE_LIMITED:
        found = _RESETS_IN.search(detail)
        wait = float(found.group(1)) if found else None
    return ProviderError(kind, message, status=status, retry_after_s=wait, code=title or None)


def stream_call(call: HttpCall, body: bytes) -> HttpCall | None:
    """The ``GET`` of a created prediction's ``urls.stream``; ``None`` if it has already ended.

    Raises:
        ProviderError: ``bad_request`` when the model does not stream, ``malformed`` for
            an answer that is not a prediction.
    """
    data = _created(body)
    if as_str(data.get("status")) not in _RUNNING:
        return None
    url = as_str(as_dict(data.get("urls")).get("stream"))
    if not url:
        ident = as_str(data.get("id")) or "?"
        raise ProviderError(
            ErrorKind.BAD_REQUEST,
            f"this model does not stream its output on Replicate (prediction {ident} has no "
            "stream URL, and runs on); set stream = false for this provider",
            code="no_stream",
        )
    accept = (("accept", "text/event-stream"), ("cache-control", "no-store"))
    return HttpCall("GET", url, (*_auth(call), *accept), stream=True)


def result_call(call: HttpCall, body: bytes) -> HttpCall:
    """The ``GET`` of a created prediction's ``urls.get``: the finished prediction.

    Raises:
        ProviderError: ``malformed`` for an answer that is not a prediction with that URL.
    """
    url = as_str(as_dict(_created(body).get("urls")).get("get"))
    if not url:
        raise malformed(f"the prediction has no get URL: {snippet(body)}")
    return HttpCall("GET", url, _auth(call))


def _created(body: bytes) -> dict[str, object]:
    data = load_json(body)
    if not isinstance(data, dict):
        raise malformed(f"prediction is not a JSON object: {snippet(body)}")
    return data


def _auth(call: HttpCall) -> tuple[tuple[str, str], ...]:
    """The create call's token, for the requests that follow it."""
    return tuple((name, value) for name, value in call.headers if name == "authorization")


class _PredictionStream:
    """Reads ``urls.stream``: text from ``output``, the end from ``done``."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._done = False

    def feed(self, event: str, data: str) -> list[str]:
        if event == "output":
            self._text.append(data)
            return [data]
        if event == "error":
            detail = as_str(as_dict(load_json(data.encode())).get("detail")) or data
            raise ProviderError(
                ErrorKind.SERVER, f"the prediction failed mid-stream: {detail}", code="failed"
            )
        if event == "done":
            reason = as_str(as_dict(load_json(data.encode())).get("reason"))
            if reason in _ENDED_EARLY:
                raise ProviderError(
                    ErrorKind.TIMEOUT, f"the prediction was {reason} mid-stream", code=reason
                )
            if reason == "error":
                raise ProviderError(ErrorKind.SERVER, "the prediction failed mid-stream")
            self._done = True
        return []

    def finish(self) -> ChatResult:
        if not self._done:
            raise malformed("the prediction's stream ended before its done event")
        return ChatResult("".join(self._text), "", Usage(), None)

    def usage_so_far(self) -> Usage:
        return Usage()


def stream_parser(headers: Headers) -> StreamParser:  # noqa: ARG001
    """Start reading a prediction's stream (``urls.stream``)."""
    return _PredictionStream()


def rate_limits(headers: Headers) -> RateLimitInfo:  # noqa: ARG001
    """Replicate sends no rate-limit headers."""
    return RateLimitInfo()


def models_request(endpoint: Endpoint) -> HttpCall:
    """Build ``GET /models/{owner}/{name}`` for the configured model (its version dropped)."""
    name = endpoint.model.partition(":")[0]
    url = f"{endpoint.base_url}/models/{_model_path(name)}"
    return HttpCall("GET", url, _headers(endpoint, body=False))


def check_models(
    endpoint: Endpoint, status: int, headers: Headers, body: bytes
) -> ProviderError | None:
    """Return ``None`` when the token works and the model exists, else the error."""
    if "/" not in endpoint.model.partition(":")[0]:
        return ProviderError(
            ErrorKind.NOT_FOUND,
            f"model {endpoint.model!r} is not a Replicate model name: use owner/name "
            "(or owner/name:version)",
        )
    if is_error(status):
        error = parse_error(status, headers, body)
        if error.kind is ErrorKind.NOT_FOUND:
            return ProviderError(
                error.kind,
                f"model {endpoint.model!r} does not exist on Replicate: {error.message}",
                status=status,
                code=error.code,
            )
        return error
    if not isinstance(load_json(body), dict):
        return malformed(f"model answer is not a JSON object: {snippet(body)}", status)
    return None


def list_request(endpoint: Endpoint) -> HttpCall:
    """Build ``GET /models``: the first page of public models."""
    return HttpCall("GET", f"{endpoint.base_url}/models", _headers(endpoint, body=False))


def parse_list(status: int, headers: Headers, body: bytes) -> list[str]:
    """Return ``owner/name`` for each model on the page (``results[]``)."""
    if is_error(status):
        raise parse_error(status, headers, body)
    data = load_json(body)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise malformed(f"model list has no 'results' array: {snippet(body)}", status)
    names = []
    for item in results:
        model = as_dict(item)
        owner, name = as_str(model.get("owner")), as_str(model.get("name"))
        if owner and name:
            names.append(f"{owner}/{name}")
    return names


PROTOCOL = WireProtocol(
    name=NAME,
    chat_request=chat_request,
    parse_chat=parse_chat,
    parse_error=parse_error,
    stream_parser=stream_parser,
    rate_limits=rate_limits,
    models_request=models_request,
    check_models=check_models,
    list_models=ListModels(list_request, parse_list),
    embed=None,
    images=False,
    stream_by_url=StreamByUrl(stream_call, result_call),
    stream_on_demand=True,
)
