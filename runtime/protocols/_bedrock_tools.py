"""Tools and structured output on Bedrock's Converse API: the request blocks and the answer's.

The shapes are those of the ``bedrock-runtime`` service model (botocore, API version
2023-09-30): ``toolConfig`` is ``{"tools": [{"toolSpec": {"name", "description",
"inputSchema": {"json": schema}, "strict"}}], "toolChoice": {"auto": {}} | {"any": {}} |
{"tool": {"name"}}}``; a call is a ``{"toolUse": {"toolUseId", "name", "input"}}`` block of
an assistant turn, its result a ``{"toolResult": {"toolUseId", "content": [{"text"} |
{"image"}], "status": "error"}}`` block of the next user turn (every result of one turn
in that one turn: Bedrock refuses roles that do not alternate). Tool names match
``[a-zA-Z0-9_-]+`` and ids ``[a-zA-Z0-9_.:-]+`` (at most 64 characters); an id from another
provider that does not is rewritten the same way in its call and its result.

Tool choice. Converse has no ``none``: ``none`` sends no ``toolConfig`` at all, so the
model cannot call a tool, unless the conversation already holds ``toolUse`` or
``toolResult`` blocks, which Bedrock refuses without a ``toolConfig`` ("The toolConfig
field must be defined when using toolUse and toolResult content blocks."): then the
tools go with the default choice (``auto``), the nearest form Bedrock can express, and
the model may still call one. ``auto`` sends no ``toolChoice`` (it is the default, and
some models take no other), ``required`` is ``{"any": {}}`` and a tool's name
``{"tool": {"name"}}`` (Anthropic Claude and Amazon Nova only; other models answer
``ValidationException``, as they do for tools at all when they take none). A conversation
with tool blocks but no tools offered gets the tools its calls name, with an open
schema, since Bedrock wants a ``toolConfig`` and callboard has no other.

Structured output. Bedrock's own mechanism is ``outputConfig.textFormat`` (``{"type":
"json_schema", "structure": {"jsonSchema": {"schema": "<the schema as JSON text>",
"name"}}}``, constrained decoding), documented in the user guide ("Get validated JSON
results from models") for select models only: of Anthropic's, Claude Haiku, Sonnet and
Opus 4.5 and later. Those models get it (and ``strict`` on tools that ask for it). Models
that take no tool choice (Meta's Llama: "This model doesn't support the
toolConfig.toolChoice.any field") or no tools (DeepSeek-R1) get the schema in an
instruction at the end of the system prompt, and callboard checks the answer. Every other
model gets a forced tool, `OUTPUT_TOOL`, whose input schema is the answer's: the only tool
with ``{"any": {}}`` (which more models take than ``{"tool"}``), or beside the caller's
tools; its call comes back as the answer's text, not as a tool call. A forced tool needs
a schema of an object (Bedrock: "The value at
toolConfig.tools.0.toolSpec.inputSchema.json.type must be one of the following:
object.").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from runtime._chat import Message
from runtime._errors import ErrorKind, ProviderError
from runtime._tools import Tool, ToolCall, ToolCallBuilder, ToolCallDelta
from runtime.protocols._common import as_dict, as_str, malformed

if TYPE_CHECKING:
    from runtime._chat import ChatRequest
    from runtime._structured import Schema

OUTPUT_TOOL = "callboard_structured_output"
"""The tool a model without native structured output is made to call with its answer."""

_NATIVE_OUTPUT = re.compile(r"anthropic\.claude-(?:opus|sonnet|haiku)-(\d+)(?:-(\d{1,2}))?(?!\d)")
_FIRST_NATIVE = (4, 5)
_NO_TOOL_CHOICE = re.compile(r"(?:^|[./])(?:meta\.|deepseek\.r1)")
_BAD_ID = re.compile(r"[^a-zA-Z0-9_.:-]")
_OPEN_SCHEMA: dict[str, object] = {"type": "object", "properties": {}}
_NO_OUTPUT = "The tool failed without output."


def native_output(model: str) -> bool:
    """Whether ``model`` takes ``outputConfig.textFormat`` (and ``strict`` tools).

    An inference profile or an ARN names its model inside; any other model id is not
    known to.
    """
    found = _NATIVE_OUTPUT.search(model)
    if found is None:
        return False
    return (int(found[1]), int(found[2] or 0)) >= _FIRST_NATIVE


def output_mode(model: str) -> str:
    """How ``model`` is asked for structured output: ``native``, ``tool`` or ``instruction``."""
    if native_output(model):
        return "native"
    return "instruction" if _NO_TOOL_CHOICE.search(model) else "tool"


def output_instruction(request: ChatRequest) -> dict[str, object] | None:
    """The system block that asks for the schema, for models asked by instruction."""
    if request.output is None or output_mode(request.model) != "instruction":
        return None
    schema = json.dumps(request.output.schema(), separators=(",", ":"))
    return {
        "text": f"Answer with JSON only, no other text: a {request.output.name} object "
        f"matching this JSON Schema: {schema}"
    }


def wire_id(call_id: str) -> str:
    """A call id as Bedrock takes it: ``[a-zA-Z0-9_.:-]``, at most 64 characters."""
    return _BAD_ID.sub("_", call_id)[:64] or "call"


def tool_use_block(call: ToolCall) -> dict[str, object]:
    """An assistant turn's call: ``{"toolUse": {"toolUseId", "name", "input"}}``."""
    use = {"toolUseId": wire_id(call.id), "name": call.name, "input": dict(call.arguments)}
    return {"toolUse": use}


