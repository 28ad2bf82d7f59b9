"""Tool calling in callboard's own form: the tools a caller offers, the calls a model makes.

Each wire protocol renders these values in its provider's shape (OpenAI ``tools`` and
``tool_calls``, Anthropic ``tool_use``/``tool_result`` blocks, Gemini ``functionCall``...)
and parses its answers back into them, so a conversation can move between provider types
after a fallback: call ids and results stay in this form.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

_TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
"""A name every provider takes: OpenAI, Anthropic and Bedrock allow more, Gemini wants a
letter or ``_`` first."""

ToolMode = Literal["auto", "none", "required"]
TOOL_MODES: tuple[ToolMode, ...] = ("auto", "none", "required")


def json_copy(value: Any, what: str) -> Any:
    """Return a detached copy of a JSON value (so a caller's later edits never reach us).

    Raises:
        ValueError: the value is not JSON (``what`` names it in the message).
    """
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        msg = f"{what} must be JSON: {exc}"
        raise ValueError(msg) from None


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call: its name, what it does, and a JSON Schema of its input.

    ``strict`` asks providers that can (OpenAI, Azure) to keep the arguments to the schema
    exactly.
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    """A JSON Schema of an object: ``{"type": "object", "properties": {...}, ...}`` (copied;
    treat it as read-only)."""
    strict: bool = False

    def __post_init__(self) -> None:
        if not _TOOL_NAME.fullmatch(self.name):
            msg = (
                "a tool name starts with a letter or '_' and holds letters, digits, '_' and "
                f"'-' only (64 at most), not {self.name!r}"
            )
            raise ValueError(msg)
        if not isinstance(self.parameters, Mapping) or self.parameters.get("type") != "object":
            msg = f'tool {self.name!r}: parameters must be a JSON Schema of {{"type": "object"}}'
            raise ValueError(msg)
        copied = json_copy(self.parameters, f"tool {self.name!r}: parameters")
        object.__setattr__(self, "parameters", copied)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made: its id (to answer it with a `ToolResult`), the tool and its input.

    ``arguments`` is the parsed input (a plain dict: treat it as read-only);
    ``raw_arguments`` the JSON text as the provider sent it (or as callboard wrote it, for
    providers that send parsed input).
    """

    id: str
    name: str
    arguments: Mapping[str, Any]
    raw_arguments: str
    signature: str | None = None
    """An opaque token a provider attached to the call and wants back with it (Gemini's
    ``thoughtSignature``); valid only for ``signed_by``."""
    signed_by: str | None = None
    """The model that signed the call: another model gets the call without the token."""

    @classmethod
    def of(
        cls,
        call_id: str,
        name: str,
        arguments: Mapping[str, Any] | str,
        signature: str | None = None,
        signed_by: str | None = None,
    ) -> ToolCall:
        """Build a call from parsed input or from its JSON text.

        Raises:
            ValueError: the JSON text is not an object.
        """
        if isinstance(arguments, str):
            return cls(call_id, name, parse_arguments(arguments), arguments, signature, signed_by)
        plain = json_copy(arguments, f"tool call {name!r}: arguments")
        raw = json.dumps(plain, separators=(",", ":"))
        return cls(call_id, name, plain, raw, signature, signed_by)

    def to_dict(self) -> dict[str, Any]:
        """Return the call as JSON (``callboard ask --json``)."""
        return {"id": self.id, "name": self.name, "arguments": dict(self.arguments)}


def new_call_id() -> str:
    """Return a call id for an API that sends none.

    Unique across conversations: some APIs (Anthropic) refuse a conversation in which two
    calls share an id, and a conversation may move between providers.
    """
    return "call_" + secrets.token_hex(12)


def parse_arguments(text: str) -> dict[str, Any]:
    """Parse a call's JSON arguments (empty text is no arguments).

    Raises:
        ValueError: the text is not a JSON object.
    """
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"tool arguments are not valid JSON ({exc.msg} at {exc.pos}): {text[:120]!r}"
        raise ValueError(msg) from None
    if not isinstance(value, dict):
        msg = f"tool arguments must be a JSON object, not {type(value).__name__}"
        raise ValueError(msg)  # noqa: TRY004 - a bad value, reported as such
    return value


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call: its ``name`` first, then ``arguments`` fragments.

    ``index`` tells the calls of one answer apart; ``id`` and ``name`` come with a call's
    first piece (``None`` after), ``arguments`` is the next fragment of its JSON text.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    signature: str | None = None
    """The call's opaque provider token (see `ToolCall.signature`), on any piece."""


class ToolCallBuilder:
    """Puts streamed `ToolCallDelta` pieces together into whole calls, by index."""

    def __init__(self) -> None:
        self._calls: dict[int, list[Any]] = {}

    def add(self, delta: ToolCallDelta) -> None:
        """Take one piece."""
        call = self._calls.setdefault(delta.index, [delta.id, delta.name, [], None])
        call[0] = call[0] or delta.id
        call[1] = call[1] or delta.name
        call[2].append(delta.arguments)
        call[3] = call[3] or delta.signature

    def __bool__(self) -> bool:
        return bool(self._calls)

    def whole_calls(self) -> tuple[ToolCall, ...]:
        """Return the calls known to be whole while the stream goes on.

        That is every call but the last begun (a later call began after it), whose
        arguments are a JSON object.
        """
        whole = []
        for index in sorted(self._calls)[:-1]:
            call_id, name, pieces, signature = self._calls[index]
            try:
                whole.append(
                    ToolCall.of(call_id or new_call_id(), name, "".join(pieces), signature)
                )
            except ValueError:
                continue
        return tuple(whole)

    def calls(self, signed_by: str | None = None) -> tuple[ToolCall, ...]:
        """Return the whole calls, in index order (ids made where the API sent none).

        ``signed_by`` names the model whose signatures the calls carry.

        Raises:
            ValueError: a call has no name, or its arguments are not a JSON object.
        """
        built = []
        for index in sorted(self._calls):
            call_id, name, pieces, signature = self._calls[index]
            if not name:
                msg = f"streamed tool call {index} has no name"
                raise ValueError(msg)
            built.append(
                ToolCall.of(call_id or new_call_id(), name, "".join(pieces), signature,
                            signed_by if signature else None)
            )  # fmt: skip
        return tuple(built)


def check_tool_choice(choice: str | None, tools: Sequence[Tool]) -> str | None:
    """Return a valid ``tool_choice``: ``auto``, ``none``, ``required`` or a tool's name.

    Raises:
        ValueError: the choice is none of those, or given without tools.
    """
    if choice is None:
        return None
    if not tools:
        msg = "tool_choice needs tools"
        raise ValueError(msg)
    if choice in TOOL_MODES or choice in {t.name for t in tools}:
        return choice
    names = ", ".join(t.name for t in tools)
    msg = f"tool_choice must be auto, none, required or a tool's name ({names}), not {choice!r}"
    raise ValueError(msg)
