"""Anthropic Messages with tools and structured output, against the fake's own bytes."""

import json

import httpx
import pytest
from httpx_sse import connect_sse
from pydantic import BaseModel

from runtime._chat import ChatRequest, ImagePart, Message, TextPart
from runtime._errors import ErrorKind, ProviderError
from runtime._structured import Schema
from runtime._tools import Tool, ToolCall, ToolCallDelta
from runtime.protocols import PROTOCOLS, Endpoint
from runtime.protocols import _anthropic as anthropic
from runtime.protocols._anthropic_schema import for_claude
from runtime.testing import FakeAnthropic
from runtime.testing import _anthropic as wire
from runtime.testing._completion import AskError, ChatAsk, plan_completion
from runtime.testing._script import Answer, ToolUse

pytestmark = pytest.mark.timeout(10)

MODEL = "claude-sonnet-4-5"
ENDPOINT = Endpoint(base_url="https://api.anthropic.com/v1", model=MODEL, api_key="sk-ant-x")
READ = Tool(
    "read_file",
    "Read a file",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)
LIST = Tool("list_dir", "List a folder", {"type": "object", "properties": {"dir": {}}})
CALL = ToolCall.of("toolu_01A", "read_file", {"path": "a.txt"})
OTHER = ToolCall.of("toolu_01B", "list_dir", {"dir": "."})


class Step(BaseModel):
    """One step of a plan."""

    title: str
    owner: str | None = None


class Plan(BaseModel):
    """A planner's answer."""

    steps: list[Step]


def _body(*messages, **fields):
    request = ChatRequest(tuple(messages), MODEL, **fields)
    return anthropic.chat_request(ENDPOINT, request, stream=False).json


def _read(body):
    return wire.read_ask(body, model=None, stream=False, query={})


def _ask(tools=("read_file",), **kw):
    return ChatAsk(model=MODEL, prompt="read a", tools=tools, call_id_prefix="toolu_01", **kw)


def _whole(completion):
    body = json.dumps(wire.answer(completion, MODEL)).encode()
    return anthropic.parse_chat(200, httpx.Headers(), body)


def _sse(frame):
    lines = dict(line.split(": ", 1) for line in frame.decode().strip().splitlines())
    return lines["event"], lines["data"]


def _event(kind, **fields):
    return kind, {"type": kind, **fields}


def _tool_start(index, call_id, name):
    block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
    return _event("content_block_start", index=index, content_block=block)


def _json_delta(index, fragment):
    delta = {"type": "input_json_delta", "partial_json": fragment}
    return _event("content_block_delta", index=index, delta=delta)


def _feed(frames):
    parser = anthropic.stream_parser(httpx.Headers())
    pieces = [p for event, data in frames for p in parser.feed(event, json.dumps(data))]
    return pieces, parser


def _streamed(completion):
    """Feed the fake's stream to the parser: every piece fed, and the finished result."""
    plan = wire.stream(completion, _ask(stream=True))
    parser = anthropic.stream_parser(httpx.Headers())
    pieces = [p for f in (*plan.head, *plan.body, *plan.tail) for p in parser.feed(*_sse(f))]
    return pieces, parser.finish()


def test_tools_and_a_named_choice_are_sent_in_anthropic_shape():
    """Tools carry input_schema; a tool's name as the choice becomes {"type": "tool"}."""
    body = _body(Message("user", "read a"), tools=(READ,), tool_choice="read_file")
    assert body["tools"] == [
        {"name": "read_file", "description": "Read a file", "input_schema": dict(READ.parameters)}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "read_file"}
    ask = _read(body)
    assert (ask.tools, ask.tool_choice) == (("read_file",), "read_file")


