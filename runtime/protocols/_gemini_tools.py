"""Gemini's shapes for tools and structured output in a ``generateContent`` request.

Pure functions for `runtime.protocols._gemini` (whose docstring tells the mapping and why):
a call as a ``functionCall`` part, a result as a ``functionResponse`` part, the offered
tools and the tool choice, and the schema an answer must match.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime._chat import ChatRequest, Message
    from runtime._tools import Tool, ToolCall

_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
SKIP_SIGNATURE = "skip_thought_signature_validator"
"""The ``thoughtSignature`` Google documents for function calls it did not make itself."""
_SCHEMA_INSTRUCTION = (
    "Answer with JSON only, no other text and no code fence, matching this JSON Schema:\n"
)


def function_call(call: ToolCall, *, first: bool, model: str) -> dict[str, object]:
    """A call the model made, sent back with its signature when ``model`` made it.

    Otherwise the first call of a turn carries the documented sentinel instead.
    """
    part: dict[str, object] = {
        "functionCall": {"id": call.id, "name": call.name, "args": dict(call.arguments)}
    }
    if call.signature and call.signed_by == model:
        part["thoughtSignature"] = call.signature
    elif first:
        part["thoughtSignature"] = SKIP_SIGNATURE
    return part


def function_response(message: Message, names: dict[str, str]) -> dict[str, object]:
    """A tool's result: ``output`` holds its text, ``error`` when the tool failed."""
    call_id = message.tool_call_id or ""
    name = message.tool_name or names.get(call_id, "")
    key = "error" if message.is_error else "output"
    response = {"id": call_id, "name": name, "response": {key: message.text}}
    return {"functionResponse": response}


def tool_fields(request: ChatRequest) -> dict[str, object]:
    """``tools`` and ``toolConfig``, as the request sets them."""
    fields: dict[str, object] = {}
    if request.tools:
        fields["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
    choice = request.tool_choice
    if choice in _MODES:
        fields["toolConfig"] = {"functionCallingConfig": {"mode": _MODES[choice]}}
    elif choice is not None:
        config = {"mode": "ANY", "allowedFunctionNames": [choice]}
        fields["toolConfig"] = {"functionCallingConfig": config}
    return fields


def _declaration(tool: Tool) -> dict[str, object]:
    """A ``FunctionDeclaration`` whose parameters are plain JSON Schema."""
    declaration: dict[str, object] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    declaration["parametersJsonSchema"] = dict(tool.parameters)
    return declaration


def output_config(request: ChatRequest) -> dict[str, object]:
    """Ask for JSON of the schema natively, unless tools are offered too."""
    if request.output is None or request.tools:
        return {}
    return {"responseMimeType": "application/json", "responseJsonSchema": request.output.schema()}


def with_schema_instruction(system: str | None, request: ChatRequest) -> str | None:
    """With tools offered, the schema an answer must match goes into the system prompt."""
    if request.output is None or not request.tools:
        return system
    instruction = _SCHEMA_INSTRUCTION + json.dumps(request.output.schema())
    return f"{system}\n\n{instruction}" if system else instruction
