from __future__ import annotations

import pytest
from pydantic import BaseModel

from runtime._chat import Message, ToolResult, with_tool_names
from runtime._structured import OutputMismatchError, Schema
from runtime._tools import (
    Tool,
    ToolCall,
    ToolCallBuilder,
    ToolCallDelta,
    check_tool_choice,
    parse_arguments,
)

pytestmark = pytest.mark.timeout(5)

READ = Tool(
    "read_file", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}}
)


class Plan(BaseModel):
    """A planner's answer."""

    steps: list[str]
    done: bool


def test_a_tool_keeps_a_detached_copy_of_its_schema():
    """Editing the caller's schema after building a tool changes nothing the tool sends."""
    schema = {"type": "object", "properties": {"path": {"type": "string"}}}
    tool = Tool("read_file", parameters=schema)
    schema["properties"]["path"]["type"] = "number"
    assert tool.parameters["properties"]["path"]["type"] == "string"


@pytest.mark.parametrize(
    ("name", "parameters"),
    [("read file", {"type": "object"}), ("", {"type": "object"}), ("ok", {"type": "string"})],
)
def test_a_tool_refuses_a_bad_name_or_a_schema_that_is_not_an_object(name, parameters):
    """Names are letters, digits, '_' and '-'; parameters describe an object."""
    with pytest.raises(ValueError, match="tool"):
        Tool(name, parameters=parameters)


def test_a_call_parses_its_json_arguments_and_keeps_the_raw_text():
    """ToolCall.of from JSON text gives parsed arguments and the text as sent."""
    call = ToolCall.of("call_1", "read_file", '{"path": "a.txt"}')
    assert call.arguments == {"path": "a.txt"}
    assert call.raw_arguments == '{"path": "a.txt"}'
    assert ToolCall.of("c", "t", {"n": 1}).raw_arguments == '{"n":1}'


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", '"text"'])
def test_arguments_that_are_not_a_json_object_are_refused(text):
    """A call's arguments must be a JSON object."""
    with pytest.raises(ValueError, match="JSON"):
        parse_arguments(text)


def test_empty_arguments_are_no_arguments():
    """Some providers send an empty string for a tool without input."""
    assert parse_arguments("  ") == {}


def test_streamed_pieces_join_into_whole_calls_in_index_order():
    """Name first, then argument fragments, interleaved across two calls."""
    builder = ToolCallBuilder()
    for piece in [
        ToolCallDelta(1, "call_b", "write_file", ""),
        ToolCallDelta(0, "call_a", "read_file", '{"pa'),
        ToolCallDelta(1, None, None, '{"path": "b"}'),
        ToolCallDelta(0, None, None, 'th": "a"}'),
    ]:
        builder.add(piece)
    calls = builder.calls()
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_a", "read_file", {"path": "a"}),
        ("call_b", "write_file", {"path": "b"}),
    ]


def test_a_streamed_call_cut_short_is_refused():
    """Arguments that stop mid-JSON are not a whole call."""
    builder = ToolCallBuilder()
    builder.add(ToolCallDelta(0, "call_a", "read_file", '{"path": "a'))
    with pytest.raises(ValueError, match="JSON"):
        builder.calls()


def test_tool_choice_is_a_mode_or_an_offered_tool():
    """auto, none, required or a tool's name pass; anything else says what is allowed."""
    assert check_tool_choice("read_file", [READ]) == "read_file"
    assert check_tool_choice("required", [READ]) == "required"
    with pytest.raises(ValueError, match="read_file"):
        check_tool_choice("write_file", [READ])
    with pytest.raises(ValueError, match="needs tools"):
        check_tool_choice("auto", [])


def test_openai_shaped_turns_become_messages_with_calls_and_results():
    """An assistant turn's tool_calls and a tool turn read from OpenAI's own shapes."""
    assistant = Message.coerce(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a"}'},
                },
            ],
        }
    )
    result = Message.coerce({"role": "tool", "tool_call_id": "call_1", "content": "hello"})
    assert assistant.tool_calls[0].arguments == {"path": "a"}
    assert assistant.content == ""
    assert (result.role, result.tool_call_id, result.text) == ("tool", "call_1", "hello")


def test_a_tool_result_value_becomes_a_tool_turn():
    """ToolResult(call.id, output) is a message the next turn can carry."""
    message = Message.coerce(ToolResult("call_1", "boom", is_error=True))
    assert (message.role, message.tool_call_id, message.is_error) == ("tool", "call_1", True)


def test_tool_turns_learn_the_name_of_the_call_they_answer():
    """Providers that name the function in a result (Gemini) get it from the earlier call."""
    call = ToolCall.of("call_1", "read_file", {"path": "a"})
    turns = with_tool_names(
        [
            Message("user", "read a"),
            Message("assistant", "", tool_calls=(call,)),
            Message.coerce(ToolResult("call_1", "contents")),
        ]
    )
    assert turns[2].tool_name == "read_file"


def test_a_tool_result_for_an_unknown_call_is_refused_before_any_request():
    """A result that answers no earlier call is a caller's bug, said at once."""
    with pytest.raises(ValueError, match="call_9"):
        with_tool_names([Message("user", "hi"), Message.coerce(ToolResult("call_9", "x"))])


def test_only_an_assistant_turn_holds_calls():
    """A user message with tool_calls is refused."""
    call = {"id": "c", "function": {"name": "t", "arguments": "{}"}}
    with pytest.raises(ValueError, match="assistant"):
        Message.coerce({"role": "user", "content": "x", "tool_calls": [call]})


def test_a_pydantic_schema_validates_into_a_model_and_closes_its_objects():
    """Schema(Model) sends a closed schema (strict-ready) and parses into the model."""
    schema = Schema(Plan)
    assert schema.name == "Plan"
    assert schema.strict is True
    assert schema.json_schema["additionalProperties"] is False
    plan = schema.parse('```json\n{"steps": ["a"], "done": false}\n```')
    assert plan == Plan(steps=["a"], done=False)


def test_a_model_answer_of_the_wrong_shape_says_where():
    """A missing field is named in the mismatch."""
    with pytest.raises(OutputMismatchError, match="done"):
        Schema(Plan).parse('{"steps": []}')


def test_a_json_schema_validates_into_plain_json():
    """Schema(mapping) checks the answer with JSON Schema and returns the JSON value."""
    schema = Schema(
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        name="count",
    )
    assert schema.strict is False
    assert schema.parse('{"n": 3}') == {"n": 3}
    with pytest.raises(OutputMismatchError, match="n"):
        schema.parse('{"n": "three"}')
    with pytest.raises(OutputMismatchError, match="not JSON"):
        schema.parse("three")


def test_a_schema_refuses_what_is_not_a_model_or_a_mapping():
    """Passing an instance or a string is a clear TypeError."""
    with pytest.raises(TypeError, match="pydantic model"):
        Schema("not a schema")  # type: ignore[arg-type]
