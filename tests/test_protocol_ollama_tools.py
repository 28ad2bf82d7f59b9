"""Ollama /api/chat with tools and structured output, against the fake's own bytes."""

import json

import httpx
import pytest
from pydantic import BaseModel

from runtime._chat import ChatRequest, ImagePart, Message, TextPart
from runtime._errors import ErrorKind, ProviderError
from runtime._structured import Schema
from runtime._tools import Tool, ToolCall, ToolCallDelta
from runtime.protocols import Endpoint
from runtime.protocols import _ollama as ollama
from runtime.testing import FakeOllama
from runtime.testing import _ollama as wire
from runtime.testing._completion import AskError, ChatAsk, plan_completion
from runtime.testing._script import Answer, ToolUse

pytestmark = pytest.mark.timeout(10)

MODEL = "qwen3:8b"
ENDPOINT = Endpoint(base_url="http://localhost:11434", model=MODEL)
READ = Tool(
    "read_file",
    "Read a file",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)
LIST = Tool("list-dir", "", {"type": "object", "properties": {"dir": {}}})
CALL = ToolCall.of("call_a", "read_file", {"path": "a.txt"})
OTHER = ToolCall.of("call_b", "list-dir", {"dir": "."})


class Plan(BaseModel):
    """A planner's answer."""

    steps: list[str]


def _body(*messages, **fields):
    request = ChatRequest(tuple(messages), MODEL, **fields)
    return ollama.chat_request(ENDPOINT, request, stream=False).json


def _read(body):
    return wire.read_ask(body, model=None, stream=False, query={})


def _ask(tools=("read_file",), **kw):
    return ChatAsk(model=MODEL, prompt="read a", tools=tools, event_stream=False, **kw)


def _whole(completion):
    body = json.dumps(wire.answer(completion, MODEL)).encode()
    return ollama.parse_chat(200, httpx.Headers(), body)


def _streamed(completion):
    """Feed the fake's NDJSON lines to the parser: every piece, and the finished result."""
    plan = wire.stream(completion, _ask(stream=True))
    parser = ollama.stream_parser(httpx.Headers())
    pieces = [p for line in (*plan.head, *plan.body, *plan.tail) for p in parser.feed("", line)]
    return pieces, parser.finish()


def test_tools_are_sent_as_functions_and_auto_sends_them_as_they_are():
    """Tools become Ollama functions; auto adds no instruction; no tool_choice field exists."""
    body = _body(Message("user", "read a"), tools=(READ, LIST), tool_choice="auto")
    assert body["tools"][0] == {
        "type": "function",
        "function": {
            "name": "read_file",
            "parameters": dict(READ.parameters),
            "description": "Read a file",
        },
    }
    assert body["tools"][1]["function"] == {"name": "list-dir", "parameters": dict(LIST.parameters)}
    assert "tool_choice" not in body
    assert body["messages"] == [{"role": "user", "content": "read a"}]
    assert _read(body).tools == ("read_file", "list-dir")


def test_tool_choice_none_sends_no_tools():
    """Ollama cannot turn tools off: none sends none, so the model cannot call any."""
    body = _body(Message("user", "x"), tools=(READ,), tool_choice="none")
    assert "tools" not in body
    assert _read(body).tools == ()


def test_required_and_a_named_choice_become_a_system_instruction():
    """The mode required asks for a call in the system prompt; a name offers that tool alone."""
    required = _body(
        Message("user", "x"), system="Be brief.", tools=(READ, LIST), tool_choice="required"
    )
    assert len(required["tools"]) == 2
    assert required["messages"][0]["role"] == "system"
    assert required["messages"][0]["content"].startswith("Be brief.\n\nYou must call")
    named = _body(Message("user", "x"), tools=(READ, LIST), tool_choice="list-dir")
    assert [t["function"]["name"] for t in named["tools"]] == ["list-dir"]
    assert named["messages"][0] == {
        "role": "system",
        "content": "You must call the tool list-dir before you answer.",
    }
    _read(named)


def test_a_call_and_its_result_go_back_as_tool_calls_and_a_tool_turn_by_name():
    """The assistant turn keeps its calls (arguments an object); the result names its tool."""
    history = (
        Message("user", "read a"),
        Message("assistant", "Reading.", tool_calls=(CALL,)),
        Message("tool", "contents of a", tool_call_id="call_a", tool_name="read_file"),
    )
    body = _body(*history, tools=(READ,))
    assistant, result = body["messages"][1:]
    assert assistant == {
        "role": "assistant",
        "content": "Reading.",
        "tool_calls": [
            {
                "type": "function",
                "function": {"index": 0, "name": "read_file", "arguments": {"path": "a.txt"}},
            }
        ],
    }
    assert result == {"role": "tool", "content": "contents of a", "tool_name": "read_file"}
    assert '"path": "a.txt"' in _read(body).prompt


def test_parallel_results_follow_in_order_and_a_failure_says_so():
    """Each result is a tool turn in call order; a failed one begins with Error: (no flag)."""
    history = (
        Message("user", "look"),
        Message("assistant", "", tool_calls=(CALL, OTHER)),
        Message("tool", "a", tool_call_id="call_a", tool_name="read_file"),
        Message("tool", "no such dir", tool_call_id="call_b", tool_name="list-dir", is_error=True),
    )
    body = _body(*history, tools=(READ, LIST))
    indexes = [c["function"]["index"] for c in body["messages"][1]["tool_calls"]]
    assert indexes == [0, 1]
    assert body["messages"][3] == {
        "role": "tool",
        "content": "Error: no such dir",
        "tool_name": "list-dir",
    }
    _read(body)


def test_a_result_holding_an_image_sends_it_as_base64():
    """A result made of parts keeps its text as content and its image in images."""
    image = ImagePart(data="iVBORw0KGgo=", media_type="image/png")
    history = (
        Message("user", "shot"),
        Message("assistant", "", tool_calls=(CALL,)),
        Message("tool", (TextPart("here"), image), tool_call_id="call_a", tool_name="read_file"),
    )
    result = _body(*history, tools=(READ,))["messages"][2]
    assert (result["content"], result["images"]) == ("here", ["iVBORw0KGgo="])


def test_the_fake_refuses_call_arguments_sent_as_text():
    """Arguments must be an object: OpenAI-style JSON text gets Go's unmarshal error (400)."""
    body = _body(Message("user", "x"), Message("assistant", "", tool_calls=(CALL,)))
    body["messages"][1]["tool_calls"][0]["function"]["arguments"] = '{"path": "a.txt"}'
    with pytest.raises(AskError) as caught:
        _read(body)
    assert caught.value.message == (
        "json: cannot unmarshal string into Go struct field "
        "ToolCallFunction.messages.tool_calls.function.arguments "
        "of type api.ToolCallFunctionArguments"
    )
    assert wire.bad_request(caught.value).status == 400


def test_the_fake_refuses_tools_for_a_model_without_tool_support():
    """A model whose template takes no tools answers Ollama's 400 over real HTTP."""
    request = ChatRequest((Message("user", "x"),), "gemma3:4b", tools=(READ,))
    with FakeOllama() as fake:
        endpoint = Endpoint(base_url=fake.base_url, model="gemma3:4b")
        call = ollama.chat_request(endpoint, request, stream=False)
        response = httpx.post(call.url, json=call.json, headers=dict(call.headers))
    error = ollama.parse_error(response.status_code, response.headers, response.content)
    assert error.kind is ErrorKind.BAD_REQUEST
    assert error.message == "registry.ollama.ai/library/gemma3:4b does not support tools"


def test_a_whole_answer_with_parallel_calls_parses_into_tool_calls():
    """Calls come whole with object arguments and no ids: callboard makes unique ids."""
    completion = plan_completion(
        _ask(tools=("read_file", "list-dir")),
        Answer(
            text="",
            tool_calls=(ToolUse("read_file", {"path": "a"}), ToolUse("list-dir", {"dir": "."})),
        ),
    )
    message = wire.answer(completion, MODEL)["message"]
    assert all("id" not in call for call in message["tool_calls"])
    assert message["tool_calls"][1]["function"]["index"] == 1
    result = _whole(completion)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("read_file", {"path": "a"}),
        ("list-dir", {"dir": "."}),
    ]
    ids = [c.id for c in result.tool_calls]
    assert len(set(ids)) == 2
    assert all(i.startswith("call_") for i in ids)
    assert ids[0] != _whole(completion).tool_calls[0].id
    assert (result.text, result.finish_reason) == ("", "tool_calls")


