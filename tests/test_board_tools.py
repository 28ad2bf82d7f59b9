"""Tools and structured output through a whole board, against every provider type's fake."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from support import config_toml

from runtime import (
    Schema,
    StreamBrokenError,
    StreamDelta,
    StreamEnd,
    StreamRestart,
    StreamToolDelta,
    Tool,
    ToolResult,
)
from runtime.testing import Answer, Fail, StreamError, ToolUse

pytestmark = pytest.mark.timeout(30)

TOOL_TYPES = ["openai", "azure_openai", "anthropic", "gemini", "bedrock", "ollama", "cohere"]
READ = Tool(
    "read_file",
    "Read a file",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)
LIST = Tool(
    "list_dir", "List a folder", {"type": "object", "properties": {"dir": {"type": "string"}}}
)


class Plan(BaseModel):
    """A planner's answer."""

    steps: list[str]
    done: bool


def _board(fakes, deployment, protocols, *, cast=None, settings=None, **fake_options):
    started = {f"p{i}": fakes(protocol, **fake_options) for i, protocol in enumerate(protocols)}
    roles = {"coder": cast or list(started)}
    providers = {pid: (fake, settings or {}) for pid, fake in started.items()}
    deployment.write(config_toml(deployment, providers, roles))
    return deployment.board(), started


@pytest.fixture
def signed(request, aws_keys):
    """Bedrock's fake takes signed requests; the other types ignore the AWS keys."""
    return aws_keys


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize("protocol", TOOL_TYPES)
def test_a_two_turn_agent_loop_works_on_every_type_that_has_tools(
    fakes, deployment, signed, protocol, stream
):
    """A call comes back whole, its result goes back, and the model answers the next turn."""
    board, started = _board(fakes, deployment, [protocol], settings={"stream": stream})
    fake = started["p0"]
    fake.script.extend(
        [Answer("", tool_calls=(ToolUse("read_file", {"path": "a.txt"}),)), Answer("It says hi.")]
    )
    history: list = [{"role": "user", "content": "What does a.txt say?"}]
    reply = board.ask("coder", messages=history, tools=[READ], tool_choice="auto")
    (call,) = reply.tool_calls
    assert (call.name, dict(call.arguments)) == ("read_file", {"path": "a.txt"})
    assert reply.finish_reason == "tool_calls"
    history += [reply.as_message(), ToolResult(call.id, "hi")]
    answer = board.ask("coder", messages=history, tools=[READ])
    assert answer.text == "It says hi."
    assert answer.tool_calls == ()
    assert len([r for r in fake.requests if r.is_chat]) == 2


@pytest.mark.parametrize("protocol", TOOL_TYPES)
def test_structured_output_is_validated_on_every_type(fakes, deployment, signed, protocol):
    """A schema answer comes back parsed into the model."""
    board, started = _board(fakes, deployment, [protocol])
    started["p0"].script.append(Answer('{"steps": ["a", "b"], "done": false}'))
    reply = board.ask("coder", "Plan the work", output=Schema(Plan))
    assert reply.parsed == Plan(steps=["a", "b"], done=False)


def test_a_conversation_moves_to_another_provider_type_after_a_fallback(fakes, deployment):
    """Turn two fails on OpenAI and goes on at Anthropic, with OpenAI's call ids kept."""
    board, started = _board(fakes, deployment, ["openai", "anthropic"])
    gpt, claude = started["p0"], started["p1"]
    gpt.script.extend(
        [
            Answer(
                "",
                tool_calls=(ToolUse("read_file", {"path": "a"}), ToolUse("list_dir", {"dir": "."})),
            ),
            Fail(500),
            Fail(500),
        ]
    )
    claude.script.append(Answer("Done."))
    history: list = [{"role": "user", "content": "Look around"}]
    reply = board.ask("coder", messages=history, tools=[READ, LIST])
    assert [c.name for c in reply.tool_calls] == ["read_file", "list_dir"]
    history.append(reply.as_message())
    history += [ToolResult(call.id, f"output of {call.name}") for call in reply.tool_calls]
    answer = board.ask("coder", messages=history, tools=[READ, LIST])
    assert (answer.provider, answer.text) == ("p1", "Done.")
    sent = next(r for r in claude.requests if r.is_chat).json["messages"]
    results = [
        b
        for m in sent
        for b in (m["content"] if isinstance(m["content"], list) else [])
        if b.get("type") == "tool_result"
    ]
    assert [r["tool_use_id"] for r in results] == [c.id for c in reply.tool_calls]


