"""What a call to `Callboard.ask` may say, checked and turned into the task's spec.

`AskOptions` names every keyword option of ``ask``, ``aask``, ``stream`` and ``astream``
once, for the type checker and for the caller's editor; `task_spec` checks what a call
gave (unknown options, bad values) before anything is sent, and builds the `TaskSpec`.
"""

from __future__ import annotations

import dataclasses
import difflib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict

from pydantic import BaseModel

from runtime._chat import NO_TUNING, Message, Progress, ToolResult, Tuning, with_tool_names
from runtime._structured import Schema
from runtime._task_spec import EmbedSpec, StreamSink, TaskSpec, is_traceparent, new_task_id
from runtime._tools import Tool, check_tool_choice

MessageLike = Message | ToolResult | Mapping[str, Any]
"""A turn of a conversation: a `Message`, a `ToolResult`, or ``{"role", "content"}``."""


class AskOptions(TypedDict, total=False):
    """The keyword options of `Callboard.ask`, ``aask``, ``stream`` and ``astream``.

    ``messages`` is the conversation (the prompt, if given, is appended as a user turn):
    `Message` values, `ToolResult` values, or mappings in OpenAI's shapes. ``system`` is
    the system prompt. ``temperature``, ``max_tokens``, ``top_p`` and ``stop`` override the
    role's and the provider's tuning. ``deadline_s`` bounds the whole task (default
    ``[timeouts] task_s``); ``workflow_id`` is carried into the audit log;
    ``on_progress`` is called with a `Progress` at each step, on the runtime's thread,
    and must return at once. ``tools`` are the `Tool` values the model may call, and
    ``tool_choice`` is ``"auto"``, ``"none"``, ``"required"`` or a tool's name.
    ``output`` is the shape the answer must have: a `Schema`, a pydantic model class or a
    JSON Schema mapping; the reply's ``parsed`` holds the validated value. ``tags`` label
    the task and ``tenant`` says whose it is (routing rules, budgets and metrics read
    them); tasks with the same ``session`` key stay on one provider while it serves.
    ``provider`` pins the task to that one provider (the role's chain and strategy are
    skipped; a provider the config does not define raises `UnknownProviderError`), and
    ``model`` asks it for that model instead of its configured one. ``request_id`` is the
    caller's id for the request, carried into the audit log; ``traceparent`` (a W3C
    value) is the parent of the task's span, instead of the caller's current span.
    """

    messages: Sequence[MessageLike]
    system: str | None
    temperature: float | None
    max_tokens: int | None
    top_p: float | None
    stop: Sequence[str] | None
    deadline_s: float | None
    workflow_id: str | None
    on_progress: Callable[[Progress], object] | None
    tools: Sequence[Tool]
    tool_choice: str | None
    output: Schema | type[BaseModel] | Mapping[str, Any] | None
    tags: Sequence[str]
    tenant: str | None
    session: str | None
    provider: str | None
    model: str | None
    request_id: str | None
    traceparent: str | None


OPTIONS = frozenset(AskOptions.__annotations__)


class EmbedOptions(TypedDict, total=False):
    """The keyword options of `Callboard.embed` and ``aembed``.

    ``dimensions`` shortens the vectors where the model can; ``input_type``
    (``"document"`` or ``"query"``) reaches the providers that take it. The others are
    those of `AskOptions`: ``deadline_s``, ``workflow_id``, ``tenant``, ``provider`` and
    ``model`` (pinning), ``request_id`` and ``traceparent``.
    """

    dimensions: int | None
    input_type: Literal["document", "query"] | None
    deadline_s: float | None
    workflow_id: str | None
    tenant: str | None
    provider: str | None
    model: str | None
    request_id: str | None
    traceparent: str | None


EMBED_OPTIONS = frozenset(EmbedOptions.__annotations__)


