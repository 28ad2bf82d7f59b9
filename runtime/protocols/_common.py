"""Pieces every wire protocol shares: key headers, status codes, Retry-After, JSON bodies.

Also the instruction that asks for JSON of a schema, for where an API has no way of its own.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Collection, Mapping
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeGuard

import orjson

from runtime._errors import ErrorKind, ProviderError
from runtime.protocols._base import Endpoint, Headers, HttpCall

if TYPE_CHECKING:
    from runtime._structured import Schema

_STATUS_KINDS: dict[int, ErrorKind] = {
    400: ErrorKind.BAD_REQUEST,
    401: ErrorKind.AUTH,
    402: ErrorKind.QUOTA,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    408: ErrorKind.TIMEOUT,
    409: ErrorKind.SERVER,
    413: ErrorKind.BAD_REQUEST,
    422: ErrorKind.BAD_REQUEST,
    429: ErrorKind.RATE_LIMITED,
    499: ErrorKind.TIMEOUT,
    502: ErrorKind.SERVER,
    503: ErrorKind.OVERLOADED,
    504: ErrorKind.TIMEOUT,
    529: ErrorKind.OVERLOADED,
}

MAX_SNIPPET = 300
FIRST_ERROR_STATUS = 400


def is_error(status: int) -> bool:
    """Whether an HTTP status is an error (4xx or 5xx)."""
    return status >= FIRST_ERROR_STATUS


Header = tuple[str, str]


def key_headers(
    endpoint: Endpoint,
    *,
    body: bool,
    key_header: str | None = None,
    bearer: Collection[str] = ("bearer",),
    fixed: tuple[Header, ...] = (),
    trailing: tuple[Header, ...] = (),
) -> tuple[Header, ...]:
    """The headers of a request, in order: key, ``fixed``, content type, ``trailing``, extras.

    The key goes as ``Authorization: Bearer`` when the API takes no other header
    (``key_header`` is ``None``) or when ``endpoint.auth`` is one of ``bearer``; else in
    ``key_header``. ``auth = "none"``, or no key, sends none.
    """
    headers: list[Header] = []
    key = endpoint.api_key
    if key and endpoint.auth != "none":
        if key_header is None or endpoint.auth in bearer:
            headers.append(("authorization", f"Bearer {key}"))
        else:
            headers.append((key_header, key))
    headers.extend(fixed)
    if body:
        headers.append(("content-type", "application/json"))
    return (*headers, *trailing, *endpoint.extra_headers)


def without_none(values: Mapping[str, object]) -> dict[str, object]:
    """The entries of ``values`` that are set (for request fields the caller left out)."""
    return {name: value for name, value in values.items() if value is not None}


_OUTPUT_INSTRUCTION = (
    "Answer with JSON only, no other text and no code fence, matching this JSON Schema:"
)


def output_instruction(schema: Schema) -> str:
    """Return the instruction that asks for an answer in JSON of ``schema``, the schema with it.

    The last resort of structured output, for an API with no JSON schema mode of its own
    (Replicate), or where that mode cannot go with the request (Gemini 2.x beside tools, an
    old Azure api-version): the protocol puts this text in the system prompt, and the
    runtime checks the answer against the schema as for any other provider
    (`Schema.parse`, which also takes the JSON out of a code fence).
    """
    return f"{_OUTPUT_INSTRUCTION}\n{json.dumps(schema.schema())}"


def kind_for_status(status: int) -> ErrorKind:
    """Return the error kind an HTTP status means when the body says nothing better."""
    if status in _STATUS_KINDS:
        return _STATUS_KINDS[status]
    if status >= 500:  # noqa: PLR2004
        return ErrorKind.SERVER
    return ErrorKind.BAD_REQUEST


def retry_after_s(headers: Headers, *, now: float | None = None) -> float | None:
    """Read ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date) as seconds."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def load_json(body: bytes | str) -> Any:
    """Decode a JSON body (or a server-sent event's data), or ``None`` when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:  # also a body that is not UTF-8
        return None


def snippet(body: bytes) -> str:
    """Return the start of a body as one printable line, for error messages."""
    text = body.decode("utf-8", errors="replace").strip()
    text = " ".join(text.split())
    if len(text) > MAX_SNIPPET:
        text = text[:MAX_SNIPPET] + "..."
    return text or "(empty body)"


def non_json_error(status: int, headers: Headers, body: bytes) -> ProviderError:
    """Describe an error response whose body is not the provider's JSON (a proxy's page)."""
    return ProviderError(
        kind_for_status(status),
        f"non-JSON error body: {snippet(body)}",
        status=status,
        retry_after_s=retry_after_s(headers),
    )


def malformed(message: str, status: int | None = 200) -> ProviderError:
    """Return the error for an answer that does not have the provider's documented shape."""
    return ProviderError(ErrorKind.MALFORMED_RESPONSE, message, status=status)


