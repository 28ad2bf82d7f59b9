"""What every fake shares: reading a chat request, planning the completion, making ids.

All pure. A protocol module reads its request body into a `ChatAsk`; `plan_completion`
applies a scripted `Answer` to it (stop sequences, ``max_tokens``, token counts); the
protocol module then writes the `Completion` in its own wire shape.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runtime.testing._script import Answer, ToolUse

BASE62 = string.ascii_letters + string.digits
CHARS_PER_TOKEN = 4
_PIECES = re.compile(r"\s*\S+|\s+")


class AskError(ValueError):
    """A request the real API would refuse with 400; ``param`` names the bad field."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        """The provider's error code, where it sends one (OpenAI's ``invalid_value``)."""


@dataclass(frozen=True, slots=True)
class ChatAsk:
    """What a chat request asked for, whatever its protocol."""

    model: str
    prompt: str
    """Every text of the conversation and the system prompt, joined: what input tokens count."""
    stream: bool = False
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    include_usage: bool = False
    """OpenAI only: ``stream_options.include_usage``."""
    event_stream: bool = True
    """Whether a stream is sent as server-sent events (Gemini without ``alt=sse``: no)."""
    tools: tuple[str, ...] = ()
    """The names of the tools the request offered."""
    tool_choice: str | None = None
    """``auto``, ``none``, ``required`` or a tool's name, in callboard's words."""
    json_schema: bool = False
    """Whether the request asked for JSON of a schema (structured output)."""
    call_id_prefix: str = "call_"
    """How the ids the fake makes for tool calls begin, in the provider's style
    (Anthropic's ``toolu_01``)."""


class Ending(enum.Enum):
    """Why a completion ended, before each protocol names it."""

    NATURAL = "natural"
    LENGTH = "length"
    STOP_SEQUENCE = "stop_sequence"


@dataclass(frozen=True, slots=True)
class Completion:
    """The answer to send: its text, why it ended and the tokens it counts."""

    text: str
    ending: Ending
    input_tokens: int
    output_tokens: int
    stop_sequence: str | None = None
    finish: str | None = None
    """The finish reason to send instead of the one `ending` maps to."""
    cached_tokens: int = 0
    """Input tokens read from the prompt cache (part of ``input_tokens``)."""
    cache_write_tokens: int = 0
    """Input tokens written to the prompt cache (part of ``input_tokens``)."""
    tool_calls: tuple[ToolUse, ...] = ()
    """The calls the model makes, each with its id."""
    refusal: str | None = None


def count_tokens(text: str) -> int:
    """Roughly count tokens as four characters each, and never fewer than one."""
    return max(len(text) // CHARS_PER_TOKEN, 1)


def plan_completion(ask: ChatAsk, answer: Answer) -> Completion:
    """Apply ``answer`` to ``ask``: cut at the first stop sequence, then at ``max_tokens``."""
    text, ending, stop_sequence = answer.text, Ending.NATURAL, None
    cut = _first_stop(text, ask.stop)
    if cut is not None:
        text, stop_sequence = text[: cut[0]], cut[1]
        ending = Ending.STOP_SEQUENCE
    if ask.max_tokens is not None and count_tokens(text) > ask.max_tokens:
        text, ending, stop_sequence = text[: ask.max_tokens * CHARS_PER_TOKEN], Ending.LENGTH, None
    input_tokens, output_tokens = count_tokens(ask.prompt), count_tokens(text)
    cached = written = 0
    if answer.usage is not None:
        input_tokens, output_tokens = answer.usage.input_tokens, answer.usage.output_tokens
        cached = min(answer.usage.cached_tokens, input_tokens)
        written = min(answer.usage.cache_write_tokens, input_tokens - cached)
    calls = _offered_calls(ask, answer)
    if calls:
        output_tokens += sum(count_tokens(json.dumps(dict(c.arguments))) for c in calls)
    return Completion(
        text, ending, input_tokens, output_tokens, stop_sequence, answer.finish, cached, written,
        calls, answer.refusal if ask.json_schema else None,
    )  # fmt: skip


def _offered_calls(ask: ChatAsk, answer: Answer) -> tuple[ToolUse, ...]:
    """The scripted calls a real model could make: to offered tools, unless told not to."""
    if ask.tool_choice == "none":
        return ()
    offered = set(ask.tools)
    return tuple(
        call if call.id else dataclasses.replace(call, id=random_id(ask.call_id_prefix, 24))
        for call in answer.tool_calls
        if call.name in offered
    )


def split_text(text: str, words_per_piece: int = 1) -> list[str]:
    """Split ``text`` into pieces of whole words (leading space kept) that join back to it."""
    words = _PIECES.findall(text)
    step = max(words_per_piece, 1)
    return ["".join(words[i : i + step]) for i in range(0, len(words), step)]


def random_id(prefix: str, length: int, alphabet: str = BASE62) -> str:
    """``prefix`` followed by ``length`` random characters of ``alphabet``."""
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def texts_of(content: Any) -> Iterable[str]:
    """The text in a message content: a string, or a list of parts with ``text`` fields."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                yield part["text"]


def stop_list(value: Any) -> tuple[str, ...]:
    """Stop sequences given as one string or a list of strings (anything else: none)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str) and v)
    return ()


def positive_int(body: Mapping[str, Any], name: str) -> int | None:
    """``body[name]`` when it is a positive integer, ``None`` when absent.

    Raises:
        AskError: it is present but not a positive integer.
    """
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AskError(f"{name}: must be a positive integer, not {value!r}", name)
    return value


def _first_stop(text: str, stops: tuple[str, ...]) -> tuple[int, str] | None:
    found = [(text.find(s), s) for s in stops if s and s in text]
    return min(found) if found else None
