"""Tools on the fake Bedrock: what each model takes, what Bedrock refuses, how a model calls.

Shapes, from botocore's ``bedrock-runtime`` service model (API version 2023-09-30):
``toolConfig`` ``{"tools": [{"toolSpec": {"name", "description", "inputSchema": {"json"},
"strict"}}] (at least one), "toolChoice": {"auto": {}} | {"any": {}} | {"tool": {"name"}}}``,
tool names ``[a-zA-Z0-9_-]+`` of at most 64 characters; ``toolUse`` blocks ``{"toolUseId",
"name", "input"}`` in assistant turns and ``toolResult`` blocks ``{"toolUseId", "content":
[{"text"} | {"json"} | {"image"} | {"document"}], "status": "success" | "error"}`` in user
turns; ``outputConfig`` ``{"textFormat": {"type": "json_schema", "structure":
{"jsonSchema": {"schema": "<JSON text>", "name", "description"}}}}``.

Which model takes what, from the API reference's notes (``SpecificToolChoice``: "Only
supported by Anthropic Claude 3 and Amazon Nova models") and from the refusals Bedrock
users quote: Claude and Nova take every tool choice; Mistral Large ``auto`` and ``any``;
Llama takes tools but no tool choice, and no tools while streaming; DeepSeek-R1 takes no
tools. The refusals reproduced, each the ``ValidationException`` message users quote:
"This model doesn't support tool use.", "This model doesn't support tool use in streaming
mode.", "This model doesn't support the toolConfig.toolChoice.any field. Remove
toolConfig.toolChoice.any and try again." (and ``.tool``), "The value at
toolConfig.tools.0.toolSpec.inputSchema.json.type must be one of the following: object.",
"The toolConfig field must be defined when using toolUse and toolResult content blocks.",
"Expected toolResult blocks at messages.2.content for the following Ids: ...", "The
number of toolResult blocks at messages.2.content exceeds the number of toolUse blocks of
previous turn.", "The content field at messages.2.content.0.toolResult cannot be empty
when status value is error.", "A conversation must alternate between user and assistant
roles. ...", and, for Llama and Mistral, "messages.3.content: Conversation blocks and tool
result blocks cannot be provided in the same turn." (``tool use blocks`` for an assistant
turn). Constraint violations use AWS's generic "1 validation error detected: ..." form.

Not reproduced, for want of the real message: a ``toolChoice`` naming a tool that is not
offered, and ``outputConfig`` sent to a model without structured output (both accepted).
A model told to call a tool (``{"tool"}``, or ``{"any"}`` with one tool) whose script has
no call calls it, with the scripted text as input when that is a JSON object.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.testing._completion import AskError, ChatAsk, random_id
from runtime.testing._script import Answer, ToolUse

TOOL_ID_PREFIX = "tooluse_"
"""Bedrock's call ids: ``tooluse_`` and 22 letters and digits."""

_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_CHOICES = {"auto": "auto", "any": "required"}
_SAME_TURN = "Conversation blocks and tool {} blocks cannot be provided in the same turn."
_ALTERNATE = (
    "A conversation must alternate between user and assistant roles. Make sure the "
    "conversation alternates between user and assistant roles and try again."
)


@dataclass(frozen=True, slots=True)
class ToolSupport:
    """What one model takes: tools at all, tools while streaming, and which tool choices."""

    tools: bool = True
    streamed: bool = True
    choices: frozenset[str] = frozenset({"auto"})
    mixed_turns: bool = True
    """Whether a turn may hold text beside its ``toolUse`` or ``toolResult`` blocks."""


_EVERY_CHOICE = frozenset({"auto", "any", "tool"})
_SUPPORT: tuple[tuple[str, ToolSupport], ...] = (
    ("anthropic.", ToolSupport(choices=_EVERY_CHOICE)),
    ("amazon.nova", ToolSupport(choices=_EVERY_CHOICE)),
    ("mistral.", ToolSupport(choices=frozenset({"auto", "any"}), mixed_turns=False)),
    ("meta.", ToolSupport(streamed=False, mixed_turns=False)),
    ("deepseek.r1", ToolSupport(tools=False)),
)
_UNLISTED = ToolSupport(choices=_EVERY_CHOICE)


def tool_support(model: str) -> ToolSupport:
    """What ``model`` (a foundation model id) takes; a model not listed takes everything."""
    return next((s for prefix, s in _SUPPORT if model.startswith(prefix)), _UNLISTED)


def invalid(where: str, rule: str, value: Any = None) -> str:
    """AWS's message for a value that breaks a constraint of the service model."""
    shown = "null" if value is None else f"'{value}'"
    return (
        f"1 validation error detected: Value {shown} at '{where}' failed to satisfy "
        f"constraint: {rule}"
    )


@dataclass(frozen=True, slots=True)
class ToolAsk:
    """What a request's ``toolConfig`` and ``outputConfig`` asked for, in callboard's words."""

    tools: tuple[str, ...] = ()
    choice: str | None = None
    json_schema: bool = False


def read_tools(body: Mapping[str, Any], model: str, *, stream: bool) -> ToolAsk:
    """Read ``toolConfig`` and ``outputConfig``, refusing what ``model`` does not take.

    Raises:
        AskError: Bedrock would answer 400 ``ValidationException``.
    """
    schema = _read_output_config(body.get("outputConfig"))
    config = body.get("toolConfig")
    if config is None:
        return ToolAsk(json_schema=schema)
    support = tool_support(model)
    if not support.tools:
        raise AskError("This model doesn't support tool use.")
    if stream and not support.streamed:
        raise AskError("This model doesn't support tool use in streaming mode.")
    config = config if isinstance(config, Mapping) else {}
    names = _read_specs(config.get("tools"))
    choice = _read_choice(config.get("toolChoice"), support)
    forced = choice not in (None, "auto", "required") or (choice == "required" and len(names) == 1)
    return ToolAsk(names, choice, json_schema=schema or forced)


def _read_specs(tools: Any) -> tuple[str, ...]:
    if not isinstance(tools, list) or not tools:
        rule = "Member must have length greater than or equal to 1"
        raise AskError(invalid("toolConfig.tools", rule, "[]" if tools == [] else None))
    names = []
    for i, tool in enumerate(tools):
        spec = tool.get("toolSpec") if isinstance(tool, Mapping) else None
        if not isinstance(spec, Mapping):
            raise AskError(
                invalid(f"toolConfig.tools.{i}.member.toolSpec", "Member must not be null")
            )
        name = spec.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
            rule = "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+"
            raise AskError(invalid(f"toolConfig.tools.{i}.member.toolSpec.member.name", rule, name))
        schema = spec.get("inputSchema")
        json_schema = schema.get("json") if isinstance(schema, Mapping) else None
        if not isinstance(json_schema, Mapping) or json_schema.get("type") != "object":
            raise AskError(
                f"The value at toolConfig.tools.{i}.toolSpec.inputSchema.json.type must be "
                "one of the following: object."
            )
        names.append(name)
    return tuple(names)


def _read_choice(value: Any, support: ToolSupport) -> str | None:
    if value is None:
        return None
    kinds = [k for k in ("auto", "any", "tool") if isinstance(value, Mapping) and k in value]
    if len(kinds) != 1:
        raise AskError("The ToolChoice at toolConfig.toolChoice must set one of: auto, any, tool.")
    kind = kinds[0]
    if kind not in support.choices:
        field = f"toolConfig.toolChoice.{kind}"
        raise AskError(
            f"This model doesn't support the {field} field. Remove {field} and try again."
        )
    if kind != "tool":
        return _CHOICES[kind]
    name = value["tool"].get("name") if isinstance(value["tool"], Mapping) else None
    if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
        rule = "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+"
        raise AskError(invalid("toolConfig.toolChoice.tool.name", rule, name))
    return name


def _read_output_config(value: Any) -> bool:
    if value is None:
        return False
    text_format = value.get("textFormat") if isinstance(value, Mapping) else None
    if not isinstance(text_format, Mapping):
        return False
    if text_format.get("type") != "json_schema":
        rule = "Member must satisfy enum value set: [json_schema]"
        raise AskError(invalid("outputConfig.textFormat.type", rule, text_format.get("type")))
    structure = text_format.get("structure")
    definition = structure.get("jsonSchema") if isinstance(structure, Mapping) else None
    schema = definition.get("schema") if isinstance(definition, Mapping) else None
    if not isinstance(schema, str):
        where = "outputConfig.textFormat.structure.jsonSchema.schema"
        raise AskError(invalid(where, "Member must not be null"))
    return True


