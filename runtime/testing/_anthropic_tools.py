"""What the fake Anthropic API checks in tool definitions, tool turns and structured output.

Each check raises `AskError` with the message the real Messages API sends in its 400
``invalid_request_error``, as seen in public bug reports and client code that quote it:

- ``tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`` and
  ``tools: Tool names must be unique.``; a missing or non-object ``input_schema`` in the
  same pydantic wording (the SDK's ``InputSchemaTyped`` requires ``type: "object"``);
- ``tool_choice may only be specified while providing tools.``, and
  ``Tool 'NAME' not found in provided tools`` for a ``{"type": "tool"}`` naming none;
- ``Requests which include `tool_use` or `tool_result` blocks must define tools.``;
- ``messages.N: `tool_use` ids were found without `tool_result` blocks immediately after:
  IDS. Each `tool_use` block must have a corresponding `tool_result` block in the next
  message.`` (also when text comes before the results: they must come first);
- ``messages.N.content.M: unexpected `tool_use_id` found in `tool_result` blocks: ID.
  Each `tool_result` block must have a corresponding `tool_use` block in the previous
  message.``;
- ``messages: text content blocks must be non-empty``;
- ``output_config.format.schema: For 'object' type, 'additionalProperties' must be
  explicitly set to false`` (``tools.N.custom: ...`` for a strict tool), and
  ``output_config.format: Extra inputs are not permitted`` from models without structured
  outputs (seen from Bedrock's Anthropic endpoint; the GA list is the Claude 4.5 models
  and later).

Consecutive turns of one role are combined first, as the API says it does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from runtime.testing._completion import AskError

_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_CHOICES = {"auto": "auto", "any": "required", "tool": "", "none": "none"}
"""Anthropic's ``tool_choice`` types, in callboard's words (``tool``: the tool's name)."""
_NO_STRUCTURED_OUTPUT = (
    "claude-3",
    "claude-opus-4-0",
    "claude-opus-4-1",
    "claude-opus-4-2025",
    "claude-sonnet-4-0",
    "claude-sonnet-4-2025",
)
"""Model names (prefixes) from before structured outputs."""

Block = tuple[int, int, Mapping[str, Any]]
"""A content block with where it is: its message's index and its own."""


def read_tools(value: Any) -> tuple[str, ...]:
    """Read ``tools``: the names of the client tools (server tools are let through)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise AskError("tools: Input should be a valid list", "tools")
    names = []
    for i, tool in enumerate(value):
        if not isinstance(tool, Mapping):
            raise AskError(f"tools.{i}: Input should be a valid dictionary", "tools")
        if tool.get("type") not in (None, "custom"):
            continue  # a server tool (web search, code execution...)
        names.append(_tool_name(tool, f"tools.{i}.custom"))
    if len(set(names)) != len(names):
        raise AskError("tools: Tool names must be unique.", "tools")
    return tuple(names)


def _tool_name(tool: Mapping[str, Any], where: str) -> str:
    name = tool.get("name")
    if name is None:
        raise AskError(f"{where}.name: Field required", "tools")
    if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
        raise AskError(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
    schema = tool.get("input_schema")
    if schema is None:
        raise AskError(f"{where}.input_schema: Field required", "tools")
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        raise AskError(f"{where}.input_schema.type: Input should be 'object'", "tools")
    if tool.get("strict") is True:
        check_closed(schema, where)
    return name


def read_tool_choice(value: Any, names: tuple[str, ...], *, tools: bool) -> str | None:
    """Read ``tool_choice`` into callboard's words: auto, none, required or a tool's name."""
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, Mapping) else None
    if not isinstance(kind, str) or kind not in _CHOICES:
        raise AskError(
            f"tool_choice: Input tag '{kind}' found using 'type' does not match any of the "
            "expected tags: 'auto', 'any', 'tool', 'none'",
            "tool_choice",
        )
    if not tools:
        raise AskError("tool_choice may only be specified while providing tools.")
    parallel = value.get("disable_parallel_tool_use")
    if parallel is not None and not isinstance(parallel, bool):
        where = f"tool_choice.{kind}.disable_parallel_tool_use"
        raise AskError(f"{where}: Input should be a valid boolean", "tool_choice")
    if kind != "tool":
        return _CHOICES[kind]
    name = value.get("name")
    if not isinstance(name, str):
        raise AskError("tool_choice.tool.name: Field required", "tool_choice")
    if name not in names:
        raise AskError(f"Tool '{name}' not found in provided tools", "tool_choice")
    return name


def read_output_format(body: Mapping[str, Any], model: str) -> bool:
    """Whether the request asks for structured output (``output_config.format``).

    The beta's top-level ``output_format`` is still taken, as the API does for now.
    """
    config = body.get("output_config")
    where = "output_config.format"
    form = config.get("format") if isinstance(config, Mapping) else None
    if form is None and body.get("output_format") is not None:
        where, form = "output_format", body["output_format"]
    if form is None:
        return False
    if model.startswith(_NO_STRUCTURED_OUTPUT):
        raise AskError(f"{where}: Extra inputs are not permitted", where)
    if not isinstance(form, Mapping) or form.get("type") != "json_schema":
        raise AskError(f"{where}.type: Input should be 'json_schema'", where)
    schema = form.get("schema")
    if not isinstance(schema, Mapping):
        raise AskError(f"{where}.schema: Field required", where)
    check_closed(schema, f"{where}.schema")
    return True


def check_closed(schema: Any, where: str) -> None:
    """Refuse a schema with an object that does not say ``additionalProperties: false``."""
    if isinstance(schema, list):
        for item in schema:
            check_closed(item, where)
    if not isinstance(schema, Mapping):
        return
    kind = schema.get("type")
    if (kind == "object" or (isinstance(kind, list) and "object" in kind)) and schema.get(
        "additionalProperties"
    ) is not False:
        raise AskError(
            f"{where}: For 'object' type, 'additionalProperties' must be explicitly set to false"
        )
    for value in schema.values():
        check_closed(value, where)


def check_tool_turns(messages: list[Any], *, tools: bool) -> None:
    """Refuse tool blocks as the Messages API does (see the module docstring)."""
    turns = _combined(messages)
    blocks = [block for _, _, turn in turns for block in turn]
    if any(b.get("type") in ("tool_use", "tool_result") for _, _, b in blocks) and not tools:
        raise AskError(
            "Requests which include `tool_use` or `tool_result` blocks must define tools."
        )
    for i, j, block in blocks:
        _check_block(block, f"messages.{i}.content.{j}")
    asked: list[str] = []
    asker = 0
    for first, role, turn in turns:
        _check_answers(turn, asked, asker)
        _check_results(turn, set(asked) if role == "user" else set())
        calls = [(i, _id(b, "id")) for i, _, b in turn if b.get("type") == "tool_use"]
        asked = [call_id for _, call_id in calls]
        asker = calls[-1][0] if calls else first
    _check_answers([], asked, asker)


def _combined(messages: list[Any]) -> list[tuple[int, str, list[Block]]]:
    """The turns, consecutive messages of one role joined: (first index, role, blocks)."""
    turns: list[tuple[int, str, list[Block]]] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, Mapping) else None
        if not isinstance(role, str):
            continue
        if not turns or turns[-1][1] != role:
            turns.append((i, role, []))
        turns[-1][2].extend(_blocks(i, message.get("content")))
    return turns


def _blocks(i: int, content: Any) -> Iterator[Block]:
    for j, block in enumerate(content if isinstance(content, list) else ()):
        if isinstance(block, Mapping):
            yield i, j, block


def _check_block(block: Mapping[str, Any], where: str) -> None:
    kind = block.get("type")
    if kind == "text" and block.get("text") == "":
        raise AskError("messages: text content blocks must be non-empty")
    if kind == "tool_use":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise AskError(f"{where}.tool_use.id: Field required")
        if not isinstance(block.get("input"), Mapping):
            raise AskError(f"{where}.tool_use.input: Input should be a valid dictionary")
    if kind == "tool_result" and not isinstance(block.get("tool_use_id"), str):
        raise AskError(f"{where}.tool_result.tool_use_id: Field required")


def _check_answers(turn: list[Block], asked: list[str], asker: int) -> None:
    """Every call of the turn before needs its result at the start of this turn."""
    if not asked:
        return
    leading = []
    for _, _, block in turn:
        if block.get("type") != "tool_result":
            break
        leading.append(block.get("tool_use_id"))
    missing = [call_id for call_id in asked if call_id not in leading]
    if missing:
        raise AskError(
            f"messages.{asker}: `tool_use` ids were found without `tool_result` blocks "
            f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message."
        )


def _check_results(turn: list[Block], asked: set[str]) -> None:
    """Every result must answer a call of the turn just before."""
    for i, j, block in turn:
        if block.get("type") == "tool_result" and block.get("tool_use_id") not in asked:
            raise AskError(
                f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                f"blocks: {block.get('tool_use_id')}. Each `tool_result` block must have a "
                "corresponding `tool_use` block in the previous message."
            )


def _id(block: Mapping[str, Any], key: str) -> str:
    value = block.get(key)
    return value if isinstance(value, str) else ""


def result_texts(messages: list[Any]) -> Iterator[str]:
    """The text of every ``tool_result`` (a string, or text blocks): it is input, too."""
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        for _, _, block in _blocks(0, content):
            if block.get("type") != "tool_result":
                continue
            inner = block.get("content")
            if isinstance(inner, str):
                yield inner
            for _, _, part in _blocks(0, inner):
                if isinstance(part.get("text"), str):
                    yield part["text"]
