"""The server sides of OpenAI's and Anthropic's APIs: requests read, answers written (pure)."""

from __future__ import annotations

import json

import pytest

from runtime._chat import ImagePart, Message, Reply, ToolResult, Usage
from runtime._structured import Schema
from runtime._tools import ToolCall, ToolCallDelta
from runtime.protocols import _anthropic_server as anthropic
from runtime.protocols import _openai_server as openai
from runtime.protocols._serving import RequestError

pytestmark = pytest.mark.timeout(10)

CALL = ToolCall.of("call_1", "weather", {"city": "Paris"})


def reply(text: str = "Hi", calls: tuple[ToolCall, ...] = (), finish: str = "stop") -> Reply:
    return Reply(text, "coder", "gpt", "gpt-4o", Usage(10, 5, 2), 1.0, (), "t1", finish,
                 tool_calls=calls)  # fmt: skip


def events(frames: bytes) -> list[dict[str, object]]:
    lines = frames.decode().split("\n")
    return [json.loads(line[6:]) for line in lines if line.startswith("data: {")]


def test_openai_request_read() -> None:
    """Developer turns are system turns; image parts, tool choice and a schema are read."""
    call = openai.read_chat({
        "model": "coder",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                         {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
        ],
        "tools": [{"type": "function", "function": {"name": "weather"}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "a", "schema": {"type": "object"}}},
        "max_tokens": 50, "stop": "END", "stream": True, "stream_options": {"include_usage": True},
    })  # fmt: skip
    messages = call.options["messages"]
    assert messages[0] == Message("system", "Be brief.")
    assert isinstance(messages[1].parts[1], ImagePart)
    assert call.options["tool_choice"] == "weather"
    assert isinstance(call.options["output"], Schema)
    assert call.options["max_tokens"] == 50
    assert call.options["stop"] == ("END",)
    assert (call.stream, call.include_usage) == (True, True)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{}]}, "tools[0]"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
         "max_tokens"),
    ],
)  # fmt: skip
def test_openai_bad_requests_name_the_parameter(body: dict[str, object], param: str) -> None:
    """Each refused request names its bad parameter, as OpenAI's 400s do."""
    with pytest.raises(RequestError) as refused:
        openai.read_chat(body)
    assert refused.value.param == param


def test_openai_stream_of_a_whole_reply_with_calls() -> None:
    """Calls not streamed in pieces come whole before the finish; usage, then [DONE]."""
    writer = openai.ChunkWriter("r1", "coder", 0, include_usage=True)
    frames = writer.start() + writer.end(reply("", (CALL,), "tool_calls"))
    chunks = events(frames)
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "weather"  # type: ignore[index]
    assert chunks[2]["choices"][0]["finish_reason"] == "tool_calls"  # type: ignore[index]
    assert chunks[3]["usage"]["prompt_tokens"] == 10  # type: ignore[index]
    assert frames.endswith(b"data: [DONE]\n\n")


def test_anthropic_request_read() -> None:
    """Tool results come before the user's text; tool_use blocks are the assistant's calls."""
    call = anthropic.read_messages({
        "model": "coder", "max_tokens": 10, "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "weather",
                 "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "text", "text": "And tomorrow?"}]},
        ],
        "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"}, "stop_sequences": ["END"],
    })  # fmt: skip
    turns = call.options["messages"]
    assert turns[1].tool_calls[0].arguments == {"city": "Paris"}
    assert turns[2] == ToolResult("toolu_1", "sunny")
    assert turns[3].text == "And tomorrow?"
    assert call.options["system"] == "Be brief."
    assert call.options["tool_choice"] == "required"


def test_anthropic_needs_max_tokens() -> None:
    """max_tokens is required, as the Messages API requires it."""
    with pytest.raises(RequestError) as refused:
        anthropic.read_messages({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert refused.value.param == "max_tokens"


def test_anthropic_event_order_text_then_tool() -> None:
    """A text block, then a tool_use block: each opened, filled and stopped in turn."""
    writer = anthropic.EventWriter("r1", "coder")
    frames = writer.start() + writer.text("Let me check.")
    frames += writer.tool(ToolCallDelta(0, "call_1", "weather"))
    frames += writer.tool(ToolCallDelta(0, arguments='{"city": "Paris"}'))
    frames += writer.end(reply("Let me check.", (CALL,), "tool_calls"))
    kinds = [(e["type"], e.get("index")) for e in events(frames)]
    assert kinds == [
        ("message_start", None),
        ("content_block_start", 0), ("content_block_delta", 0), ("content_block_stop", 0),
        ("content_block_start", 1), ("content_block_delta", 1), ("content_block_stop", 1),
        ("message_delta", None), ("message_stop", None),
    ]  # fmt: skip
    assert events(frames)[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}


def test_anthropic_whole_body() -> None:
    """The whole message: a text block and tool_use blocks, usage without cached tokens."""
    body = anthropic.message_body(reply("Checking.", (CALL,)), "coder")
    assert [b["type"] for b in body["content"]] == ["text", "tool_use"]
    assert body["content"][1]["input"] == {"city": "Paris"}
    assert body["stop_reason"] == "tool_use"
    assert body["usage"]["input_tokens"] == 8
    assert body["usage"]["cache_read_input_tokens"] == 2