def test_a_provider_without_tools_is_skipped_with_the_reason(fakes, deployment, signed):
    """Replicate takes no tools, nor does a provider with tools = false: both are skipped."""
    replicate, ollama, gpt = fakes("replicate"), fakes("ollama"), fakes("openai")
    providers = {"r": replicate, "o": (ollama, {"tools": False}), "g": gpt}
    deployment.write(config_toml(deployment, providers, {"coder": ["r", "o", "g"]}))
    board = deployment.board()
    gpt.script.append(Answer("", tool_calls=(ToolUse("read_file", {"path": "a"}),)))
    reply = board.ask("coder", "read a", tools=[READ])
    assert reply.provider == "g"
    skipped = {e["provider"]: e["reason"] for e in deployment.events("provider_skipped")}
    assert skipped == {"r": "it does not take tools", "o": "it does not take tools"}
    assert not [r for r in replicate.requests if r.is_chat]


def test_an_answer_that_breaks_the_schema_is_tried_again_then_elsewhere(fakes, deployment):
    """Invalid JSON is a malformed_response: one more try on the provider, then the next."""
    board, started = _board(fakes, deployment, ["openai", "anthropic"])
    started["p0"].script.extend([Answer("not json"), Answer('{"steps": "x"}')])
    started["p1"].script.append(Answer('{"steps": ["a"], "done": true}'))
    reply = board.ask("coder", "Plan", output=Plan)
    assert reply.parsed == Plan(steps=["a"], done=True)
    attempts = deployment.events("attempt")
    assert [(a["provider"], a["outcome"]) for a in attempts] == [
        ("p0", "malformed_response"),
        ("p0", "malformed_response"),
        ("p1", "ok"),
    ]
    assert "does not match the schema" in attempts[0]["message"]
    assert attempts[0]["output_tokens"] > 0  # the tokens of a rejected answer still count


def test_a_stream_hands_over_the_name_first_then_argument_pieces(fakes, deployment):
    """Tool-call pieces stream as they come; the end holds the whole call."""
    board, started = _board(fakes, deployment, ["openai"])
    started["p0"].script.append(
        Answer("Let me look.", tool_calls=(ToolUse("read_file", {"path": "a/long/path.txt"}),))
    )
    events = list(board.stream("coder", "read it", tools=[READ]))
    pieces = [e.delta for e in events if isinstance(e, StreamToolDelta)]
    assert pieces[0].name == "read_file"
    assert len(pieces) > 2
    assert "".join(p.arguments for p in pieces) == '{"path": "a/long/path.txt"}'
    assert "".join(e.text for e in events if isinstance(e, StreamDelta)) == "Let me look."
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.reply.tool_calls[0].arguments == {"path": "a/long/path.txt"}


def test_a_stream_broken_inside_a_tool_call_never_hands_over_a_half_call(fakes, deployment):
    """The error carries only the calls that arrived whole; the half call is not among them."""
    calls = (
        ToolUse("list_dir", {"dir": "."}),
        ToolUse("read_file", {"path": "a-rather-long-name.txt"}),
    )
    board, _ = _board(
        fakes,
        deployment,
        ["openai"],
        default=Answer("", tool_calls=calls),
        script=[StreamError(after_chunks=6)],
    )
    with pytest.raises(StreamBrokenError) as caught:
        list(board.stream("coder", "look", tools=[READ, LIST]))
    assert [c.name for c in caught.value.tool_calls] == ["list_dir"]


def test_a_restart_after_a_broken_tool_call_goes_on_with_the_next_provider(fakes, deployment):
    """With on_broken="restart", the task restarts elsewhere and ends with whole calls."""
    calls = (ToolUse("read_file", {"path": "a-rather-long-name.txt"}),)
    gpt, claude = (
        fakes("openai", default=Answer("", tool_calls=calls), script=[StreamError(after_chunks=3)]),
        fakes("anthropic"),
    )
    claude.script.append(Answer("", tool_calls=calls))
    deployment.write(
        config_toml(deployment, {"gpt": gpt, "claude": claude}, {"coder": ["gpt", "claude"]})
    )
    events = list(deployment.board().stream("coder", "read", tools=[READ], on_broken="restart"))
    assert any(isinstance(e, StreamRestart) for e in events)
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert (end.reply.provider, end.reply.tool_calls[0].name) == ("claude", "read_file")


def test_a_bad_tool_result_is_refused_before_anything_is_sent(fakes, deployment):
    """A result for a call never made, or an unknown tool choice, is a ValueError at once."""
    board, started = _board(fakes, deployment, ["openai"])
    with pytest.raises(ValueError, match="call_x"):
        board.ask("coder", messages=[{"role": "user", "content": "hi"}, ToolResult("call_x", "?")])
    with pytest.raises(ValueError, match="tool_choice"):
        board.ask("coder", "hi", tools=[READ], tool_choice="write_file")
    with pytest.raises(TypeError, match='did you mean "tools"'):
        board.ask("coder", "hi", tool=[READ])  # type: ignore[call-arg]
    assert not [r for r in started["p0"].requests if r.is_chat]