_PIECE = r"(\d+\.?\d*|\.\d+)(h|ms|m|s|us|µs|ns)"
_DURATION_PIECES = re.compile(_PIECE)
_DURATION = re.compile(f"(?:{_PIECE})+")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def duration_s(value: str | None) -> float | None:
    """Parse OpenAI-style reset durations (``"1s"``, ``"6m0s"``, ``"120ms"``, ``"1h2m3.5s"``).

    They are Go durations, which also say ``"500µs"`` below a millisecond; a plain number
    is seconds. Anything else is ``None``.
    """
    if not value:
        return None
    text = value.strip()
    if _DURATION.fullmatch(text) is not None:
        return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_PIECES.findall(text))
    try:
        return float(text)
    except ValueError:
        return None


def int_header(headers: Headers, name: str) -> int | None:
    """Read a header holding a whole number, or ``None``."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def as_dict(value: object) -> dict[str, object]:
    """Return ``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def as_str(value: object) -> str:
    """Return ``value`` if it is a string, else ``""``."""
    return value if isinstance(value, str) else ""


def as_count(value: object) -> int:
    """Return ``value`` if it is a positive whole number (a token count), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def is_matrix(value: object) -> TypeGuard[list[list[float]]]:
    """Whether ``value`` is a JSON array of arrays of numbers (a list of embedding vectors)."""
    return isinstance(value, list) and all(
        isinstance(row, list)
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in row)
        for row in value
    )


def model_lookup(
    endpoint: Endpoint,
    answer: tuple[int, Headers, bytes],
    parse_error: Callable[[int, Headers, bytes], ProviderError],
    lookup: Callable[[Endpoint], HttpCall],
    *,
    id_field: str,
    root: str,
    code: str | None = None,
) -> ProviderError | dict[str, Any]:
    """Judge the answer to a ``GET .../models/{model}`` lookup: the model's record, or the error.

    A 404 is ``not_found``: the model does not exist, or the ``base_url`` is not the API's
    root, so nothing there does; the error names the URL asked (``lookup``'s) and the
    API's ``root``.
    Another error status is the provider's own error (`parse_error`); a record without
    ``id_field`` is malformed.
    """
    status, headers, body = answer
    if status == HTTPStatus.NOT_FOUND:
        error = parse_error(status, headers, body)
        return ProviderError(
            ErrorKind.NOT_FOUND,
            f"GET {lookup(endpoint).url} answered 404 ({error.message}); if the model's name "
            "is right, "
            f"the base_url {endpoint.base_url} is not the API's root: that is {root}, and a "
            "proxy's ends with the same path",
            status=status,
            code=code or error.code,
        )
    if is_error(status):
        return parse_error(status, headers, body)
    data = load_json(body)
    if not isinstance(data, dict) or not as_str(data.get(id_field)):
        return malformed(f"model lookup answer has no {id_field!r}: {snippet(body)}")
    return data
