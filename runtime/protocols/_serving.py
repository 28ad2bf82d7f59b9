"""What the server side of every wire API shares: the request error, events, field readers.

The server side of an API reads a request body into the options of `Callboard.ask` and
writes replies in the API's shapes; these helpers keep each reader short and its errors
naming the bad parameter, as the real APIs do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from runtime._structured import Schema
from runtime._tools import Tool


class RequestError(ValueError):
    """A request the API answers with 400; ``param`` names the bad field, when one is."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class ServedCall:
    """What a chat request asked for: the ``model`` it named and the options of ``ask``.

    ``options`` holds only keys of `AskOptions` (messages, system, tuning, tools,
    tool_choice, output); ``include_usage`` is OpenAI's ``stream_options.include_usage``.
    """

    model: str
    options: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event holding ``data`` as compact JSON, named ``event`` if given."""
    payload = orjson.dumps(data)
    if event is None:
        return b"data: " + payload + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def json_object(body: Any) -> dict[str, Any]:
    """The request body, which must be a JSON object.

    Raises:
        RequestError: it is not.
    """
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    return body


def model_name(body: Mapping[str, Any]) -> str:
    """The request's ``model``: a role, or ``provider/model``.

    Raises:
        RequestError: it is missing or not a non-empty string.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("model: you must name a model (a role of this gateway)", "model")
    return model


def number(body: Mapping[str, Any], name: str, *, integer: bool = False) -> float | int | None:
    """``body[name]`` when it is a number (an integer with ``integer``), ``None`` when absent.

    Raises:
        RequestError: it is present with another type, or an integer below 1.
    """
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"{name}: must be a number, not {value!r}", name)
    if integer and (not isinstance(value, int) or value < 1):
        raise RequestError(f"{name}: must be a positive integer, not {value!r}", name)
    return value


def flag(body: Mapping[str, Any], name: str) -> bool:
    """``body[name]`` as a boolean (absent: ``False``).

    Raises:
        RequestError: it is present and not a boolean.
    """
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise RequestError(f"{name}: must be true or false, not {value!r}", name)
    return value


def stop_sequences(value: Any, name: str) -> tuple[str, ...] | None:
    """Stop sequences given as one string or a list of strings (``None``: not given).

    Raises:
        RequestError: anything else.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise RequestError(f"{name}: must be a string or a list of strings", name)


def tool(name: Any, description: Any, parameters: Any, strict: Any, where: str) -> Tool:
    """A `Tool` from a request's fields, or the 400 that names ``where`` it went wrong.

    Raises:
        RequestError: the name, description or schema cannot be used.
    """
    if not isinstance(name, str):
        raise RequestError(f"{where}: a tool needs a name", where)
    if description is not None and not isinstance(description, str):
        raise RequestError(f"{where}.description: must be a string", where)
    try:
        if parameters is None:
            return Tool(name, description or "", strict=bool(strict))
        return Tool(name, description or "", parameters, strict=bool(strict))
    except (TypeError, ValueError) as exc:
        raise RequestError(f"{where}: {exc}", where) from None


def schema(value: Any, name: str | None, *, strict: bool | None, where: str) -> Schema:
    """A `Schema` from a request's JSON Schema.

    Raises:
        RequestError: it is not a JSON Schema object.
    """
    if not isinstance(value, dict):
        raise RequestError(f"{where}: must be a JSON Schema object", where)
    try:
        return Schema(value, name=name, strict=strict)
    except (TypeError, ValueError) as exc:
        raise RequestError(f"{where}: {exc}", where) from None


def tuning(
    body: Mapping[str, Any], *, max_tokens: str, stop: str, extra_max: str | None = None
) -> dict[str, Any]:
    """The tuning options of ``ask`` a request sets: temperature, top_p, max_tokens, stop.

    ``max_tokens`` and ``stop`` name the API's fields; ``extra_max`` an older name of the
    token limit, read when the first is absent.

    Raises:
        RequestError: a value of the wrong type.
    """
    options: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        value = number(body, name)
        if value is not None:
            options[name] = float(value)
    limit = number(body, max_tokens, integer=True)
    if limit is None and extra_max is not None:
        limit = number(body, extra_max, integer=True)
    if limit is not None:
        options["max_tokens"] = int(limit)
    stops = stop_sequences(body.get(stop), stop)
    if stops:
        options["stop"] = stops
    return options
