"""What the fake Gemini reads of tools, tool turns and structured output, and what it refuses.

Pure functions for `runtime.testing._gemini`. The shapes read, and where each came from:

- ``tools[].functionDeclarations[]`` with ``name``, ``description``, and ``parameters``
  (Google's OpenAPI subset) or ``parametersJsonSchema`` (plain JSON Schema): the
  ``FunctionDeclaration`` of the v1beta API (Gemini API reference, google-genai SDK types).
- ``toolConfig.functionCallingConfig`` with ``mode`` ``AUTO``/``ANY``/``NONE``/``VALIDATED``
  and ``allowedFunctionNames`` (``FunctionCallingConfig`` reference: the names only with
  ``ANY``).
- ``generationConfig.responseMimeType`` with ``responseSchema`` (OpenAPI subset) or
  ``responseJsonSchema`` (JSON Schema; ``responseMimeType: application/json`` required).
- ``functionCall`` parts of ``model`` turns (``thoughtSignature`` beside them) and
  ``functionResponse`` parts (``response`` an object) of the turn after.

The refusals, all 400 ``INVALID_ARGUMENT``, with the messages Google's API sends (as quoted
in public bug reports of gemini-cli, LangChain, Home Assistant, gemini-balance, prism,
symfony/ai, and Google's thought-signature guide):

- a function name that does not start with a letter or ``_`` or holds other characters;
- a JSON Schema keyword the OpenAPI ``Schema`` lacks (``additionalProperties``, ``const``,
  ``$ref``...) in ``parameters`` or ``responseSchema``: ``Unknown name ... Cannot find
  field``;
- a ``functionCallingConfig`` without function declarations, or an unknown mode;
- a function response turn that follows no function call turn, or answers a different
  number of calls; a function call turn that follows no user turn;
- on Gemini 3 models, a function call turn of the current turn whose first call has no
  ``thoughtSignature``;
- on models before Gemini 3, tools with ``responseMimeType: application/json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from runtime.testing._completion import AskError

SIGNED_MODELS = "gemini-3"
"""The prefix of the models that refuse function calls without their thought signature."""
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
_BAD_NAME = (
    "Invalid function name. Must start with a letter or an underscore. Must be alphameric "
    "(a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum "
    "length of 64."
)
_NOT_OPENAPI = ("additionalProperties", "const", "$schema", "$defs", "$ref")
_MODES = {
    "MODE_UNSPECIFIED": "auto",
    "AUTO": "auto",
    "VALIDATED": "auto",
    "ANY": "required",
    "NONE": "none",
}
_MODE_ENUM = "type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode"
_NO_DECLARATIONS = "Function calling config is set without function_declarations."
_RESPONSE_AFTER_CALL = (
    "Please ensure that function response turn comes immediately after a function call turn."
)
_RESPONSE_COUNT = (
    "Please ensure that the number of function response parts is equal to the number of "
    "function call parts of the function call turn."
)
_CALL_AFTER_USER = (
    "Please ensure that function call turn comes immediately after a user turn or after a "
    "function response turn."
)
_MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required "
    "for tools to work correctly, and missing thought_signature may lead to degraded model "
    "performance. Additional data, function call `default_api:{name}`, position {position}."
)
_JSON_WITH_TOOLS = "Tool use with a response mime type: 'application/json' is unsupported"


def either(body: Any, camel: str, snake: str) -> Any:
    """``body[camel]``, else ``body[snake]`` (Google takes both spellings), else ``None``."""
    if not isinstance(body, Mapping):
        return None
    return body.get(camel, body.get(snake))


def read_tools(value: Any) -> tuple[str, ...]:
    """Read ``tools``: the names of the functions declared, checked as Gemini checks them."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise AskError("Invalid JSON payload received.", "tools")
    names = []
    for i, tool in enumerate(value):
        declarations = either(tool, "functionDeclarations", "function_declarations") or []
        for j, declaration in enumerate(declarations if isinstance(declarations, list) else []):
            where = f"tools[{i}].function_declarations[{j}]"
            name = either(declaration, "name", "name")
            if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
                field = f"{where}.name"
                raise AskError(f"* GenerateContentRequest.{field}: {_BAD_NAME}\n", field)
            check_openapi_schema(declaration.get("parameters"), f"{where}.parameters")
            names.append(name)
    return tuple(names)


def check_openapi_schema(schema: Any, where: str) -> None:
    """Refuse the JSON Schema keywords Google's OpenAPI ``Schema`` has no field for."""
    if not isinstance(schema, Mapping):
        return
    for key in _NOT_OPENAPI:
        if key in schema:
            message = f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': "
            raise AskError(message + "Cannot find field.", where)
    properties = schema.get("properties")
    for i, value in enumerate(properties.values() if isinstance(properties, Mapping) else ()):
        check_openapi_schema(value, f"{where}.properties[{i}].value")
    check_openapi_schema(schema.get("items"), f"{where}.items")
    options = either(schema, "anyOf", "any_of")
    for n, value in enumerate(options if isinstance(options, list) else ()):
        check_openapi_schema(value, f"{where}.any_of[{n}]")


