"""Azure OpenAI with tools and structured output, against the fake's own bytes."""

import json

import httpx
import pytest
from httpx_sse import connect_sse
from pydantic import BaseModel

from runtime._chat import ChatRequest, Message
from runtime._errors import ErrorKind, ProviderError
from runtime._structured import Schema
from runtime._tools import Tool, ToolCall, ToolCallDelta
from runtime.protocols import Endpoint
from runtime.protocols import _azure as azure
from runtime.protocols._common import output_instruction
from runtime.testing import FakeAzureOpenAI
from runtime.testing import _azure as wire
from runtime.testing._completion import AskError, ChatAsk, plan_completion
from runtime.testing._script import Answer, ToolUse

pytestmark = pytest.mark.timeout(10)

BASE = "https://contoso.openai.azure.com"
READ = Tool(
    "read_file",
    "Read a file",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)
LIST = Tool("list_dir", "List a directory", {"type": "object", "properties": {}})
CALL = ToolCall.of("call_abc", "read_file", {"path": "a.txt"})


class Plan(BaseModel):
    """A planner's answer."""

    steps: list[str]


def _endpoint(version="2024-10-21"):
    options = (("api_version", version), ("deployment", "chat-prod"))
    return Endpoint(BASE, "gpt-4o", api_key="azure-key-0123456789", options=options)


def _request(*messages, **kwargs):
    return ChatRequest(messages or (Message("user", "read a"),), "gpt-4o", **kwargs)


def _read(call, version="2024-10-21"):
    """What the fake makes of a request the protocol built."""
    return wire.read_ask(call.json, model="chat-prod", stream=False, query={"api-version": version})


def _ask(tools=("read_file",), **kwargs):
    return ChatAsk(model="chat-prod", prompt="read a", tools=tools, **kwargs)


def _answer(completion):
    return json.dumps(wire.answer(completion, "chat-prod")).encode()


def _streamed(completion, *, include_usage=True):
    """Feed the fake's stream to the protocol's parser: (chunks, pieces, result)."""
    plan = wire.stream(completion, _ask(stream=True, include_usage=include_usage))
    parser = azure.stream_parser(httpx.Headers())
    chunks, pieces = [], []
    for frame in (*plan.head, *plan.body, *plan.tail):
        data = frame.decode().removeprefix("data: ").strip()
        chunks.append(data)
        pieces += parser.feed("", data)
    return chunks, pieces, parser.finish()


def _refused(body, version):
    """The fake's reply to a body it refuses, as the protocol reads it."""
    with pytest.raises(AskError) as caught:
        wire.read_ask(body, model="chat-prod", stream=False, query={"api-version": version})
    reply = wire.bad_request(caught.value)
    return reply, azure.parse_error(reply.status, httpx.Headers(), json.dumps(reply.body).encode())


def test_tools_and_a_named_choice_go_to_the_deployment_in_openai_shape():
    """Tools become functions and a tool's name a function choice, which the fake takes."""
    request = _request(tools=(READ,), tool_choice="read_file")
    call = azure.chat_request(_endpoint(), request, stream=False)
    assert (
        call.url == f"{BASE}/openai/deployments/chat-prod/chat/completions?api-version=2024-10-21"
    )
    assert call.json["tools"][0]["function"]["name"] == "read_file"
    assert call.json["tool_choice"] == {"type": "function", "function": {"name": "read_file"}}
    ask = _read(call)
    assert (ask.tools, ask.tool_choice) == (("read_file",), "read_file")
    assert azure.PROTOCOL.tools is True


def test_a_call_and_its_result_go_back_as_an_assistant_turn_and_a_tool_turn():
    """The conversation's call and result render as Azure wants them, and the fake takes them."""
    history = (
        Message("user", "read a"),
        Message("assistant", "", tool_calls=(CALL,)),
        Message("tool", "contents of a", tool_call_id="call_abc", tool_name="read_file"),
    )
    call = azure.chat_request(_endpoint(), _request(*history, tools=(READ,)), stream=False)
    assistant, result = call.json["messages"][1:]
    assert assistant["tool_calls"][0]["id"] == "call_abc"
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"path":"a.txt"}'
    assert result == {"role": "tool", "tool_call_id": "call_abc", "content": "contents of a"}
    _read(call)


def test_the_fake_refuses_a_tool_turn_that_answers_no_call_with_openais_400():
    """A tool message without a preceding call gets the 400 Azure passes on from OpenAI."""
    body = {
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "call_x", "content": "y"},
        ]
    }
    reply, error = _refused(body, "2024-10-21")
    assert reply.status == 400
    assert reply.body["error"]["type"] == "invalid_request_error"
    assert error.kind is ErrorKind.BAD_REQUEST
    assert "preceeding message with 'tool_calls'" in error.message