def tool_result_block(message: Message, content: list[dict[str, object]]) -> dict[str, object]:
    """A tool turn's ``{"toolResult"}`` block, ``content`` being its rendered parts.

    An error result says so with ``status``; Bedrock refuses one without content, so an
    empty one gets a line saying the tool failed.
    """
    if message.is_error and not content:
        content = [{"text": _NO_OUTPUT}]
    result: dict[str, object] = {
        "toolUseId": wire_id(message.tool_call_id or ""),
        "content": content,
    }
    if message.is_error:
        result["status"] = "error"
    return {"toolResult": result}


def has_tool_blocks(messages: Iterable[Message]) -> bool:
    """Whether the conversation holds calls or results (Bedrock then wants a ``toolConfig``)."""
    return any(m.tool_calls or m.role == "tool" for m in messages)


def tool_config(request: ChatRequest) -> dict[str, object] | None:
    """The request's ``toolConfig``, or ``None`` when it needs none.

    Raises:
        ProviderError: ``bad_request`` for structured output through the forced tool
            with a schema that is not of an object.
    """
    forced = request.output is not None and output_mode(request.model) == "tool"
    history = has_tool_blocks(request.messages)
    tools = [] if request.tool_choice == "none" and (forced or not history) else request.tools
    specs = [_tool_spec(tool, strict=native_output(request.model)) for tool in tools]
    if not specs and history and not forced:
        specs = [_tool_spec(tool, strict=False) for tool in _called_tools(request.messages)]
    if forced and request.output is not None:
        specs.append(_output_spec(request.output))
    if not specs:
        return None
    config: dict[str, object] = {"tools": specs}
    choice = _choice(request.tool_choice if tools else None, forced=forced)
    if choice is not None:
        config["toolChoice"] = choice
    return config


def _choice(choice: str | None, *, forced: bool) -> dict[str, object] | None:
    if choice not in (None, "auto", "none", "required"):
        return {"tool": {"name": choice}}
    if forced or choice == "required":
        return {"any": {}}
    return None


def _tool_spec(tool: Tool, *, strict: bool) -> dict[str, object]:
    spec: dict[str, object] = {"name": tool.name, "inputSchema": {"json": dict(tool.parameters)}}
    if tool.description:
        spec["description"] = tool.description
    if tool.strict and strict:
        spec["strict"] = True
    return {"toolSpec": spec}


def _called_tools(messages: Iterable[Message]) -> list[Tool]:
    names = dict.fromkeys(call.name for m in messages for call in m.tool_calls)
    return [Tool(name, parameters=_OPEN_SCHEMA) for name in names]


