"""Cohere's v2 API wire format, as the fake server writes it (pure functions).

Documented shapes: ``POST /v2/chat`` and its response (``id``, ``finish_reason``,
``message.content`` text parts, ``usage.billed_units`` and ``usage.tokens``); the stream of
server-sent events ``message-start``, ``content-start``, ``content-delta``,
``content-end``, ``message-end`` (each named by its ``type``, in ``event:`` and in the
data); error bodies ``{"id", "message"}`` (with the messages of Cohere's error reference where it
gives them);
``GET /v1/models`` and ``/v1/models/{model}``; and ``POST /v2/embed`` with
``embeddings.float``. Cohere reports nothing mid-stream: a `StreamError` cuts the
connection. Answers carry the ``x-trial-endpoint-call-*`` headers of a trial key.

Tools (from Cohere's chat reference, its OpenAPI and its tool-use guides): ``tools`` of
``{"type": "function", "function": {name, description, parameters}}``, refused as Cohere
refuses them: a name outside ``A-Za-z0-9_`` or starting with a digit (400, Cohere's own
message, as quoted in langflow-ai/langflow#5465), a field Cohere does not know such as an
OpenAI ``strict`` (422 ``unknown field``, OpenRouterTeam/openrouter-examples#71);
``tool_choice`` ``REQUIRED`` or ``NONE``, anything else a 422 ``unrecognized tool choice
option`` (langchain-ai/langchain-cohere#161); ``response_format`` ``json_object`` with its
``json_schema``. Two refusals follow documented rules whose exact messages were found
nowhere, so their wording is the fake's own: ``response_format`` beside ``tools`` (the
reference lists it as a limitation) and a ``tool`` turn whose ``tool_call_id`` answers no
call of the assistant turn before it. Calls are answered as ``message.tool_calls``
(``id``, ``type``, ``function.name``, ``function.arguments`` as compact JSON text) beside
``message.tool_plan`` (the scripted text), finish reason ``TOOL_CALL``; streamed, as in
the tool-use streaming guide: ``message-start``, ``tool-plan-delta`` pieces, then per call
``tool-call-start`` (id, name, empty arguments), ``tool-call-delta`` fragments of the
indented JSON and ``tool-call-end``, then ``message-end``. Ids are the fake's ``call_...``
ones (real ids are ``<tool name>_<12 characters>``). Cohere has no refusal field: a
scripted refusal is answered as the model's text.

Each public function has the signature `runtime.testing._wire.EmbedWire` asks for, so some
ignore arguments other protocols need.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from runtime.testing._budget import BudgetState
from runtime.testing._completion import (
    AskError,
    ChatAsk,
    Completion,
    Ending,
    positive_int,
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
    sse_frame,
    wire_of,
)

NAME: str = "cohere"
API_ROOT: str = ""
ROUTES: tuple[Route, ...] = (
    Route("POST", "/v2/chat", Action.CHAT),
    Route("GET", "/v1/models", Action.LIST_MODELS),
    Route("GET", "/v1/models/{model}", Action.GET_MODEL),
    Route("POST", "/v2/embed", Action.EMBED),
)
MODELS: tuple[str, ...] = (
    "command-a-03-2025",
    "command-r-plus-08-2024",
    "command-r-08-2024",
    "command-r7b-12-2024",
    "embed-v4.0",
    "embed-english-v3.0",
)
REQUESTS_PER_MINUTE: int = 500
TOKENS_PER_MINUTE: int = 1_000_000
MAX_TEXTS = 96
"""The most texts one embed call takes."""

_FINISH = {
    Ending.NATURAL: "COMPLETE",
    Ending.STOP_SEQUENCE: "STOP_SEQUENCE",
    Ending.LENGTH: "MAX_TOKENS",
}
_BILLING = "https://dashboard.cohere.com/billing?tab=payment"
_ERRORS: dict[int, str] = {
    400: "invalid request: message must be at least 1 token long or tool results must be "
    "specified.",
    401: "invalid api token",
    402: f"Please add or update your payment method at {_BILLING} to continue",
    422: "invalid request: unknown field: parameter 'x' is not a valid field",
    429: "You are past the per minute request limit, please wait and try again later.",
    498: "blocked output: please adjust your prompt and try again, as this request may "
    "contain deny-listed tokens",
    499: "request cancelled",
    500: "internal server error, this has been reported to our developers.",
    503: "service unavailable, please try again later",
}
_EMBED_TYPES = frozenset({"search_document", "search_query", "classification", "clustering"})
_TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOOL_FIELDS = frozenset({"name", "description", "parameters"})
_CHOICES = {"REQUIRED": "required", "NONE": "none"}
_REFERENCE = "For proper usage, please refer to https://docs.cohere.com/reference/chat"
UNPROCESSABLE = "422"
"""`AskError.code` of a request Cohere answers with 422, not 400."""


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:  # noqa: ARG001
    """The key of an ``Authorization: Bearer`` header (the scheme in any case)."""
    scheme, _, key = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return key.strip() or None


def error_body(message: str) -> Any:
    """Cohere's error envelope."""
    return {"id": str(uuid.uuid4()), "message": message}