def test_a_whole_answer_with_parallel_calls_parses_into_tool_calls():
    """Two calls come back in order with Azure's empty filter verdicts and tool_calls finish."""
    calls = (ToolUse("read_file", {"path": "a"}), ToolUse("list_dir", {"dir": "."}))
    completion = plan_completion(
        _ask(tools=("read_file", "list_dir")), Answer("", tool_calls=calls)
    )
    body = _answer(completion)
    assert json.loads(body)["choices"][0]["content_filter_results"] == {}
    result = azure.parse_chat(200, httpx.Headers(), body)
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("read_file", {"path": "a"}),
        ("list_dir", {"dir": "."}),
    ]
    assert [c.id for c in result.tool_calls] == [c.id for c in completion.tool_calls]
    assert (result.finish_reason, result.text) == ("tool_calls", "")


def test_a_streamed_call_comes_after_the_prompt_filter_chunk_name_first_then_fragments():
    """Azure's stream: empty-choices filter chunk, the call's name with the role, fragments."""
    completion = plan_completion(
        _ask(), Answer("", tool_calls=(ToolUse("read_file", {"path": "a long/path.txt"}),))
    )
    chunks, pieces, result = _streamed(completion)
    first = json.loads(chunks[0])
    assert first["choices"] == []
    assert first["prompt_filter_results"][0]["prompt_index"] == 0
    opening = json.loads(chunks[1])["choices"][0]
    assert opening["delta"]["role"] == "assistant"
    assert opening["delta"]["tool_calls"][0]["function"]["name"] == "read_file"
    assert opening["content_filter_results"] == {}
    assert all(isinstance(p, ToolCallDelta) for p in pieces)
    assert pieces[0].name == "read_file"
    assert pieces[0].id == completion.tool_calls[0].id
    assert len(pieces) > 2
    assert all(p.name is None for p in pieces[1:])
    assert result.tool_calls[0].arguments == {"path": "a long/path.txt"}
    assert result.tool_calls[0].id == pieces[0].id
    assert result.finish_reason == "tool_calls"
    assert result.usage.output_tokens == completion.output_tokens


def test_streamed_text_then_a_call_come_in_order():
    """Text deltas (with verdicts) come first, then the call's pieces (without)."""
    completion = plan_completion(
        _ask(), Answer("Let me look.", tool_calls=(ToolUse("read_file", {"path": "a"}),))
    )
    chunks, pieces, result = _streamed(completion, include_usage=False)
    kinds = [type(p).__name__ for p in pieces]
    assert kinds[0] == "str"
    assert kinds.index("ToolCallDelta") == len([p for p in pieces if isinstance(p, str)])
    assert result.text == "Let me look."
    assert result.tool_calls[0].name == "read_file"
    text_chunk = json.loads(chunks[2])["choices"][0]
    assert text_chunk["content_filter_results"]["violence"] == {
        "filtered": False,
        "severity": "safe",
    }


def test_structured_output_asks_for_a_strict_json_schema_where_the_version_takes_it():
    """From 2024-08-01-preview on, output=Schema(Model) is response_format json_schema."""
    for version in ("2024-10-21", "2024-08-01-preview", "v1"):
        request = _request(output=Schema(Plan))
        call = azure.chat_request(_endpoint(version), request, stream=False)
        fmt = call.json["response_format"]
        assert fmt["type"] == "json_schema", version
        assert (fmt["json_schema"]["name"], fmt["json_schema"]["strict"]) == ("Plan", True)
        assert _read(call, version).json_schema is True


def test_an_older_version_gets_the_schema_in_the_system_prompt_and_tools_without_strict():
    """Before structured outputs the schema is an instruction, and strict is left out."""
    strict = Tool("read_file", "Read a file", dict(READ.parameters), strict=True)
    request = _request(
        Message("system", "Be brief."),
        Message("user", "plan"),
        tools=(strict,),
        output=Schema(Plan),
    )
    call = azure.chat_request(_endpoint("2024-06-01"), request, stream=False)
    assert "response_format" not in call.json
    assert "strict" not in call.json["tools"][0]["function"]
    system = call.json["messages"][0]
    assert system == {
        "role": "system",
        "content": f"Be brief.\n\n{output_instruction(Schema(Plan))}",
    }
    assert call.json["messages"][1] == {"role": "user", "content": "plan"}
    ask = _read(call, "2024-06-01")
    assert ask.json_schema is False
    assert "JSON Schema" in ask.prompt


def test_the_fake_refuses_json_schema_on_an_older_version_with_azures_bad_request():
    """Sent anyway, json_schema before 2024-08-01-preview is Azure's 400 BadRequest."""
    body = azure.chat_request(_endpoint(), _request(output=Schema(Plan)), stream=False).json
    reply, error = _refused(body, "2024-06-01")
    assert reply.status == 400
    assert reply.body == {
        "error": {
            "code": "BadRequest",
            "message": "response_format value as json_schema is enabled only for api "
            "versions 2024-08-01-preview and later",
        }
    }
    assert error.kind is ErrorKind.BAD_REQUEST
    assert error.code == "BadRequest"