@pytest.mark.parametrize(
    ("choice", "sent"),
    [("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"})],
)
def test_tool_modes_map_to_anthropic_choice_types(choice, sent):
    """auto, none and required become Anthropic's auto, none and any, and read back the same."""
    body = _body(Message("user", "x"), tools=(READ, LIST), tool_choice=choice)
    assert body["tool_choice"] == sent
    assert "disable_parallel_tool_use" not in body["tool_choice"]
    assert _read(body).tool_choice == choice


def test_a_strict_tool_is_sent_strict_with_every_object_closed():
    """strict=True sends "strict": true and a schema the API takes (objects closed)."""
    nested = {"type": "object", "properties": {"opts": {"type": "object", "properties": {}}}}
    body = _body(Message("user", "x"), tools=(Tool("run", "", nested, strict=True),))
    (tool,) = body["tools"]
    assert tool["strict"] is True
    assert tool["input_schema"]["additionalProperties"] is False
    assert tool["input_schema"]["properties"]["opts"]["additionalProperties"] is False
    _read(body)


def test_a_call_and_its_result_go_back_as_tool_use_and_tool_result_blocks():
    """The assistant turn keeps its text then its tool_use; the result follows in a user turn."""
    history = (
        Message("user", "read a"),
        Message("assistant", "Reading it.", tool_calls=(CALL,)),
        Message("tool", "contents of a", tool_call_id="toolu_01A", tool_name="read_file"),
    )
    body = _body(*history, tools=(READ,))
    assistant, result = body["messages"][1:]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Reading it."},
            {
                "type": "tool_use",
                "id": "toolu_01A",
                "name": "read_file",
                "input": {"path": "a.txt"},
            },
        ],
    }
    assert result == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "contents of a"}
        ],
    }
    assert "contents of a" in _read(body).prompt


def test_parallel_results_go_in_one_user_turn_with_the_error_flag():
    """Two results answer one turn together; a failed tool says is_error; no output, no content."""
    history = (
        Message("user", "look"),
        Message("assistant", "", tool_calls=(CALL, OTHER)),
        Message("tool", "", tool_call_id="toolu_01A", tool_name="read_file"),
        Message("tool", "no such dir", tool_call_id="toolu_01B", is_error=True),
    )
    body = _body(*history, tools=(READ, LIST))
    assert len(body["messages"]) == 3
    assert [b["type"] for b in body["messages"][1]["content"]] == ["tool_use", "tool_use"]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_01A"},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_01B",
            "content": "no such dir",
            "is_error": True,
        },
    ]
    _read(body)


def test_a_result_with_an_image_keeps_its_blocks():
    """A result made of parts is a list of text and image blocks inside the tool_result."""
    image = ImagePart(data="iVBORw0KGgo=", media_type="image/png")
    history = (
        Message("user", "shot"),
        Message("assistant", "", tool_calls=(CALL,)),
        Message("tool", (TextPart("here"), image), tool_call_id="toolu_01A"),
    )
    (result,) = _body(*history, tools=(READ,))["messages"][2]["content"]
    assert [b["type"] for b in result["content"]] == ["text", "image"]


def test_a_history_with_tool_turns_but_no_tools_is_sent_as_text():
    """Without tools the API refuses tool blocks, so calls and results are written as text."""
    history = (
        Message("user", "read a"),
        Message("assistant", "", tool_calls=(CALL,)),
        Message("tool", "contents", tool_call_id="toolu_01A", tool_name="read_file"),
        Message("user", "now summarize"),
    )
    body = _body(*history)
    assert "tools" not in body
    assistant, result = body["messages"][1:3]
    assert assistant["content"] == '[tool call toolu_01A: read_file({"path":"a.txt"})]'
    assert result["role"] == "user"
    assert result["content"][0]["text"] == "[result of tool call toolu_01A (read_file)]"
    assert _read(body).tools == ()


