"""Cohere v2 chat with tools and structured output, against the fake's own bytes."""

import json

import httpx
import pytest
from httpx_sse import connect_sse
from pydantic import BaseModel

from runtime._chat import ChatRequest, ImagePart, Message, TextPart
from runtime._errors import ErrorKind, ProviderError
from runtime._structured import Schema
from runtime._tools import Tool, ToolCall, ToolCallDelta
from runtime.protocols import Endpoint
from runtime.protocols import _cohere as cohere
from runtime.testing import FakeCohere
from runtime.testing import _cohere as wire
from runtime.testing._completion import AskError, ChatAsk, plan_completion
from runtime.testing._script import Answer, ToolUse

pytestmark = pytest.mark.timeout(10)

MODEL = "command-a-03-2025"
ENDPOINT = Endpoint(base_url="https://api.cohere.com", model=MODEL, api_key="co-x")
READ = Tool(
    "read_file",
    "Read a file",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)
LIST = Tool("list_dir", "List a folder", {"type": "object", "properties": {"dir": {}}})
CALL = ToolCall.of("read_file_1byjy32y4hvq", "read_file", {"path": "a.txt"})
OTHER = ToolCall.of("list_dir_gh65bt2tcdy1", "list_dir", {"dir": "."})


class Plan(BaseModel):
    """A planner's answer."""

    steps: list[str]


def _body(*messages, **fields):
    request = ChatRequest(tuple(messages), MODEL, **fields)
    return cohere.chat_request(ENDPOINT, request, stream=False).json


def _read(body):
    return wire.read_ask(body, model=None, stream=False, query={})


def _ask(tools=("read_file",), **kw):
    return ChatAsk(model=MODEL, prompt="read a", tools=tools, **kw)


def _whole(completion):
    body = json.dumps(wire.answer(completion, MODEL)).encode()
    return cohere.parse_chat(200, httpx.Headers(), body)


def _sse(frame):
    lines = dict(line.split(": ", 1) for line in frame.decode().strip().splitlines())
    return lines["event"], lines["data"]


def _streamed(completion):
    """Feed the fake's stream to the parser: every piece, the event names, the result."""
    plan = wire.stream(completion, _ask(stream=True))
    parser = cohere.stream_parser(httpx.Headers())
    frames = [_sse(f) for f in (*plan.head, *plan.body, *plan.tail)]
    pieces = [p for event, data in frames for p in parser.feed(event, data)]
    return pieces, [event for event, _ in frames], parser.finish()


def test_tools_are_sent_as_functions_and_auto_sends_no_choice():
    """Tools become Cohere functions; auto is Cohere's default, so no tool_choice is sent."""
    body = _body(Message("user", "read a"), tools=(READ,), tool_choice="auto")
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "parameters": dict(READ.parameters),
                "description": "Read a file",
            },
        }
    ]
    assert "tool_choice" not in body
    assert "strict_tools" not in body
    ask = _read(body)
    assert (ask.tools, ask.tool_choice) == (("read_file",), None)


@pytest.mark.parametrize(("choice", "sent"), [("none", "NONE"), ("required", "REQUIRED")])
def test_tool_modes_map_to_cohere_choices(choice, sent):
    """The modes none and required become NONE and REQUIRED, and the fake reads them back."""
    body = _body(Message("user", "x"), tools=(READ, LIST), tool_choice=choice)
    assert body["tool_choice"] == sent
    assert len(body["tools"]) == 2
    assert _read(body).tool_choice == choice


def test_a_named_choice_is_required_with_that_tool_alone():
    """Cohere cannot name the tool to call: REQUIRED with only the named tool offered."""
    body = _body(Message("user", "x"), tools=(READ, LIST), tool_choice="list_dir")
    assert body["tool_choice"] == "REQUIRED"
    assert [t["function"]["name"] for t in body["tools"]] == ["list_dir"]
    assert _read(body).tools == ("list_dir",)


def test_strict_tools_are_asked_for_with_strict_tools_not_a_per_tool_field():
    """All tools strict sends strict_tools: true; the per-tool strict Cohere refuses is not sent."""
    strict = Tool("read_file", "", dict(READ.parameters), strict=True)
    body = _body(Message("user", "x"), tools=(strict,))
    assert body["strict_tools"] is True
    assert "strict" not in body["tools"][0]["function"]
    _read(body)


def test_a_tool_name_cohere_refuses_is_a_bad_request_before_sending():
    """A name with '-' (Cohere takes A-Za-z0-9_ only) fails as bad_request naming the tool."""
    with pytest.raises(ProviderError) as caught:
        _body(Message("user", "x"), tools=(Tool("read-file"),))
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert "read-file" in caught.value.message


