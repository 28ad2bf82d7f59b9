"""Structured output: the `Schema` an answer must match, and the check of an answer against it.

``board.ask(role, prompt, output=Schema(PlanModel))`` asks every provider for JSON of that
shape in its own way (OpenAI's ``response_format``, Gemini's ``responseSchema``, a forced
tool...), then checks the answer: ``reply.parsed`` is the validated value (a model
instance, or plain JSON for a JSON Schema). An answer that does not match is a
``malformed_response``, tried once more and then on the next provider.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

_NAME = re.compile(r"[^A-Za-z0-9_-]+")


class OutputMismatchError(ValueError):
    """An answer is not JSON of the schema's shape; the message says where and why."""


@dataclass(frozen=True, slots=True, init=False)
class Schema:
    """The shape an answer must have: a pydantic model class, or a JSON Schema mapping.

    ``name`` labels the schema for the providers that want one (default: the model's
    class name, else ``output``). ``strict`` asks providers that can to keep to the
    schema exactly; by default it is used when the schema allows it (every object closed
    to other properties and every property required, as OpenAI's strict mode wants).
    """

    json_schema: Mapping[str, Any]
    name: str
    model: type[BaseModel] | None = field(default=None, compare=False)
    strict: bool = False

    def __init__(
        self,
        spec: type[BaseModel] | Mapping[str, Any],
        *,
        name: str | None = None,
        strict: bool | None = None,
    ) -> None:
        if isinstance(spec, type) and issubclass(spec, BaseModel):
            model: type[BaseModel] | None = spec
            schema = _closed(spec.model_json_schema())
            default_name = spec.__name__
        elif isinstance(spec, Mapping):
            model = None
            schema = json.loads(json.dumps(spec))
            default_name = str(spec.get("title") or "output")
        else:  # a caller's mistake the annotations cannot stop at run time
            msg = f"output takes a pydantic model class or a JSON Schema, not {spec!r}"  # type: ignore[unreachable]
            raise TypeError(msg)
        object.__setattr__(self, "json_schema", schema)
        object.__setattr__(self, "name", _NAME.sub("_", name or default_name)[:64] or "output")
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "strict", _strict_ok(schema) if strict is None else strict)

    def schema(self) -> dict[str, Any]:
        """Return the JSON Schema as plain JSON (a fresh copy, for a request body)."""
        return json.loads(json.dumps(self.json_schema))  # type: ignore[no-any-return]

    def parse(self, text: str) -> Any:
        """Return the answer ``text`` validated: a model instance, or the JSON value.

        Raises:
            OutputMismatchError: the text is not JSON, or not of the schema's shape.
        """
        body = _json_body(text)
        if self.model is not None:
            try:
                return self.model.model_validate_json(body)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "the answer"
                msg = f"{where}: {first['msg']} ({exc.error_count()} problem(s))"
                raise OutputMismatchError(msg) from None
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            msg = f"not JSON ({exc.msg} at {exc.pos}): {text[:120]!r}"
            raise OutputMismatchError(msg) from None
        _check_json_schema(value, self.json_schema)
        return value


def _json_body(text: str) -> str:
    """Take the JSON out of an answer, dropping a Markdown code fence around it."""
    stripped = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", stripped, re.DOTALL)
    return fenced.group(1) if fenced else stripped


def _check_json_schema(value: Any, schema: Mapping[str, Any]) -> None:
    import jsonschema  # noqa: PLC0415 - loaded only when a JSON Schema answer is checked

    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the answer"
        msg = f"{where}: {error.message}"
        raise OutputMismatchError(msg)


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """Close every object whose properties are all required to other properties.

    Pydantic leaves ``additionalProperties`` out; strict modes want it false.
    """

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            closable = isinstance(props, dict) and set(node.get("required", ())) == set(props)
            if node.get("type") == "object" and closable:
                node.setdefault("additionalProperties", False)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return schema


def _strict_ok(schema: Mapping[str, Any]) -> bool:
    """Whether every object of ``schema`` is closed and requires all its properties."""

    def ok(node: Any) -> bool:
        if isinstance(node, Mapping):
            if node.get("type") == "object":
                props = node.get("properties", {})
                if node.get("additionalProperties", True) is not False:
                    return False
                if set(node.get("required", ())) != set(props):
                    return False
            return all(ok(v) for v in node.values())
        if isinstance(node, list):
            return all(ok(v) for v in node)
        return True

    return schema.get("type") == "object" and ok(schema)
