"""Tools and structured output in Cohere's v2 chat shapes (pure functions for `_cohere`).

Checked against Cohere's chat reference (the OpenAPI of ``POST /v2/chat``: ``ToolV2``,
``ToolCallV2``, the ``tool`` message's ``ToolContent``, ``ResponseFormatV2``, the
``tool_choice`` enum) and its tool-use guides (basic usage, usage patterns, streaming).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from runtime._chat import ChatRequest
from runtime._errors import ErrorKind, ProviderError
from runtime._tools import ToolCallDelta
from runtime.protocols._common import as_dict, as_str

if TYPE_CHECKING:
    from runtime._chat import Message
    from runtime._tools import Tool

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""The tool names Cohere takes: its 400 says ``A-Za-z0-9_`` and not a digit first."""
_CHOICES = {"none": "NONE", "required": "REQUIRED"}
_SCHEMA_INSTRUCTION = (
    "Answer with JSON only, no other text and no code fence, matching this JSON Schema:\n"
)
ERROR_PREFIX = "Error: "
"""How a failed tool's result begins: Cohere's tool content has no error flag."""


def tool_fields(request: ChatRequest) -> dict[str, object]:
    """The ``tools``, ``strict_tools``, ``tool_choice`` and ``response_format`` of a body.

    Raises:
        ProviderError: a tool's name has a character Cohere refuses (``bad_request``).
    """
    fields: dict[str, object] = {}
    tools = _offered(request)
    if tools:
        fields["tools"] = [_tool(tool) for tool in tools]
        if all(tool.strict for tool in tools):
            fields["strict_tools"] = True
    choice = _choice(request)
    if choice:
        fields["tool_choice"] = choice
    if request.output is not None and not request.tools:
        fields["response_format"] = {
            "type": "json_object",
            "json_schema": _open(request.output.schema()),
        }
    return fields


def _choice(request: ChatRequest) -> str | None:
    """The ``tool_choice`` to send: ``NONE``, ``REQUIRED`` or none at all.

    ``auto`` is Cohere's default (no field); ``required`` and a tool's name are
    ``REQUIRED`` (the named tool then being the only one offered).
    """
    choice = request.tool_choice
    if not request.tools or choice in (None, "auto"):
        return None
    return _CHOICES.get(choice, "REQUIRED")


def _offered(request: ChatRequest) -> tuple[Tool, ...]:
    """The tools to send: a named choice offers that tool alone (``REQUIRED`` forces it)."""
    named = [t for t in request.tools if t.name == request.tool_choice]
    return tuple(named) if named else request.tools


def _tool(tool: Tool) -> dict[str, object]:
    if not _NAME.fullmatch(tool.name):
        raise ProviderError(
            ErrorKind.BAD_REQUEST,
            f"Cohere takes tool names of letters, digits and '_' only, not {tool.name!r}: "
            "rename the tool",
        )
    function: dict[str, object] = {"name": tool.name, "parameters": dict(tool.parameters)}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _open(schema: dict[str, object]) -> object:
    """The output schema without ``additionalProperties``.

    Cohere's structured-output guide lists it as unsupported; callboard checks the answer
    against the full schema anyway.
    """
    return json.loads(
        json.dumps(schema),
        object_hook=lambda node: {k: v for k, v in node.items() if k != "additionalProperties"},
    )


def with_schema_instruction(system: str | None, request: ChatRequest) -> str | None:
    """Put the output schema into the system prompt when tools are offered.

    Cohere documents ``response_format`` as not supported together with ``tools``.
    """
    if request.output is None or not request.tools:
        return system
    instruction = _SCHEMA_INSTRUCTION + json.dumps(request.output.schema())
    return f"{system}\n\n{instruction}" if system else instruction


def assistant_turn(message: Message) -> dict[str, object]:
    """An assistant turn with calls: its text is the ``tool_plan``, its calls ``tool_calls``."""
    turn: dict[str, object] = {"role": "assistant", "tool_calls": [
        {"id": c.id, "type": "function",
         "function": {"name": c.name, "arguments": c.raw_arguments}}
        for c in message.tool_calls
    ]}  # fmt: skip
    if message.text:
        turn["tool_plan"] = message.text
    return turn


def tool_turn(message: Message) -> dict[str, object]:
    """A tool's result: ``tool_call_id`` and a text content block (``Error: `` on failure).

    Raises:
        ProviderError: the result holds an image (``bad_request``): Cohere's tool content
            takes text and documents only.
    """
    if message.has_images:
        raise ProviderError(
            ErrorKind.BAD_REQUEST,
            "Cohere takes text only in a tool result, so a result holding an image cannot be "
            "sent: describe the image in text",
        )
    text = ERROR_PREFIX + message.text if message.is_error else message.text
    return {
        "role": "tool",
        "tool_call_id": message.tool_call_id,
        "content": [{"type": "text", "text": text}],
    }


def call_delta(kind: str, index: int, delta: dict[str, object]) -> ToolCallDelta:
    """A ``tool-call-start`` (id, name, first arguments) or ``tool-call-delta`` (a fragment)."""
    call = as_dict(as_dict(delta.get("message")).get("tool_calls"))
    function = as_dict(call.get("function"))
    arguments = as_str(function.get("arguments"))
    if kind == "tool-call-start":
        return ToolCallDelta(
            index, as_str(call.get("id")) or None, as_str(function.get("name")) or None, arguments
        )
    return ToolCallDelta(index, arguments=arguments)
