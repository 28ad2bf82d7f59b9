"""Tool calling in callboard's own form: the tools a caller offers, the calls a model makes.

Each wire protocol renders these values in its provider's shape (OpenAI ``tools`` and
``tool_calls``, Anthropic ``tool_use``/``tool_result`` blocks, Gemini ``functionCall``...)
and parses its answers back into them, so a conversation can move between provider types
after a fallback: call ids and results stay in this form.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from runtime._chat import Part

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
        if not self.name or not all(c.isalnum() or c in "_-" for c in self.name):
            msg = f"a tool name holds letters, digits, '_' and '-' only, not {self.name!r}"
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

    @classmethod
    def of(cls, call_id: str, name: str, arguments: Mapping[str, Any] | str) -> ToolCall:
        """Build a call from parsed input or from its JSON text.

        Raises:
            ValueError: the JSON text is not an object.
        """
        if isinstance(arguments, str):
            return cls(call_id, name, parse_arguments(arguments), arguments)
        plain = json_copy(arguments, f"tool call {name!r}: arguments")
        return cls(call_id, name, plain, json.dumps(plain, separators=(",", ":")))

    def to_dict(self) -> dict[str, Any]:
        """Return the call as JSON (``callboard ask --json``)."""
        return {"id": self.id, "name": self.name, "arguments": dict(self.arguments)}


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
class ToolResult:
    """The answer to a `ToolCall`, to send back in the next turn: ``ToolResult(call.id, ...)``.

    ``content`` is the tool's output as text (or message parts); ``is_error`` says the tool
    failed, which providers that can show it to the model do.
    """

    call_id: str
    content: str | tuple[Part, ...]
    is_error: bool = False


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


class ToolCallBuilder:
    """Puts streamed `ToolCallDelta` pieces together into whole calls, by index."""

    def __init__(self) -> None:
        self._calls: dict[int, list[Any]] = {}

    def add(self, delta: ToolCallDelta) -> None:
        """Take one piece."""
        call = self._calls.setdefault(delta.index, [delta.id, delta.name, []])
        call[0] = call[0] or delta.id
        call[1] = call[1] or delta.name
        call[2].append(delta.arguments)

    def __bool__(self) -> bool:
        return bool(self._calls)

    def calls(self, make_id: Any = None) -> tuple[ToolCall, ...]:
        """Return the whole calls, in index order.

        Raises:
            ValueError: a call has no name, or its arguments are not a JSON object.
        """
        built = []
        for index in sorted(self._calls):
            call_id, name, pieces = self._calls[index]
            if not name:
                msg = f"streamed tool call {index} has no name"
                raise ValueError(msg)
            call_id = call_id or (make_id(index) if make_id else f"call_{index}")
            built.append(ToolCall.of(call_id, name, "".join(pieces)))
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