def test_a_cache_mark_on_a_result_marks_its_tool_result_block_within_the_limit():
    """A marked result gets cache_control on its tool_result; at most four points are sent."""
    marked = (TextPart("big output", cache=True),)
    history = [Message("user", (TextPart(f"q{i}", cache=True),)) for i in range(3)]
    history += [
        Message("assistant", "", tool_calls=(CALL,)),
        Message("tool", marked, tool_call_id="toolu_01A"),
        Message("user", (TextPart("next", cache=True),)),
    ]
    body = _body(*history, tools=(READ,))
    text = json.dumps(body)
    assert text.count("cache_control") == 4
    (result,) = body["messages"][4]["content"]
    assert result["cache_control"] == {"type": "ephemeral"}
    assert result["content"] == "big output"
    assert "cache_control" not in body["messages"][0]["content"][0]
    _read(body)


def test_the_fake_counts_cache_points_inside_results_and_tools():
    """Cache points in tool definitions and inside tool results count toward the four."""
    mark = {"type": "ephemeral"}
    body = _body(Message("user", "x"), tools=(READ,))
    body["tools"][0]["cache_control"] = mark
    body["messages"] = [
        {"role": "user", "content": [{"type": "text", "text": "a", "cache_control": mark}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "read_file", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [
                        {"type": "text", "text": "b", "cache_control": mark},
                        {"type": "text", "text": "c", "cache_control": mark},
                        {"type": "text", "text": "d", "cache_control": mark},
                    ],
                }
            ],
        },
    ]
    with pytest.raises(AskError, match="A maximum of 4 blocks with cache_control"):
        _read(body)


def test_a_whole_answer_with_parallel_calls_parses_into_tool_calls():
    """Two tool_use blocks after the text come back in order, with toolu_ ids and tool_calls."""
    completion = plan_completion(
        _ask(tools=("read_file", "list_dir")),
        Answer(
            text="Let me look.",
            tool_calls=(ToolUse("read_file", {"path": "a"}), ToolUse("list_dir", {"dir": "."})),
        ),
    )
    body = wire.answer(completion, MODEL)
    assert [b["type"] for b in body["content"]] == ["text", "tool_use", "tool_use"]
    assert body["stop_reason"] == "tool_use"
    result = _whole(completion)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("read_file", {"path": "a"}),
        ("list_dir", {"dir": "."}),
    ]
    assert all(c.id.startswith("toolu_01") for c in result.tool_calls)
    assert (result.text, result.finish_reason) == ("Let me look.", "tool_calls")


def test_thinking_blocks_do_not_break_a_whole_answer():
    """Thinking and redacted thinking blocks are skipped; text and the call are read."""
    body = {
        "type": "message",
        "model": MODEL,
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 10, "output_tokens": 5},
        "content": [
            {"type": "thinking", "thinking": "Let me see", "signature": "EqQB"},
            {"type": "redacted_thinking", "data": "EmwK"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01X", "name": "read_file", "input": {"path": "b"}},
        ],
    }
    result = anthropic.parse_chat(200, httpx.Headers(), json.dumps(body).encode())
    assert result.text == "Checking."
    assert result.tool_calls == (ToolCall.of("toolu_01X", "read_file", {"path": "b"}),)


def test_a_streamed_call_yields_its_name_then_fragments_then_the_whole_call():
    """Stream pieces: text, then the call's id and name, then fragments; finish() holds all."""
    completion = plan_completion(
        _ask(),
        Answer(text="On it.", tool_calls=(ToolUse("read_file", {"path": "a long/path.txt"}),)),
    )
    pieces, result = _streamed(completion)
    assert "".join(p for p in pieces if isinstance(p, str)) == "On it."
    deltas = [p for p in pieces if isinstance(p, ToolCallDelta)]
    assert (deltas[0].index, deltas[0].name) == (0, "read_file")
    assert deltas[0].id.startswith("toolu_01")
    assert len(deltas) > 2
    assert all(d.name is None and d.id is None and d.arguments for d in deltas[1:])
    assert result.tool_calls[0].arguments == {"path": "a long/path.txt"}
    assert result.tool_calls[0].id == deltas[0].id
    assert (result.text, result.finish_reason) == ("On it.", "tool_calls")