def block_text(kind: str, value: Any, where: str) -> str:
    """Check a ``toolUse`` or ``toolResult`` block; return its text (for the token count).

    Raises:
        AskError: a required member is missing.
    """
    fields = value if isinstance(value, Mapping) else {}
    required = ("toolUseId", "name", "input") if kind == "toolUse" else ("toolUseId", "content")
    for member in required:
        if fields.get(member) is None:
            raise AskError(invalid(f"{where}.{kind}.{member}", "Member must not be null"))
    if kind == "toolUse":
        return json.dumps(fields["input"])
    content = fields["content"] if isinstance(fields["content"], list) else []
    if fields.get("status") == "error" and not content:
        raise AskError(
            f"The content field at {where}.toolResult cannot be empty when status value is error."
        )
    return "\n".join(
        text
        for item in content
        if isinstance(item, Mapping) and isinstance(text := item.get("text"), str)
    )


def check_tool_turns(messages: list[Any], model: str, *, configured: bool) -> None:
    """Refuse a conversation whose roles, calls and results Bedrock would refuse.

    Raises:
        AskError: roles that do not alternate, tool blocks without a ``toolConfig``,
            results that answer no call of the turn before, calls left unanswered.
    """
    pending: list[str] = []
    for i, message in enumerate(messages):
        if i and message.get("role") == messages[i - 1].get("role"):
            raise AskError(_ALTERNATE)
        content = message.get("content")
        uses = _ids(content, "toolUse")
        results = _ids(content, "toolResult")
        if (uses or results) and not configured:
            raise AskError(
                "The toolConfig field must be defined when using toolUse and toolResult "
                "content blocks."
            )
        _check_answers(pending, results, f"messages.{i}.content")
        _check_mixed(content, model, uses, results, f"messages.{i}.content")
        pending = uses


def _ids(content: list[Any], kind: str) -> list[str]:
    return [
        str(block[kind].get("toolUseId"))
        for block in content
        if isinstance(block, Mapping) and isinstance(block.get(kind), Mapping)
    ]


def _check_answers(pending: list[str], results: list[str], where: str) -> None:
    if len(results) > len(pending) or not set(results) <= set(pending):
        raise AskError(
            f"The number of toolResult blocks at {where} exceeds the number of toolUse "
            "blocks of previous turn."
        )
    missing = [call_id for call_id in pending if call_id not in results]
    if missing:
        raise AskError(
            f"Expected toolResult blocks at {where} for the following Ids: {', '.join(missing)}"
        )


def _check_mixed(
    content: list[Any], model: str, uses: list[str], results: list[str], where: str
) -> None:
    if tool_support(model).mixed_turns or not (uses or results):
        return
    if any(isinstance(b, Mapping) and "text" in b for b in content):
        raise AskError(f"{where}: {_SAME_TURN.format('use' if uses else 'result')}")


def model_answer(ask: ChatAsk, answer: Answer) -> Answer:
    """The scripted answer as a Bedrock model gives it: calls with ``tooluse_`` ids.

    A model told to call one tool whose script calls none calls it, with the script's
    text as its input when that is a JSON object (else no input), and says nothing else.
    """
    calls = tuple(
        call if call.id else dataclasses.replace(call, id=random_id(TOOL_ID_PREFIX, 22))
        for call in answer.tool_calls
    )
    forced = _forced_tool(ask)
    if forced is None or answer.refusal or any(call.name in ask.tools for call in calls):
        return dataclasses.replace(answer, tool_calls=calls)
    call = ToolUse(forced, _json_object(answer.text), random_id(TOOL_ID_PREFIX, 22))
    return dataclasses.replace(answer, text="", tool_calls=(call,))


def _forced_tool(ask: ChatAsk) -> str | None:
    if ask.tool_choice in ask.tools:
        return ask.tool_choice
    if ask.tool_choice == "required" and len(ask.tools) == 1:
        return ask.tools[0]
    return None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