def test_a_call_and_its_result_go_back_as_tool_plan_tool_calls_and_a_tool_turn():
    """The assistant's text is its tool_plan beside its calls; the result is a text block."""
    history = (
        Message("user", "read a"),
        Message("assistant", "I will read a.", tool_calls=(CALL,)),
        Message("tool", "contents of a", tool_call_id=CALL.id, tool_name="read_file"),
    )
    body = _body(*history, tools=(READ,))
    assistant, result = body["messages"][1:]
    assert assistant == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": CALL.id,
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"path":"a.txt"}'},
            }
        ],
        "tool_plan": "I will read a.",
    }
    assert result == {
        "role": "tool",
        "tool_call_id": CALL.id,
        "content": [{"type": "text", "text": "contents of a"}],
    }
    assert "contents of a" in _read(body).prompt


def test_parallel_results_are_one_tool_turn_each_and_a_failure_says_so():
    """Each result is its own tool turn; a failed tool's text begins with Error: (no flag)."""
    history = (
        Message("user", "look"),
        Message("assistant", "", tool_calls=(CALL, OTHER)),
        Message("tool", "a", tool_call_id=CALL.id),
        Message("tool", "no such dir", tool_call_id=OTHER.id, is_error=True),
    )
    body = _body(*history, tools=(READ, LIST))
    assert "tool_plan" not in body["messages"][1]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool", "tool"]
    assert body["messages"][3]["content"] == [{"type": "text", "text": "Error: no such dir"}]
    _read(body)


def test_a_result_holding_an_image_is_a_bad_request():
    """Cohere's tool content takes text and documents only: an image fails before sending."""
    image = ImagePart(data="iVBORw0KGgo=", media_type="image/png")
    history = (
        Message("user", "shot"),
        Message("assistant", "", tool_calls=(CALL,)),
        Message("tool", (TextPart("here"), image), tool_call_id=CALL.id),
    )
    with pytest.raises(ProviderError) as caught:
        _body(*history, tools=(READ,))
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_the_fake_refuses_a_tool_turn_that_answers_no_call():
    """A tool turn whose id matches no call of the assistant turn before it is a 400."""
    body = _body(Message("user", "x"), tools=(READ,))
    body["messages"].append({"role": "tool", "tool_call_id": "nope", "content": "y"})
    with pytest.raises(AskError, match="answers no tool call") as caught:
        _read(body)
    assert wire.bad_request(caught.value).status == 400


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        (lambda b: b["tools"][0]["function"].update(strict=True), 422, "unknown field"),
        (lambda b: b.update(tool_choice="ANY"), 422, "unrecognized tool choice option 'ANY'"),
        (lambda b: b["tools"][0]["function"].update(name="9lives"), 400, "tool names can only"),
    ],
)
def test_the_fake_refuses_tools_as_cohere_does(change, status, message):
    """A per-tool strict, a choice Cohere lacks and a bad name get Cohere's own refusals."""
    body = _body(Message("user", "x"), tools=(READ,))
    change(body)
    with pytest.raises(AskError, match=message) as caught:
        _read(body)
    assert wire.bad_request(caught.value).status == status


def test_a_whole_answer_with_parallel_calls_parses_into_tool_calls():
    """Two calls beside the plan come back in order; TOOL_CALL reads as tool_calls."""
    completion = plan_completion(
        _ask(tools=("read_file", "list_dir")),
        Answer(
            text="I will look.",
            tool_calls=(ToolUse("read_file", {"path": "a"}), ToolUse("list_dir", {"dir": "."})),
        ),
    )
    message = wire.answer(completion, MODEL)["message"]
    assert message["tool_plan"] == "I will look."
    assert "content" not in message
    result = _whole(completion)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("read_file", {"path": "a"}),
        ("list_dir", {"dir": "."}),
    ]
    assert [c.id for c in result.tool_calls] == [c["id"] for c in message["tool_calls"]]
    assert (result.text, result.finish_reason) == ("I will look.", "tool_calls")


def test_a_streamed_call_yields_its_name_then_fragments_then_the_whole_call():
    """Plan deltas are text; tool-call-start gives id and name, deltas give fragments."""
    completion = plan_completion(
        _ask(),
        Answer(text="I will read it.", tool_calls=(ToolUse("read_file", {"path": "a long/p"}),)),
    )
    pieces, events, result = _streamed(completion)
    assert events[0] == "message-start"
    assert events[-3:] == ["tool-call-delta", "tool-call-end", "message-end"]
    assert "".join(p for p in pieces if isinstance(p, str)) == "I will read it."
    deltas = [p for p in pieces if isinstance(p, ToolCallDelta)]
    assert (deltas[0].index, deltas[0].name, deltas[0].arguments) == (0, "read_file", "")
    assert deltas[0].id
    assert len(deltas) > 2
    assert all(d.name is None and d.id is None and d.arguments for d in deltas[1:])
    (call,) = result.tool_calls
    assert (call.id, call.name, call.arguments) == (deltas[0].id, "read_file", {"path": "a long/p"})
    assert (result.text, result.finish_reason) == ("I will read it.", "tool_calls")


