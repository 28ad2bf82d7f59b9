"""OpenAI chat completions with tools and structured output, against the fake's own bytes."""

import json

import httpx
import pytest
from pydantic import BaseModel

from runtime._chat import ChatRequest, Message
from runtime._errors import ErrorKind, ProviderError
from runtime._structured import Schema
from runtime._tools import Tool, ToolCall, ToolCallDelta
from runtime.protocols import Endpoint
from runtime.protocols import _openai as openai
from runtime.testing import _openai as wire
from runtime.testing._completion import ChatAsk, plan_completion
from runtime.testing._script import Answer, ToolUse

pytestmark = pytest.mark.timeout(10)

ENDPOINT = Endpoint(base_url="https://api.openai.com/v1", model="gpt-4o", api_key="sk-x")
READ = Tool(
    "read_file",
    "Read a file",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)
CALL = ToolCall.of("call_abc", "read_file", {"path": "a.txt"})


class Plan(BaseModel):
    """A planner's answer."""

    steps: list[str]


def _ask(tools=("read_file",), **kw):
    return ChatAsk(model="gpt-4o", prompt="read a", tools=tools, **kw)


def test_tools_and_a_named_choice_are_sent_in_openai_shape():
    """Tools become functions; a tool's name as the choice becomes a function choice."""
    call = openai.chat_request(
        ENDPOINT,
        ChatRequest((Message("user", "read a"),), "gpt-4o", tools=(READ,), tool_choice="read_file"),
        stream=False,
    )
    assert call.json["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "parameters": dict(READ.parameters),
                "description": "Read a file",
            },
        }
    ]
    assert call.json["tool_choice"] == {"type": "function", "function": {"name": "read_file"}}
    assert wire.read_ask(call.json, model=None, stream=False, query={}).tools == ("read_file",)


def test_a_call_and_its_result_go_back_as_an_assistant_turn_and_a_tool_turn():
    """The conversation's call and result render as OpenAI wants them, and the fake takes them."""
    history = (
        Message("user", "read a"),
        Message("assistant", "", tool_calls=(CALL,)),
        Message("tool", "contents of a", tool_call_id="call_abc", tool_name="read_file"),
    )
    call = openai.chat_request(ENDPOINT, ChatRequest(history, "gpt-4o", tools=(READ,)), False)
    assistant, result = call.json["messages"][1:]
    assert assistant == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc",
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"path":"a.txt"}'},
            }
        ],
    }
    assert result == {"role": "tool", "tool_call_id": "call_abc", "content": "contents of a"}
    wire.read_ask(call.json, model=None, stream=False, query={})


def test_the_fake_refuses_a_tool_turn_that_answers_no_call():
    """OpenAI's 400 for a tool message without a preceding call is reproduced."""
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "call_x", "content": "y"},
        ],
    }
    with pytest.raises(ValueError, match="preceeding message with 'tool_calls'"):
        wire.read_ask(body, model=None, stream=False, query={})


def test_a_whole_answer_with_parallel_calls_parses_into_tool_calls():
    """Two calls in one answer come back in order, arguments parsed."""
    completion = plan_completion(
        _ask(tools=("read_file", "list_dir")),
        Answer(
            text="",
            tool_calls=(ToolUse("read_file", {"path": "a"}), ToolUse("list_dir", {"dir": "."})),
        ),
    )
    body = json.dumps(wire.answer(completion, "gpt-4o")).encode()
    result = openai.parse_chat(200, httpx.Headers(), body)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("read_file", {"path": "a"}),
        ("list_dir", {"dir": "."}),
    ]
    assert result.finish_reason == "tool_calls"
    assert result.text == ""


def test_a_streamed_answer_yields_the_name_then_argument_fragments():
    """Stream pieces: the call's id and name first, then fragments; the end holds the call."""
    completion = plan_completion(
        _ask(), Answer(text="", tool_calls=(ToolUse("read_file", {"path": "a long/path.txt"}),))
    )
    plan = wire.stream(completion, _ask(stream=True))
    parser = openai.stream_parser(httpx.Headers())
    pieces = []
    for frame in (*plan.head, *plan.body, *plan.tail):
        data = frame.decode().removeprefix("data: ").strip()
        pieces += parser.feed("", data)
    deltas = [p for p in pieces if isinstance(p, ToolCallDelta)]
    assert deltas[0].name == "read_file"
    assert deltas[0].id
    assert len(deltas) > 2
    assert all(d.name is None for d in deltas[1:])
    result = parser.finish()
    assert result.tool_calls[0].arguments == {"path": "a long/path.txt"}
    assert result.tool_calls[0].id == deltas[0].id


def test_structured_output_asks_for_a_strict_json_schema():
    """output=Schema(Model) becomes response_format json_schema, strict when it can be."""
    request = ChatRequest((Message("user", "plan"),), "gpt-4o", output=Schema(Plan))
    call = openai.chat_request(ENDPOINT, request, stream=False)
    assert call.json["response_format"]["type"] == "json_schema"
    assert call.json["response_format"]["json_schema"]["name"] == "Plan"
    assert call.json["response_format"]["json_schema"]["strict"] is True
    assert wire.read_ask(call.json, model=None, stream=False, query={}).json_schema is True


def test_a_refusal_to_structured_output_is_a_content_filter_error():
    """The model's refusal field (content null) fails the attempt as content_filter."""
    completion = plan_completion(
        _ask(tools=(), json_schema=True), Answer(refusal="I can't help with that.")
    )
    body = json.dumps(wire.answer(completion, "gpt-4o")).encode()
    with pytest.raises(ProviderError) as caught:
        openai.parse_chat(200, httpx.Headers(), body)
    assert caught.value.kind is ErrorKind.CONTENT_FILTER
    assert "can't help" in caught.value.message


def test_a_call_whose_arguments_are_not_json_is_malformed():
    """A provider that sends broken arguments gives a malformed_response, never a crash."""
    body = {
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c", "type": "function",
                         "function": {"name": "read_file", "arguments": "{oops"}}
                    ],
                },
            }
        ],
    }  # fmt: skip
    with pytest.raises(ProviderError) as caught:
        openai.parse_chat(200, httpx.Headers(), json.dumps(body).encode())
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE
