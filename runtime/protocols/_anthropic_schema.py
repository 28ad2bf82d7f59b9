"""The subset of JSON Schema Anthropic's constrained decoding takes, made from any schema.

Anthropic's structured outputs (``output_config.format``) and strict tools
(``"strict": true``) accept a subset of JSON Schema: every object must say
``"additionalProperties": false`` (else a 400: "For 'object' type, 'additionalProperties'
must be explicitly set to false"), and value constraints (``minimum``, ``maxLength``,
``pattern``, ``minItems`` above 1, unlisted string formats...) are not taken. `for_claude`
rewrites a schema the way the official Python SDK does before it sends one
(``anthropic.lib._parse._transform.transform_schema``): objects closed, ``oneOf`` read as
``anyOf``, and every keyword left over written into the node's ``description`` so that the
model still sees it. The answer is then checked against the caller's original schema by
the runtime, so nothing the rewrite drops goes unchecked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
"""The string formats Anthropic's decoder supports (the SDK's ``SupportedStringFormats``)."""

_KEPT = ("type", "enum", "description", "title")


def for_claude(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``schema`` rewritten into the subset Anthropic's constrained decoding takes."""
    rest = dict(schema)
    node: dict[str, Any] = {}
    for defs in ("$defs", "definitions"):
        if isinstance(rest.get(defs), Mapping):
            node[defs] = {name: _sub(value) for name, value in rest.pop(defs).items()}
    if "$ref" in rest:
        node["$ref"] = rest.pop("$ref")
        return node
    for key, renamed in (("anyOf", "anyOf"), ("oneOf", "anyOf"), ("allOf", "allOf")):
        if isinstance(rest.get(key), list):
            node[renamed] = [_sub(value) for value in rest.pop(key)]
    node.update({key: rest.pop(key) for key in _KEPT if key in rest})
    _typed(node, rest)
    if rest:
        note = "{" + ", ".join(f"{key}: {value}" for key, value in rest.items()) + "}"
        node["description"] = f"{node['description']}\n\n{note}" if "description" in node else note
    return node


def _sub(value: Any) -> Any:
    return for_claude(value) if isinstance(value, Mapping) else value


def _typed(node: dict[str, Any], rest: dict[str, Any]) -> None:
    """Move the keywords of ``node``'s type that Anthropic takes from ``rest`` into it."""
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds:
        properties = rest.pop("properties", {})
        if isinstance(properties, Mapping):
            node["properties"] = {name: _sub(value) for name, value in properties.items()}
        rest.pop("additionalProperties", None)
        node["additionalProperties"] = False
        if "required" in rest:
            node["required"] = rest.pop("required")
    form = rest.get("format")
    if "string" in kinds and isinstance(form, str) and form in STRING_FORMATS:
        node["format"] = rest.pop("format")
    if "array" in kinds:
        if "items" in rest:
            node["items"] = _sub(rest.pop("items"))
        if rest.get("minItems") in (0, 1):
            node["minItems"] = rest.pop("minItems")