def read_tool_choice(value: Any, tools: tuple[str, ...]) -> str | None:
    """Read ``toolConfig``: the tool choice in callboard's words (``ANY`` of one name: it)."""
    calling = either(value, "functionCallingConfig", "function_calling_config")
    if not isinstance(calling, Mapping):
        return None
    if not tools:
        raise AskError(_NO_DECLARATIONS)
    mode = calling.get("mode", "AUTO")
    if mode not in _MODES:
        field = "tool_config.function_calling_config.mode"
        raise AskError(f"Invalid value at '{field}' ({_MODE_ENUM}), {json.dumps(mode)}", field)
    allowed = either(calling, "allowedFunctionNames", "allowed_function_names") or []
    if mode == "ANY" and isinstance(allowed, list) and len(allowed) == 1:
        return str(allowed[0])
    return _MODES[mode]


def read_output(config: Mapping[str, Any], tools: tuple[str, ...], model: str) -> bool:
    """Whether the request asks for JSON of a schema (``responseMimeType`` and a schema)."""
    schema = either(config, "responseSchema", "response_schema")
    check_openapi_schema(schema, "generation_config.response_schema")
    json_mime = either(config, "responseMimeType", "response_mime_type") == "application/json"
    if json_mime and tools and not model.startswith(SIGNED_MODELS):
        raise AskError(_JSON_WITH_TOOLS)
    json_schema = either(config, "responseJsonSchema", "response_json_schema")
    return json_mime and (schema is not None or json_schema is not None)


def check_tool_turns(contents: list[Any], model: str) -> None:
    """Refuse function call and response turns out of Gemini's order, as Gemini does."""
    calls_before = 0
    for i, content in enumerate(contents):
        parts = parts_of(content)
        calls = [p for p in parts if either(p, "functionCall", "function_call") is not None]
        answers = sum(either(p, "functionResponse", "function_response") is not None for p in parts)
        if answers and not calls_before:
            raise AskError(_RESPONSE_AFTER_CALL)
        if answers and answers != calls_before:
            raise AskError(_RESPONSE_COUNT)
        if calls and (i == 0 or _role(contents[i - 1]) != "user"):
            raise AskError(_CALL_AFTER_USER)
        calls_before = len(calls)
    if model.startswith(SIGNED_MODELS):
        _check_signatures(contents)


def _check_signatures(contents: list[Any]) -> None:
    """Each step of the current turn (since the last user text) must sign its first call."""
    asked = [i for i, c in enumerate(contents) if _role(c) == "user" and not _answers(c)]
    for i in range(asked[-1] + 1 if asked else 0, len(contents)):
        calls = [p for p in parts_of(contents[i]) if either(p, "functionCall", "function_call")]
        if calls and not either(calls[0], "thoughtSignature", "thought_signature"):
            name = either(either(calls[0], "functionCall", "function_call"), "name", "name")
            raise AskError(_MISSING_SIGNATURE.format(name=name, position=i + 1))


def check_function_response(part: Mapping[str, Any], where: str) -> None:
    """Refuse a ``functionResponse`` whose ``response`` is not a JSON object."""
    answer = either(part, "functionResponse", "function_response")
    response = answer.get("response") if isinstance(answer, Mapping) else None
    if isinstance(response, list):
        field = f"{where}.function_response"
        message = f"Invalid JSON payload received. Unknown name \"response\" at '{field}': "
        raise AskError(message + "Proto field is not repeating, cannot start list.", field)
    if isinstance(answer, Mapping) and not isinstance(response, Mapping):
        field = f"{where}.function_response.response"
        struct = "type.googleapis.com/google.protobuf.Struct"
        raise AskError(f"Invalid value at '{field}' ({struct}), {json.dumps(response)}", field)


def parts_of(content: Any) -> list[Any]:
    """A content's ``parts`` (none when it has no list of them)."""
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return [p for p in parts if isinstance(p, Mapping)] if isinstance(parts, list) else []


def response_texts(content: Any) -> list[str]:
    """The function results of a content, as JSON text (what their input tokens count)."""
    answers = [either(p, "functionResponse", "function_response") for p in parts_of(content)]
    return [json.dumps(a.get("response")) for a in answers if isinstance(a, Mapping)]


def _answers(content: Any) -> bool:
    return any(either(p, "functionResponse", "function_response") for p in parts_of(content))


def _role(content: Any) -> str:
    role = content.get("role") if isinstance(content, Mapping) else None
    return role if isinstance(role, str) else "user"