def test_an_id_a_server_sends_is_kept():
    """Where a server sends a call id, it is the call's id."""
    line = {
        "model": MODEL,
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "call_x1", "function": {"name": "read_file", "arguments": {}}}],
        },
        "done": True,
        "done_reason": "stop",
    }
    result = ollama.parse_chat(200, httpx.Headers(), json.dumps(line).encode())
    assert result.tool_calls == (ToolCall.of("call_x1", "read_file", {}),)


def test_a_streamed_call_arrives_whole_in_one_line():
    """Text pieces come first; each call is one delta with id, name and all its arguments."""
    completion = plan_completion(
        _ask(tools=("read_file", "list-dir")),
        Answer(
            text="Let me look.",
            tool_calls=(ToolUse("read_file", {"path": "a long/p"}), ToolUse("list-dir")),
        ),
    )
    pieces, result = _streamed(completion)
    assert "".join(p for p in pieces if isinstance(p, str)) == "Let me look."
    deltas = [p for p in pieces if isinstance(p, ToolCallDelta)]
    assert [(d.index, d.name) for d in deltas] == [(0, "read_file"), (1, "list-dir")]
    assert json.loads(deltas[0].arguments) == {"path": "a long/p"}
    assert [c.id for c in result.tool_calls] == [d.id for d in deltas]
    assert result.tool_calls[1].arguments == {}
    assert (result.text, result.finish_reason) == ("Let me look.", "tool_calls")


def test_a_streamed_call_over_http_reads_as_the_fake_sent_it():
    """The protocol's request is taken by the fake over HTTP, and its NDJSON lines parse."""
    request = ChatRequest((Message("user", "read a"),), MODEL, tools=(READ,))
    with FakeOllama() as fake, httpx.Client() as client:
        fake.script.append(Answer(text="", tool_calls=(ToolUse("read_file", {"path": "a"}),)))
        call = ollama.chat_request(Endpoint(fake.base_url, MODEL), request, stream=True)
        parser = ollama.stream_parser(httpx.Headers())
        with client.stream("POST", call.url, json=call.json, headers=call.headers) as response:
            for line in response.iter_lines():
                parser.feed("", line)
    result = parser.finish()
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("read_file", {"path": "a"})]
    assert result.finish_reason == "tool_calls"


def test_structured_output_sets_format_to_the_schema():
    """output=Schema(Model) becomes format: the JSON schema, as Ollama documents."""
    body = _body(Message("user", "plan"), output=Schema(Plan))
    assert body["format"] == Schema(Plan).schema()
    assert _read(body).json_schema is True
    body["format"] = "yaml"
    with pytest.raises(AskError, match='invalid format: expected "json" or a valid JSON schema'):
        _read(body)


def test_a_structured_answer_is_the_text_and_a_refusal_is_text_too():
    """The JSON answer is read as text; Ollama has no refusal field, so a refusal is text."""
    ask = _ask(tools=(), json_schema=True)
    answer = _whole(plan_completion(ask, Answer(text='{"steps": ["a"]}')))
    assert Schema(Plan).parse(answer.text) == Plan(steps=["a"])
    refused = _whole(plan_completion(ask, Answer(text="", refusal="I can't help with that.")))
    assert (refused.text, refused.finish_reason) == ("I can't help with that.", "stop")


@pytest.mark.parametrize("arguments", ["{oops", [1], 7])
def test_a_call_whose_arguments_are_not_a_json_object_is_malformed(arguments):
    """Arguments that are no JSON object give a malformed_response, never a crash."""
    line = {
        "model": MODEL,
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "read_file", "arguments": arguments}}],
        },
        "done": False,
    }
    parser = ollama.stream_parser(httpx.Headers())
    with pytest.raises(ProviderError) as caught:
        parser.feed("", json.dumps(line))
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_the_protocol_says_ollama_takes_tools():
    """The wire protocol declares tool support."""
    assert ollama.PROTOCOL.tools is True