def auth_error(presented: str | None) -> Reply:
    """401 ``no api key supplied`` or ``invalid api token``."""
    return Reply(401, error_body("no api key supplied" if presented is None else _ERRORS[401]))


def header_error(headers: Mapping[str, str]) -> Reply | None:  # noqa: ARG001
    """Cohere requires no header but the key."""
    return None


def read_ask(
    body: Any,
    *,
    model: str | None,  # noqa: ARG001 - Cohere has the model in the body
    stream: bool,  # noqa: ARG001 - ...and says in the body whether to stream
    query: Mapping[str, str],  # noqa: ARG001
) -> ChatAsk:
    """Read a ``POST /v2/chat`` body; ``content`` is a string or a list of parts."""
    if not isinstance(body, Mapping):
        raise AskError("invalid request: could not parse the request body as JSON.")
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise AskError("a model parameter is required for this endpoint.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise AskError("invalid request: messages must not be empty.")
    roles = [m.get("role") if isinstance(m, Mapping) else None for m in messages]
    if "system" in roles[1:] and roles[0] != "system":
        raise AskError("system turn must be the first in the list")
    _check_tool_turns(messages)
    tools = _read_tools(body.get("tools"))
    schema = _read_response_format(body.get("response_format"), tools)
    prompt = "\n".join(text for m in messages if isinstance(m, Mapping) for text in _texts(m))
    return ChatAsk(
        model=name,
        prompt=prompt,
        stream=body.get("stream") is True,
        max_tokens=positive_int(body, "max_tokens"),
        stop=stop_list(body.get("stop_sequences")),
        tools=tools,
        tool_choice=_read_tool_choice(body.get("tool_choice")),
        json_schema=schema,
    )


def _texts(message: Mapping[str, Any]) -> list[str]:
    """What a turn says: its content, and an assistant turn's plan and call arguments."""
    texts = list(texts_of(message.get("content")))
    if isinstance(message.get("tool_plan"), str):
        texts.append(message["tool_plan"])
    calls = _list(message.get("tool_calls"))
    texts += [str(_mapping(_mapping(c).get("function")).get("arguments", "")) for c in calls]
    return texts


def _check_tool_turns(messages: list[Any]) -> None:
    """A ``tool`` turn must answer a call of the assistant turn with calls before it."""
    calls: set[str] = set()
    for message in messages:
        role = _mapping(message).get("role")
        if role == "assistant":
            calls = {str(_mapping(c).get("id")) for c in _list(message.get("tool_calls"))}
        elif role == "tool" and message.get("tool_call_id") not in calls:
            raise AskError(
                f"invalid request: tool message with tool_call_id "
                f"'{message.get('tool_call_id')}' answers no tool call of the preceding "
                "assistant message."
            )
        elif role != "tool":
            calls = set()


def _read_tools(value: Any) -> tuple[str, ...]:
    """The names of ``tools`` (``[{"type": "function", "function": {...}}]``)."""
    names = []
    for tool in _list(value):
        function = _mapping(_mapping(tool).get("function"))
        unknown = sorted(set(function) - _TOOL_FIELDS)
        if unknown:
            message = f"unknown field: parameter '{unknown[0]}' is not a valid field. {_REFERENCE}"
            raise AskError(message, code=UNPROCESSABLE)
        name = function.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
            raise AskError(
                "invalid request: tool names can only contain certain characters (A-Za-z0-9_) "
                f"and can't begin with a digit (provided name: '{name}')."
            )
        names.append(name)
    return tuple(names)


def _read_tool_choice(value: Any) -> str | None:
    """``REQUIRED`` or ``NONE``, in callboard's words; absent is Cohere's default (auto)."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in _CHOICES:
        message = f"unrecognized tool choice option '{value}'. {_REFERENCE}"
        raise AskError(message, code=UNPROCESSABLE)
    return _CHOICES[value]


def _read_response_format(value: Any, tools: tuple[str, ...]) -> bool:
    """Whether JSON was asked for (``json_object``, with or without its ``json_schema``)."""
    kind = _mapping(value).get("type")
    if kind == "json_object" and tools:
        raise AskError(
            "invalid request: response_format is not supported in combination with tools."
        )
    return kind == "json_object"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def bad_request(error: AskError) -> Reply:
    """400 with the reason (422 for the fields and values Cohere's schema does not know)."""
    return Reply(422 if error.code == UNPROCESSABLE else 400, error_body(error.message))


def unknown_model(model: str) -> Reply:
    """404 for a model Cohere does not offer (or the key cannot use)."""
    message = (
        f"model '{model}' not found, make sure the correct model ID was used and that you "
        "have access to the model."
    )
    return Reply(404, error_body(message))


def unknown_path(method: str, path: str) -> Reply:  # noqa: ARG001
    """404 ``404 page not found``."""
    return Reply(404, error_body("404 page not found"))


def failure(fail: Fail, model: str) -> Reply:
    """The error Cohere answers with ``fail.status``."""
    if fail.status == 404:  # noqa: PLR2004
        reply = unknown_model(model)
        return Reply(404, error_body(fail.message or reply.body["message"]))
    message = _ERRORS.get(fail.status, _ERRORS[500])
    headers = {}
    if fail.retry_after_s is not None:
        headers["retry-after"] = str(max(round(fail.retry_after_s), 1))
    return Reply(fail.status, error_body(fail.message or message), headers)


def rate_limited(model: str, limit: int, wait_s: float) -> Reply:  # noqa: ARG001
    """429 past the per-minute limit (Cohere sends no wait with it)."""
    return Reply(429, error_body(_ERRORS[429]))


def limit_headers(requests: BudgetState, tokens: BudgetState) -> dict[str, str]:  # noqa: ARG001
    """The ``x-trial-endpoint-call-*`` headers Cohere sends to trial keys."""
    return {
        "x-trial-endpoint-call-limit": str(requests.limit),
        "x-trial-endpoint-call-remaining": str(requests.remaining),
    }


def id_headers() -> dict[str, str]:
    """Cohere documents no request-id header."""
    return {}


def answer(completion: Completion, model: str) -> Any:  # noqa: ARG001
    """A chat response (Cohere's has no ``model`` field); calls come with the plan."""
    message: dict[str, Any] = {"role": "assistant"}
    if completion.tool_calls:
        message["tool_plan"] = completion.text
        message["tool_calls"] = [_tool_call(call) for call in completion.tool_calls]
    else:
        message["content"] = [{"type": "text", "text": _text(completion)}]
    return {
        "id": str(uuid.uuid4()),
        "message": message,
        "finish_reason": _finish(completion),
        "usage": _usage(completion),
    }


def _tool_call(call: ToolUse) -> dict[str, Any]:
    arguments = json.dumps(dict(call.arguments), separators=(",", ":"))
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def _text(completion: Completion) -> str:
    """The answer's text: a scripted refusal is what the model says (Cohere has no field)."""
    return completion.refusal or completion.text


def stream(completion: Completion, ask: ChatAsk) -> StreamPlan:  # noqa: ARG001
    """The chat stream: start events, one ``content-delta`` a piece of text, end events."""
    start = {
        "id": str(uuid.uuid4()),
        "type": "message-start",
        "delta": {
            "message": {
                "role": "assistant",
                "content": [],
                "tool_plan": "",
                "tool_calls": [],
                "citations": [],
            }
        },
    }
    end = {
        "type": "message-end",
        "delta": {"finish_reason": _finish(completion), "usage": _usage(completion)},
    }
    if completion.tool_calls:
        return StreamPlan((_event(start),), _tool_events(completion), (_event(end),))
    content_start = {
        "type": "content-start",
        "index": 0,
        "delta": {"message": {"content": {"type": "text", "text": ""}}},
    }
    head = (_event(start), _event(content_start))
    body = tuple(
        _event(
            {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": p}}}}
        )
        for p in split_text(_text(completion))
    )
    tail = (_event({"type": "content-end", "index": 0}), _event(end))
    thinking = {"message": {"content": {"thinking": "Hmm. "}}}
    idle = _event({"type": "content-delta", "index": 0, "delta": thinking})
    return StreamPlan(head, body, tail, idle=idle)


def _tool_events(completion: Completion) -> tuple[bytes, ...]:
    """The plan in ``tool-plan-delta`` pieces, then each call: start, fragments, end."""
    events: list[dict[str, Any]] = [
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": piece}}}
        for piece in split_text(completion.text)
    ]
    for index, call in enumerate(completion.tool_calls):
        first = {**_tool_call(call), "function": {"name": call.name, "arguments": ""}}
        events.append(
            {"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": first}}}
        )
        text = json.dumps(dict(call.arguments), indent=4)
        events += [
            {"type": "tool-call-delta", "index": index,
             "delta": {"message": {"tool_calls": {"function": {"arguments": text[i : i + 6]}}}}}
            for i in range(0, len(text), 6)
        ]  # fmt: skip
        events.append({"type": "tool-call-end", "index": index})
    return tuple(_event(event) for event in events)


def stream_error(error: StreamError) -> bytes | None:  # noqa: ARG001
    """Cohere reports nothing mid-stream: the connection is cut."""
    return None


def stream_error_failure(error: StreamError) -> Fail:
    """A 500."""
    return Fail(500, code=error.code, message=error.message)


def model_list(models: tuple[str, ...]) -> Any:
    """``GET /v1/models``: one page holding every model."""
    return {"models": [model_info(m) for m in models], "next_page_token": None}


def model_info(model: str) -> Any:
    """``GET /v1/models/{model}``."""
    embeds = model.startswith("embed")
    return {
        "name": model,
        "endpoints": ["embed", "embed_jobs"] if embeds else ["chat"],
        "finetuned": False,
        "context_length": 128_000 if not embeds else 512,
        "tokenizer_url": f"https://storage.googleapis.com/cohere-public/tokenizers/{model}.json",
        "default_endpoints": [],
        "features": None if embeds else ["json_mode", "json_schema", "tools", "strict_tools"],
    }


def read_embed(body: Any) -> EmbedAsk:
    """Read a ``POST /v2/embed`` body (``texts`` and an ``input_type`` are required)."""
    if not isinstance(body, Mapping):
        raise AskError("invalid request: could not parse the request body as JSON.")
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise AskError("a model parameter is required for this endpoint.")
    texts = body.get("texts")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) or not texts:
        raise AskError("invalid request: texts must be a non-empty list of strings.")
    if len(texts) > MAX_TEXTS:
        raise AskError(
            f"invalid request: total number of texts must be at most {MAX_TEXTS} - "
            f"received {len(texts)}"
        )
    if body.get("input_type") not in _EMBED_TYPES:
        raise AskError("invalid request: valid input_type must be provided with the provided model")
    dimension = body.get("output_dimension")
    return EmbedAsk(
        model=name,
        texts=tuple(texts),
        dimensions=dimension if isinstance(dimension, int) and dimension > 0 else None,
    )