def test_a_streamed_call_over_http_reads_as_the_fake_sent_it():
    """The protocol's request is taken by the fake over HTTP, and its SSE stream parses."""
    request = ChatRequest((Message("user", "read a"),), MODEL, tools=(READ,))
    with FakeCohere() as fake, httpx.Client() as client:
        fake.script.append(Answer(text="", tool_calls=(ToolUse("read_file", {"path": "a"}),)))
        call = cohere.chat_request(Endpoint(fake.base_url, MODEL, "k"), request, stream=True)
        parser = cohere.stream_parser(httpx.Headers())
        with connect_sse(
            client, "POST", call.url, json=call.json, headers=dict(call.headers)
        ) as sse:
            for event in sse.iter_sse():
                parser.feed(event.event, event.data)
    result = parser.finish()
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("read_file", {"path": "a"})]
    assert result.finish_reason == "tool_calls"


def test_parallel_streamed_calls_join_under_their_own_index():
    """Each call's start, fragments and end carry its index; the calls come back in order."""
    completion = plan_completion(
        _ask(tools=("read_file", "list_dir")),
        Answer(text="", tool_calls=(ToolUse("read_file", {"path": "a"}), ToolUse("list_dir"))),
    )
    pieces, events, result = _streamed(completion)
    assert "tool-plan-delta" not in events
    assert events.count("tool-call-start") == 2
    assert [(p.index, p.name) for p in pieces if isinstance(p, ToolCallDelta) and p.name] == [
        (0, "read_file"),
        (1, "list_dir"),
    ]
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("read_file", {"path": "a"}),
        ("list_dir", {}),
    ]


def test_structured_output_asks_for_json_object_with_the_schema():
    """output=Schema(Model) becomes response_format json_object with json_schema, left open."""
    body = _body(Message("user", "plan"), output=Schema(Plan))
    form = body["response_format"]
    assert form["type"] == "json_object"
    assert form["json_schema"]["properties"]["steps"]["type"] == "array"
    assert "additionalProperties" not in json.dumps(form)
    assert _read(body).json_schema is True


def test_structured_output_with_tools_goes_into_the_system_prompt():
    """Cohere refuses response_format beside tools: the schema is an instruction instead."""
    body = _body(Message("user", "plan"), system="Be brief.", tools=(READ,), output=Schema(Plan))
    assert "response_format" not in body
    system = body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith("Be brief.\n\nAnswer with JSON only")
    assert '"steps"' in system["content"]
    _read(body)
    body["response_format"] = {"type": "json_object"}
    with pytest.raises(AskError, match="not supported in combination with tools"):
        _read(body)


def test_a_structured_answer_is_the_text_and_a_refusal_is_text_too():
    """The JSON answer is read as text; Cohere has no refusal field, so a refusal is text."""
    ask = _ask(tools=(), json_schema=True)
    answer = _whole(plan_completion(ask, Answer(text='{"steps": ["a"]}')))
    assert Schema(Plan).parse(answer.text) == Plan(steps=["a"])
    refused = _whole(plan_completion(ask, Answer(text="", refusal="I can't help with that.")))
    assert (refused.text, refused.finish_reason) == ("I can't help with that.", "stop")


def test_a_call_whose_arguments_are_not_a_json_object_is_malformed():
    """Broken arguments give a malformed_response, whole or streamed, never a crash."""
    body = {
        "id": "x",
        "finish_reason": "TOOL_CALL",
        "message": {
            "role": "assistant",
            "tool_calls": [
                {"id": "c", "type": "function",
                 "function": {"name": "read_file", "arguments": "[1]"}}
            ],
        },
    }  # fmt: skip
    with pytest.raises(ProviderError) as caught:
        cohere.parse_chat(200, httpx.Headers(), json.dumps(body).encode())
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE
    parser = cohere.stream_parser(httpx.Headers())
    start = {"id": "c", "type": "function", "function": {"name": "read_file", "arguments": ""}}
    frames = [
        {"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": start}}},
        {"type": "tool-call-delta", "index": 0,
         "delta": {"message": {"tool_calls": {"function": {"arguments": "{oops"}}}}},
        {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL"}},
    ]  # fmt: skip
    for frame in frames:
        parser.feed(frame["type"], json.dumps(frame))
    with pytest.raises(ProviderError) as streamed:
        parser.finish()
    assert streamed.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_the_protocol_says_cohere_takes_tools():
    """The wire protocol declares tool support."""
    assert cohere.PROTOCOL.tools is True