def _output_spec(output: Schema) -> dict[str, object]:
    schema = output.schema()
    if schema.get("type") != "object":
        raise ProviderError(
            ErrorKind.BAD_REQUEST,
            "Bedrock gives structured output for this model through a tool, whose input "
            "must be an object: give a schema of an object (a pydantic model is one)",
        )
    spec = {
        "name": OUTPUT_TOOL,
        "description": f"Give your answer: its input is the answer, a {output.name} object.",
        "inputSchema": {"json": schema},
    }
    return {"toolSpec": spec}


def output_config(request: ChatRequest) -> dict[str, object] | None:
    """The request's ``outputConfig``, for models with native structured output."""
    if request.output is None or output_mode(request.model) != "native":
        return None
    definition = {
        "schema": json.dumps(request.output.schema(), separators=(",", ":")),
        "name": request.output.name,
    }
    structure = {"jsonSchema": definition}
    return {"textFormat": {"type": "json_schema", "structure": structure}}


def answer_parts(content: Sequence[object]) -> tuple[str, tuple[ToolCall, ...], str | None]:
    """Read an answer's content blocks: its text, its calls, and the forced tool's answer.

    Raises:
        ProviderError: ``malformed_response`` for a call without a name or whose input is
            not an object.
    """
    texts: list[str] = []
    calls: list[ToolCall] = []
    answer: str | None = None
    for block in content:
        fields = as_dict(block)
        texts.append(as_str(fields.get("text")))
        if "toolUse" not in fields:
            continue
        use = as_dict(fields["toolUse"])
        if as_str(use.get("name")) == OUTPUT_TOOL:
            answer = json.dumps(use.get("input"))
        else:
            calls.append(_call(use, len(calls)))
    return "".join(texts), tuple(calls), answer


def _call(use: dict[str, object], index: int) -> ToolCall:
    name = as_str(use.get("name"))
    arguments = use.get("input", {})
    if not name:
        raise malformed(f"toolUse block {index} has no name")
    if not isinstance(arguments, dict):
        kind = type(arguments).__name__
        raise malformed(f"tool call {name!r}: its input must be a JSON object, not {kind}")
    return ToolCall.of(as_str(use.get("toolUseId")) or f"call_{index}", name, arguments)


class StreamedTools:
    """The tool blocks of one ``converse-stream`` answer, by ``contentBlockIndex``.

    A call's ``contentBlockStart`` names it (``start.toolUse``: ``toolUseId``, ``name``);
    its ``contentBlockDelta`` events carry its input as JSON text fragments
    (``delta.toolUse.input``). The forced tool's fragments are the answer's text.
    """

    def __init__(self) -> None:
        self._calls = ToolCallBuilder()
        self._ordinals: dict[int, int] = {}
        self._answer_blocks: set[int] = set()
        self._answer: list[str] = []

    def start(self, block: int, start: dict[str, object]) -> list[str | ToolCallDelta]:
        """Take a ``contentBlockStart``: a call's first piece (its id and name)."""
        use = as_dict(start.get("toolUse"))
        name = as_str(use.get("name"))
        if not use:
            return []
        if name == OUTPUT_TOOL:
            self._answer_blocks.add(block)
            return []
        ordinal = self._ordinals.setdefault(block, len(self._ordinals))
        piece = ToolCallDelta(ordinal, as_str(use.get("toolUseId")) or None, name or None)
        self._calls.add(piece)
        return [piece]

    def delta(self, block: int, fragment: str) -> list[str | ToolCallDelta]:
        """Take a ``delta.toolUse.input`` fragment of the call started at ``block``.

        Raises:
            ProviderError: ``malformed_response`` when no call started there.
        """
        if block in self._answer_blocks:
            self._answer.append(fragment)
            return [fragment] if fragment else []
        if block not in self._ordinals:
            raise malformed(f"tool input for content block {block}, where no toolUse started")
        piece = ToolCallDelta(self._ordinals[block], arguments=fragment)
        self._calls.add(piece)
        return [piece]

    def answer(self) -> str | None:
        """The forced tool's input, as the answer's text (``None``: it was not called)."""
        return "".join(self._answer) if self._answer_blocks else None

    def calls(self) -> tuple[ToolCall, ...]:
        """The whole calls, in order.

        Raises:
            ProviderError: ``malformed_response`` for a call whose input is not an object.
        """
        try:
            return self._calls.calls()
        except ValueError as exc:
            raise malformed(f"streamed tool call: {exc}") from None