def test_the_fake_streams_calls_in_anthropics_event_order():
    """Each call is its own block: start, an empty input_json_delta, fragments, stop."""
    completion = plan_completion(
        _ask(tools=("read_file", "list_dir")),
        Answer(text="", tool_calls=(ToolUse("read_file", {"path": "a"}), ToolUse("list_dir"))),
    )
    plan = wire.stream(completion, _ask(stream=True))
    events = [_sse(f) for f in (*plan.head, *plan.body, *plan.tail)]
    names = [event for event, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    starts = [json.loads(d) for e, d in events if e == "content_block_start"]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [
        (0, "tool_use"),
        (1, "tool_use"),
    ]
    first_delta = json.loads(events[3][1])["delta"]
    assert first_delta == {"type": "input_json_delta", "partial_json": ""}
    assert json.loads(events[-2][1])["delta"]["stop_reason"] == "tool_use"


def test_parallel_streamed_calls_and_thinking_interleave_by_index():
    """Thinking deltas are skipped, and each call's fragments join under its own number."""
    thinking = {"type": "thinking", "thinking": ""}
    frames = [
        _event("message_start", message={"model": MODEL, "usage": {}}),
        _event("content_block_start", index=0, content_block=thinking),
        _event("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "h"}),
        _event("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "E"}),
        _event("content_block_stop", index=0),
        _tool_start(1, "toolu_01P", "read_file"),
        _json_delta(1, '{"pa'),
        _tool_start(2, "toolu_01Q", "list_dir"),
        _json_delta(1, 'th":"x"}'),
        _event("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 9}),
        _event("message_stop"),
    ]
    pieces, parser = _feed(frames)
    assert [(p.index, p.name) for p in pieces if isinstance(p, ToolCallDelta) and p.name] == [
        (0, "read_file"),
        (1, "list_dir"),
    ]
    calls = parser.finish().tool_calls
    assert [(c.id, c.arguments) for c in calls] == [("toolu_01P", {"path": "x"}), ("toolu_01Q", {})]


def test_structured_output_asks_for_a_json_schema_with_every_object_closed():
    """output=Schema(Model) becomes output_config.format json_schema; no beta header is sent."""
    request = ChatRequest((Message("user", "plan"),), MODEL, output=Schema(Plan))
    call = anthropic.chat_request(ENDPOINT, request, stream=False)
    form = call.json["output_config"]["format"]
    assert form["type"] == "json_schema"
    assert form["schema"]["$defs"]["Step"]["additionalProperties"] is False
    assert form["schema"]["additionalProperties"] is False
    assert "anthropic-beta" not in dict(call.headers)
    assert "tools" not in call.json
    assert _read(call.json).json_schema is True


def test_structured_output_keeps_unsupported_constraints_as_description():
    """Keywords the decoder does not take move into the description, as the SDK does."""
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}
    rewritten = for_claude(schema)
    assert rewritten["properties"]["n"] == {"type": "integer", "description": "{minimum: 1}"}
    assert rewritten["additionalProperties"] is False


def test_structured_output_reads_one_of_as_any_of_and_keeps_references():
    """A oneOf becomes anyOf; a $ref stays as it is, its definition rewritten under $defs."""
    schema = {
        "$defs": {"Item": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/Item"}, "x": {"oneOf": [{"type": "string"}]}},
    }
    rewritten = for_claude(schema)
    assert rewritten["$defs"]["Item"]["additionalProperties"] is False
    assert rewritten["properties"]["item"] == {"$ref": "#/$defs/Item"}
    assert rewritten["properties"]["x"] == {"anyOf": [{"type": "string"}]}


def test_a_structured_answer_comes_back_as_its_json_text():
    """The fake answers structured output as text; the protocol hands that text on."""
    completion = plan_completion(
        _ask(tools=(), json_schema=True), Answer(text='{"steps": [{"title": "a"}]}')
    )
    result = _whole(completion)
    assert Schema(Plan).parse(result.text) == Plan(steps=[Step(title="a")])
    assert result.tool_calls == ()


def test_the_fake_refuses_an_open_object_in_a_structured_output_schema():
    """Anthropic's 400 for an object schema without additionalProperties: false is reproduced."""
    body = _body(Message("user", "x"))
    body["output_config"] = {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    with pytest.raises(AskError, match="'additionalProperties' must be explicitly set to false"):
        _read(body)


def test_the_fake_refuses_structured_output_on_an_older_model():
    """A model from before structured outputs refuses output_config.format."""
    request = ChatRequest((Message("user", "x"),), "claude-sonnet-4-20250514", output=Schema(Plan))
    body = anthropic.chat_request(ENDPOINT, request, stream=False).json
    with pytest.raises(AskError, match=r"output_config.format: Extra inputs are not permitted"):
        _read(body)


@pytest.mark.parametrize("stream", [False, True])
def test_a_refusal_is_a_content_filter_error_with_its_explanation(stream):
    """stop_reason refusal, whole or streamed, fails as content_filter naming the explanation."""
    completion = plan_completion(
        _ask(tools=(), json_schema=True), Answer(refusal="This could enable cyber harm.")
    )
    with pytest.raises(ProviderError) as caught:
        _streamed(completion) if stream else _whole(completion)
    assert caught.value.kind is ErrorKind.CONTENT_FILTER
    assert "cyber harm" in caught.value.message


def test_a_call_whose_input_is_not_an_object_is_malformed():
    """A tool_use block whose input is not a JSON object is a malformed_response."""
    body = {
        "type": "message",
        "model": MODEL,
        "stop_reason": "tool_use",
        "usage": {},
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": "a"}],
    }
    with pytest.raises(ProviderError) as caught:
        anthropic.parse_chat(200, httpx.Headers(), json.dumps(body).encode())
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_streamed_fragments_that_are_not_json_are_malformed_at_the_end():
    """Fragments that do not join into a JSON object fail finish() as malformed_response."""
    _, parser = _feed([_tool_start(0, "toolu_1", "read_file"), _json_delta(0, "{oops")])
    parser.feed("message_stop", '{"type": "message_stop"}')
    with pytest.raises(ProviderError) as caught:
        parser.finish()
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def _turns(*messages):
    return {
        "model": MODEL,
        "max_tokens": 64,
        "tools": [{"name": "read_file", "input_schema": {"type": "object"}}],
        "messages": list(messages),
    }


USE = {
    "role": "assistant",
    "content": [{"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {}}],
}


def test_the_fake_refuses_a_result_that_answers_no_call():
    """Anthropic's 400 for a tool_result without its tool_use just before is reproduced."""
    body = _turns(
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "y"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9"}]},
    )
    with pytest.raises(AskError, match=r"messages.2.content.0: unexpected `tool_use_id`"):
        _read(body)


def test_the_fake_refuses_a_call_left_unanswered():
    """Anthropic's 400 for a tool_use whose result is not in the very next turn is reproduced."""
    body = _turns({"role": "user", "content": "x"}, USE, {"role": "user", "content": "go on"})
    with pytest.raises(AskError, match=r"messages.1: `tool_use` ids were found without"):
        _read(body)


def test_the_fake_refuses_text_before_the_results():
    """Results must open the user turn: text first is refused as an unanswered call."""
    late = [{"type": "text", "text": "here"}, {"type": "tool_result", "tool_use_id": "toolu_1"}]
    body = _turns({"role": "user", "content": "x"}, USE, {"role": "user", "content": late})
    with pytest.raises(AskError, match="toolu_1"):
        _read(body)


def test_the_fake_combines_consecutive_user_turns_as_the_api_does():
    """Results in one user message and text in the next are one turn, which the API takes."""
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]}
    _read(_turns({"role": "user", "content": "x"}, USE, result, {"role": "user", "content": "ok"}))


def test_the_fake_refuses_an_empty_text_block():
    """Anthropic's 400 for an empty text block is reproduced (the protocol never sends one)."""
    empty = {"role": "assistant", "content": [{"type": "text", "text": ""}, *USE["content"]]}
    with pytest.raises(AskError, match="text content blocks must be non-empty"):
        _read(_turns({"role": "user", "content": "x"}, empty))


def test_the_fake_refuses_tool_blocks_without_tools():
    """A conversation holding tool blocks in a request without tools is refused."""
    body = _turns({"role": "user", "content": "x"}, USE)
    del body["tools"]
    with pytest.raises(AskError, match="must define tools"):
        _read(body)


@pytest.mark.parametrize(
    ("tools", "choice", "message"),
    [
        ([{"name": "read.file", "input_schema": {"type": "object"}}], None, "should match pattern"),
        ([{"name": "read_file"}], None, "tools.0.custom.input_schema: Field required"),
        ([{"name": "a", "input_schema": {"type": "object"}}] * 2, None, "must be unique"),
        (
            [{"name": "a", "input_schema": {"type": "object"}}],
            {"type": "tool", "name": "b"},
            "Tool 'b' not found in provided tools",
        ),
        (None, {"type": "auto"}, "tool_choice may only be specified while providing tools"),
        (
            [{"name": "a", "input_schema": {"type": "object"}}],
            {"type": "required"},
            "Input tag 'required'",
        ),
    ],
)
def test_the_fake_refuses_bad_tool_definitions_and_choices(tools, choice, message):
    """Malformed tools, an unknown tool choice and a choice without tools get Anthropic's 400s."""
    body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "x"}]}
    body |= {"tools": tools, "tool_choice": choice}
    with pytest.raises(AskError, match=message):
        _read(body)


def _over_http(fake, messages, *, stream):
    """Send a chat the protocol builds to the fake over HTTP; return the parsed result."""
    endpoint = Endpoint(base_url=fake.base_url, model=MODEL)
    request = ChatRequest(tuple(messages), MODEL, tools=(READ,), tool_choice="auto")
    call = anthropic.chat_request(endpoint, request, stream)
    with httpx.Client(headers=dict(call.headers)) as client:
        if not stream:
            response = client.post(call.url, json=call.json)
            return anthropic.parse_chat(response.status_code, response.headers, response.content)
        with connect_sse(client, "POST", call.url, json=call.json) as source:
            parser = anthropic.stream_parser(source.response.headers)
            for event in source.iter_sse():
                parser.feed(event.event, event.data)
            return parser.finish()


def test_a_two_turn_agent_loop_runs_against_the_fake_over_http():
    """A streamed call, then its result sent back and a whole answer: the fake takes both."""
    script = [Answer(text="", tool_calls=(ToolUse("read_file", {"path": "a"}),)), Answer("Done.")]
    with FakeAnthropic(script=script) as fake:
        question = Message("user", "read a")
        first = _over_http(fake, [question], stream=True)
        (call,) = first.tool_calls
        result = Message("tool", "contents", tool_call_id=call.id, tool_name=call.name)
        history = [question, Message("assistant", first.text, tool_calls=first.tool_calls), result]
        second = _over_http(fake, history, stream=False)
    assert (call.name, call.arguments, first.finish_reason) == (
        "read_file",
        {"path": "a"},
        "tool_calls",
    )
    assert (second.text, second.tool_calls) == ("Done.", ())
    sent = fake.requests[1].json["messages"][2]["content"]
    assert sent == [{"type": "tool_result", "tool_use_id": call.id, "content": "contents"}]


def test_the_protocol_says_it_takes_tools():
    """The Anthropic protocol is marked as taking tools."""
    assert PROTOCOLS["anthropic"].tools is True