def task_spec(
    role: str,
    prompt: str | None,
    options: AskOptions,
    *,
    sink: StreamSink | None = None,
    on_broken: str = "raise",
) -> TaskSpec:
    """Check a call's options and return the spec of its task.

    Raises:
        TypeError: an option that does not exist, or a value of the wrong kind.
        ValueError: a value that cannot be used (no user turn, a bad deadline, a tool
            result that answers no call, a tool choice that names no tool...).
    """
    if on_broken not in ("raise", "restart"):
        raise ValueError(f"on_broken must be 'raise' or 'restart', not {on_broken!r}")
    if not options and prompt is not None:  # ask(role, prompt): nothing else to check
        return TaskSpec(
            task_id=new_task_id(),
            role=role,
            messages=(Message("user", prompt),),
            system=None,
            tuning=NO_TUNING,
            deadline_s=None,
            workflow_id=None,
            submitted_at=time.monotonic(),
            sink=sink,
            on_broken=on_broken,
        )
    _check_names(options)
    turns = [Message.coerce(m) for m in options.get("messages", ())]
    if prompt is not None:
        turns.append(Message("user", prompt))
    if not any(m.role == "user" for m in turns):
        raise ValueError("a task needs a prompt or at least one user message")
    deadline_s = _deadline(options.get("deadline_s"))
    tools = _tools(options.get("tools", ()))
    stop = options.get("stop")
    spec = TaskSpec(
        task_id=new_task_id(),
        role=role,
        messages=with_tool_names(turns),
        system=options.get("system"),
        tuning=Tuning(
            options.get("temperature"),
            options.get("max_tokens"),
            options.get("top_p"),
            tuple(stop) if stop is not None else None,
        ),
        deadline_s=deadline_s,
        workflow_id=options.get("workflow_id"),
        submitted_at=time.monotonic(),
        on_progress=options.get("on_progress"),
        sink=sink,
        on_broken=on_broken,
        tools=tools,
        tool_choice=check_tool_choice(options.get("tool_choice"), tools),
        output=_schema(options.get("output")),
        tags=_labels(options.get("tags", ())),
        tenant=_label(options.get("tenant"), "tenant"),
        session=_label(options.get("session"), "session"),
        request_id=_label(options.get("request_id"), "request_id"),
        traceparent=_traceparent(options.get("traceparent")),
    )
    return _pin(spec, options.get("provider"), options.get("model"))


def embed_spec(role: str, texts: Sequence[str], options: EmbedOptions) -> TaskSpec:
    """Check an embeddings call's options and return the spec of its task.

    Raises:
        TypeError: an option that does not exist, or a label that is not a string.
        ValueError: no texts, a bad deadline or traceparent, a model without a provider.
    """
    _check_names(options, EMBED_OPTIONS, "embed")
    if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("embed takes a non-empty list of strings")
    embed = EmbedSpec(tuple(texts), options.get("dimensions"), options.get("input_type"))
    spec = TaskSpec(
        task_id=new_task_id(),
        role=role,
        messages=(),
        system=None,
        tuning=Tuning(),
        deadline_s=_deadline(options.get("deadline_s")),
        workflow_id=options.get("workflow_id"),
        submitted_at=time.monotonic(),
        embed=embed,
        tenant=_label(options.get("tenant"), "tenant"),
        request_id=_label(options.get("request_id"), "request_id"),
        traceparent=_traceparent(options.get("traceparent")),
    )
    return _pin(spec, options.get("provider"), options.get("model"))


def _check_names(
    options: Mapping[str, object], known: frozenset[str] = OPTIONS, call: str = "ask"
) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        name = unknown[0]
        hint = difflib.get_close_matches(name, known, n=1)
        tail = f'; did you mean "{hint[0]}"?' if hint else ""
        raise TypeError(f"{call}() got an unexpected keyword argument {name!r}{tail}")


def _deadline(deadline_s: float | None) -> float | None:
    if deadline_s is not None and deadline_s <= 0:
        raise ValueError(f"deadline_s must be positive, not {deadline_s}")
    return deadline_s


def _tools(tools: Sequence[Tool]) -> tuple[Tool, ...]:
    if isinstance(tools, Tool) or not all(isinstance(t, Tool) for t in tools):
        raise TypeError("tools takes a list of Tool values")
    names = [t.name for t in tools]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ValueError(f"tool names must differ: {', '.join(doubled)} given twice")
    return tuple(tools)


def _labels(tags: Sequence[str]) -> tuple[str, ...]:
    if isinstance(tags, str) or not all(isinstance(tag, str) and tag for tag in tags):
        raise TypeError("tags takes a list of non-empty strings")
    return tuple(dict.fromkeys(tags))


def _label(value: str | None, name: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise TypeError(f"{name} must be a non-empty string or None")
    return value


def _pin(spec: TaskSpec, provider: str | None, model: str | None) -> TaskSpec:
    """``spec`` pinned to ``provider`` and its ``model``; a model alone names no provider."""
    if provider is None and model is None:
        return spec
    if provider is None:
        raise ValueError("model= asks a pinned provider for a model: give provider= too")
    provider, model = _label(provider, "provider"), _label(model, "model")
    return dataclasses.replace(spec, provider=provider, model=model)


def _traceparent(value: str | None) -> str | None:
    if value is not None and (not isinstance(value, str) or not is_traceparent(value)):
        raise ValueError(
            f"traceparent must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>), not {value!r}"
        )
    return value


def _schema(output: Schema | type[BaseModel] | Mapping[str, Any] | None) -> Schema | None:
    if output is None or isinstance(output, Schema):
        return output
    return Schema(output)