def embed_answer(ask: EmbedAsk, vectors: tuple[tuple[float, ...], ...], input_tokens: int) -> Any:
    """``{"id", "embeddings": {"float"}, "texts", "meta", "response_type"}``."""
    return {
        "id": str(uuid.uuid4()),
        "embeddings": {"float": [list(v) for v in vectors]},
        "texts": list(ask.texts),
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": input_tokens}},
        "response_type": "embeddings_by_type",
    }


def _event(data: dict[str, Any]) -> bytes:
    return sse_frame(data, event=data["type"])


def _finish(completion: Completion) -> str:
    if completion.tool_calls and not completion.finish:
        return "TOOL_CALL"
    return completion.finish or _FINISH[completion.ending]


def _usage(completion: Completion) -> dict[str, Any]:
    counts = {"input_tokens": completion.input_tokens, "output_tokens": completion.output_tokens}
    usage: dict[str, Any] = {"billed_units": dict(counts), "tokens": dict(counts)}
    if completion.cached_tokens:
        usage["cached_tokens"] = completion.cached_tokens
    return usage


class FakeCohere(FakeProvider):
    """A fake Cohere v2 API: ``POST /v2/chat``, ``/v2/embed``, ``GET /v1/models[/{model}]``.

    The base URL has no version path (Cohere's paths carry theirs). Keys go in
    ``Authorization: Bearer``; answers carry a trial key's ``x-trial-endpoint-call-*``
    headers.
    """

    wire: ClassVar[EmbedWire] = wire_of(__name__)