def test_tools_on_a_version_without_them_are_refused_before_sending():
    """Before 2023-12-01-preview the protocol refuses tools; Azure would call them unknown."""
    with pytest.raises(ProviderError) as caught:
        azure.chat_request(_endpoint("2023-05-15"), _request(tools=(READ,)), stream=False)
    assert caught.value.kind is ErrorKind.BAD_REQUEST
    assert 'api_version = "2024-10-21"' in caught.value.message
    history = (Message("assistant", "", tool_calls=(CALL,)),)
    with pytest.raises(ProviderError):
        azure.chat_request(_endpoint("2023-07-01-preview"), _request(*history), stream=False)
    body = azure.chat_request(_endpoint(), _request(tools=(READ,), tool_choice="auto"), False).json
    reply, error = _refused(body, "2023-05-15")
    assert reply.body["error"]["message"] == (
        "Unrecognized request arguments supplied: tool_choice, tools"
    )
    assert reply.body["error"]["param"] is None
    assert error.kind is ErrorKind.BAD_REQUEST


def test_required_becomes_the_one_tool_or_auto_before_2024_06_01():
    """tool_choice required, which 2024-02-01 lacks, maps to its nearest documented form."""
    endpoint = _endpoint("2024-02-01")
    one = azure.chat_request(endpoint, _request(tools=(READ,), tool_choice="required"), False)
    assert one.json["tool_choice"] == {"type": "function", "function": {"name": "read_file"}}
    two = _request(tools=(READ, LIST), tool_choice="required")
    assert azure.chat_request(endpoint, two, False).json["tool_choice"] == "auto"
    current = azure.chat_request(_endpoint("2024-06-01"), two, False)
    assert current.json["tool_choice"] == "required"


def test_a_refusal_to_structured_output_is_a_content_filter_error_whole_or_streamed():
    """The model's refusal (content null) fails the attempt as content_filter."""
    completion = plan_completion(
        _ask(tools=(), json_schema=True), Answer(refusal="I can't help with that.")
    )
    with pytest.raises(ProviderError) as whole:
        azure.parse_chat(200, httpx.Headers(), _answer(completion))
    with pytest.raises(ProviderError) as streamed:
        _streamed(completion)
    for caught in (whole, streamed):
        assert caught.value.kind is ErrorKind.CONTENT_FILTER
        assert "can't help" in caught.value.message


def test_a_call_whose_arguments_are_not_json_is_malformed_whole_or_streamed():
    """Broken arguments are a malformed_response, never a crash."""
    completion = plan_completion(_ask(), Answer("", tool_calls=(ToolUse("read_file", {}),)))
    body = json.loads(_answer(completion))
    body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "{oops"
    with pytest.raises(ProviderError) as whole:
        azure.parse_chat(200, httpx.Headers(), json.dumps(body).encode())
    assert whole.value.kind is ErrorKind.MALFORMED_RESPONSE
    parser = azure.stream_parser(httpx.Headers())
    delta = {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "[1"}}]}
    choice = {"index": 0, "delta": delta, "finish_reason": "tool_calls"}
    parser.feed("", json.dumps({"choices": [choice]}))
    with pytest.raises(ProviderError) as streamed:
        parser.finish()
    assert streamed.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_output_instruction_holds_the_schema_as_json():
    """The shared last-resort instruction asks for JSON only and carries the schema itself."""
    schema = Schema(Plan)
    first, _, rest = output_instruction(schema).partition("\n")
    assert "JSON" in first
    assert json.loads(rest) == schema.schema()


def test_the_fake_server_streams_a_scripted_call_that_the_protocol_reads_whole():
    """Over real HTTP: the request the protocol builds, the fake's SSE call, the whole call."""
    script = [Answer("", tool_calls=(ToolUse("read_file", {"path": "b.txt"}, id="call_b"),))]
    with FakeAzureOpenAI(keys={"azure-key"}, script=script) as fake, httpx.Client() as client:
        options = (("api_version", "2024-10-21"), ("deployment", "gpt-4o"))
        endpoint = Endpoint(fake.base_url, "gpt-4o", api_key="azure-key", options=options)
        call = azure.chat_request(endpoint, _request(tools=(READ,)), stream=True)
        headers = dict(call.headers)
        with connect_sse(client, "POST", call.url, headers=headers, json=call.json) as source:
            parser = azure.stream_parser(source.response.headers)
            pieces = [p for event in source.iter_sse() for p in parser.feed("", event.data)]
    result = parser.finish()
    assert [p.name for p in pieces if isinstance(p, ToolCallDelta) and p.name] == ["read_file"]
    assert (result.tool_calls[0].id, result.tool_calls[0].arguments) == (
        "call_b",
        {"path": "b.txt"},
    )
    assert result.usage.input_tokens > 0
