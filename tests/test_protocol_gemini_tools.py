"""Gemini generateContent with tools and structured output, against the fake's own bytes."""

import json

import httpx
import pytest
from pydantic import BaseModel

from runtime._chat import ChatRequest, Message
from runtime._errors import ErrorKind, ProviderError
from runtime._structured import Schema
from runtime._tools import Tool, ToolCall, ToolCallDelta
from runtime.protocols import Endpoint
from runtime.protocols import _gemini as gemini
from runtime.protocols._gemini_tools import SKIP_SIGNATURE
from runtime.testing import _gemini as wire
from runtime.testing._completion import AskError, ChatAsk, plan_completion
from runtime.testing._script import Answer, ToolUse

pytestmark = pytest.mark.timeout(10)

MODEL = "gemini-2.5-flash"
ENDPOINT = Endpoint(
    base_url="https://generativelanguage.googleapis.com/v1beta", model=MODEL, api_key="AIza-x"
)
READ = Tool(
    "read_file",
    "Read a file",
    {
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
        "additionalProperties": False,
    },
)
LIST = Tool("list_dir", "List a folder", {"type": "object", "properties": {"dir": {}}})
CALL = ToolCall.of("call_abc", "read_file", {"path": "a.txt"})


class Plan(BaseModel):
    """A planner's answer."""

    steps: list[str]


def _ask(tools=("read_file",), **kw):
    return ChatAsk(model=MODEL, prompt="read a", tools=tools, **kw)


def _planned(text="", *calls, **ask):
    """What the fake answers a request for ``read_file`` and ``list_dir`` (or ``ask``)."""
    ask.setdefault("tools", ("read_file", "list_dir"))
    return plan_completion(_ask(**ask), Answer(text, tool_calls=calls))


def _call(request, *, stream=False, model=MODEL):
    """The request's JSON body, after the fake has read it as the real API would."""
    body = gemini.chat_request(ENDPOINT, request, stream).json
    return body, wire.read_ask(body, model=model, stream=stream, query={"alt": "sse"})


def _answer(completion):
    body = json.dumps(wire.answer(completion, MODEL)).encode()
    return gemini.parse_chat(200, httpx.Headers(), body)


ASKED = Message("user", "read a and b")
CALLED = Message("assistant", "", tool_calls=(CALL, ToolCall.of("call_def", "list_dir", {})))
RESULT_A = Message("tool", "a", tool_call_id="call_abc", tool_name="read_file")
RESULT_B = Message("tool", "b", tool_call_id="call_def", tool_name="list_dir")
ANSWERED = (ASKED, CALLED, RESULT_A, RESULT_B)


def test_tools_and_a_named_choice_are_sent_as_function_declarations_and_any():
    """Tools become functionDeclarations with a JSON Schema; a tool's name forces it with ANY."""
    request = ChatRequest(
        (Message("user", "read a"),), MODEL, tools=(READ, LIST), tool_choice="read_file"
    )
    body, ask = _call(request)
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "read_file",
                    "description": "Read a file",
                    "parametersJsonSchema": dict(READ.parameters),
                },
                {
                    "name": "list_dir",
                    "description": "List a folder",
                    "parametersJsonSchema": dict(LIST.parameters),
                },
            ]
        }
    ]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["read_file"]}
    }
    assert ask.tools == ("read_file", "list_dir")
    assert ask.tool_choice == "read_file"


@pytest.mark.parametrize(
    ("choice", "mode"), [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")]
)
def test_each_tool_choice_becomes_its_function_calling_mode(choice, mode):
    """auto, none and required are Gemini's AUTO, NONE and ANY; the fake reads them back."""
    request = ChatRequest((Message("user", "read a"),), MODEL, tools=(READ,), tool_choice=choice)
    body, ask = _call(request)
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": mode}}
    assert ask.tool_choice == choice


def test_no_tool_choice_sends_no_tool_config():
    """Without a choice Gemini's default (AUTO) applies, so no toolConfig is sent."""
    body, ask = _call(ChatRequest((Message("user", "read a"),), MODEL, tools=(READ,)))
    assert "toolConfig" not in body
    assert ask.tool_choice is None


def test_a_call_and_its_results_go_back_as_a_model_turn_and_one_user_turn():
    """Calls are functionCall parts, the first signed; both results share one user turn."""
    failed = Message(
        "tool", "no such folder", tool_call_id="call_def", tool_name="list_dir", is_error=True
    )
    history = (ASKED, CALLED, Message("tool", "contents of a", tool_call_id="call_abc"), failed)
    body, _ = _call(ChatRequest(history, MODEL, tools=(READ, LIST)))
    user, model, results = body["contents"]
    assert user == {"role": "user", "parts": [{"text": "read a and b"}]}
    assert model == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"id": "call_abc", "name": "read_file", "args": {"path": "a.txt"}},
                "thoughtSignature": SKIP_SIGNATURE,
            },
            {"functionCall": {"id": "call_def", "name": "list_dir", "args": {}}},
        ],
    }
    assert results == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "id": "call_abc",
                    "name": "read_file",
                    "response": {"output": "contents of a"},
                }
            },
            {
                "functionResponse": {
                    "id": "call_def",
                    "name": "list_dir",
                    "response": {"error": "no such folder"},
                }
            },
        ],
    }


def test_a_result_without_its_tool_name_takes_the_name_of_the_call():
    """Gemini needs the function's name in a result; it is found from the earlier call."""
    history = (
        ASKED,
        CALLED,
        Message("tool", "x", tool_call_id="call_def"),
        Message("tool", "y", tool_call_id="call_abc"),
    )
    body, _ = _call(ChatRequest(history, MODEL, tools=(READ, LIST)))
    names = [p["functionResponse"]["name"] for p in body["contents"][2]["parts"]]
    assert names == ["list_dir", "read_file"]


def test_calls_made_elsewhere_pass_gemini_3s_signature_check():
    """A conversation begun on another provider continues on Gemini 3, which demands signatures."""
    gemini_3 = "gemini-3-flash-preview"
    _, ask = _call(ChatRequest(ANSWERED, gemini_3, tools=(READ, LIST)), model=gemini_3)
    assert ask.tools == ("read_file", "list_dir")


def test_the_fake_refuses_gemini_3_calls_without_a_signature():
    """Gemini 3's 400 for an unsigned function call of the current turn is reproduced."""
    body, _ = _call(ChatRequest(ANSWERED, MODEL, tools=(READ, LIST)))
    del body["contents"][1]["parts"][0]["thoughtSignature"]
    with pytest.raises(AskError, match="missing a thought_signature"):
        wire.read_ask(body, model="gemini-3-pro-preview", stream=False, query={})
    wire.read_ask(body, model=MODEL, stream=False, query={})


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ((ASKED, RESULT_A), "function response turn comes immediately after a function call turn"),
        ((ASKED, CALLED, RESULT_A), "number of function response parts is equal"),
    ],
)
def test_the_fake_refuses_results_that_do_not_answer_the_calls(history, message):
    """Gemini's 400s for a result after no call, and for a turn answering too few calls."""
    body = gemini.chat_request(ENDPOINT, ChatRequest(history, MODEL, tools=(READ, LIST)), False)
    with pytest.raises(AskError, match=message):
        wire.read_ask(body.json, model=MODEL, stream=False, query={})


def test_the_fake_refuses_a_call_turn_that_follows_no_user_turn():
    """A model turn of calls right after another model turn is Gemini's 400."""
    contents = [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": "thinking"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "read_file", "args": {}}}]},
    ]
    with pytest.raises(AskError, match="function call turn comes immediately after a user turn"):
        wire.read_ask({"contents": contents}, model=MODEL, stream=False, query={})


ONE_TOOL = [{"functionDeclarations": [{"name": "r"}]}]
JSON_SCHEMA_TOOL = [{"functionDeclarations": [{"name": "r", "parameters": dict(READ.parameters)}]}]
OPENAPI_OUTPUT = {
    "responseMimeType": "application/json",
    "responseSchema": {"type": "ARRAY", "items": Schema(Plan).schema()},
}
REFUSED = [
    ({"tools": [{"functionDeclarations": [{"name": "1read"}]}]}, "Invalid function name"),
    (
        {"tools": JSON_SCHEMA_TOOL},
        r"Unknown name \"additionalProperties\" at 'tools\[0\].function_declarations\[0\]",
    ),
    (
        {"toolConfig": {"functionCallingConfig": {"mode": "ANY"}}},
        "Function calling config is set without function_declarations",
    ),
    (
        {"tools": ONE_TOOL, "toolConfig": {"functionCallingConfig": {"mode": "REQUIRED"}}},
        "Invalid value at 'tool_config.function_calling_config.mode'",
    ),
    (
        {"tools": ONE_TOOL, "generationConfig": {"responseMimeType": "application/json"}},
        "Tool use with a response mime type: 'application/json' is unsupported",
    ),
    (
        {"generationConfig": OPENAPI_OUTPUT},
        "Unknown name \"additionalProperties\" at 'generation_config.response_schema.items'",
    ),
]


@pytest.mark.parametrize(("body", "message"), REFUSED)
def test_the_fake_refuses_tool_and_schema_fields_as_gemini_does(body, message):
    """Bad names, JSON Schema in the OpenAPI fields, a choice without tools, a bad mode."""
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **body}
    with pytest.raises(AskError, match=message):
        wire.read_ask(body, model=MODEL, stream=False, query={})


def test_the_fake_refuses_a_result_that_is_not_an_object():
    """A functionResponse's response is a protobuf Struct: a list is Gemini's 400."""
    body, _ = _call(ChatRequest(ANSWERED, MODEL, tools=(READ, LIST)))
    body["contents"][2]["parts"][0]["functionResponse"]["response"] = ["a"]
    with pytest.raises(AskError, match="Proto field is not repeating"):
        wire.read_ask(body, model=MODEL, stream=False, query={})


def test_a_whole_answer_with_parallel_calls_parses_into_tool_calls():
    """Two functionCall parts come back in order, with distinct stable ids and tool_calls."""
    completion = _planned(
        "", ToolUse("read_file", {"path": "a"}), ToolUse("list_dir", {"dir": "."})
    )
    raw = wire.answer(completion, MODEL)
    result = gemini.parse_chat(200, httpx.Headers(), json.dumps(raw).encode())
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("read_file", {"path": "a"}),
        ("list_dir", {"dir": "."}),
    ]
    assert [c.id for c in result.tool_calls] == [
        f"call_{raw['responseId']}_0",
        f"call_{raw['responseId']}_1",
    ]
    assert result.finish_reason == "tool_calls"
    assert result.text == ""
    again = gemini.parse_chat(200, httpx.Headers(), json.dumps(raw).encode())
    assert again.tool_calls == result.tool_calls


def test_a_call_keeps_the_id_gemini_gives_it():
    """Where the API names a call, that id is the call's id."""
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"id": "fc-7", "name": "read_file", "args": {}}}],
                },
                "finishReason": "STOP",
            }
        ],
        "responseId": "r1",
    }
    result = gemini.parse_chat(200, httpx.Headers(), json.dumps(body).encode())
    assert result.tool_calls == (ToolCall.of("fc-7", "read_file", {}),)


def test_a_streamed_answer_yields_text_then_each_call_whole():
    """Stream pieces: text, then a call's id, name and whole arguments; the end holds them."""
    completion = _planned(
        "Let me look.", ToolUse("read_file", {"path": "a long/path.txt"}), ToolUse("list_dir")
    )
    plan = wire.stream(completion, _ask(stream=True))
    parser = gemini.stream_parser(httpx.Headers())
    pieces = []
    for frame in (*plan.head, *plan.body, *plan.tail):
        pieces += parser.feed("", frame.decode().removeprefix("data: ").strip())
    deltas = [p for p in pieces if isinstance(p, ToolCallDelta)]
    assert pieces[0] == "Let me look."
    assert [(d.index, d.name, d.arguments) for d in deltas] == [
        (0, "read_file", '{"path":"a long/path.txt"}'),
        (1, "list_dir", "{}"),
    ]
    result = parser.finish()
    assert result.tool_calls[0].arguments == {"path": "a long/path.txt"}
    assert [c.id for c in result.tool_calls] == [d.id for d in deltas]
    assert result.finish_reason == "tool_calls"
    assert result.text == "Let me look."


def test_structured_output_asks_for_json_of_a_json_schema():
    """output=Schema(Model) is JSON mode with responseJsonSchema, its closed objects kept."""
    body, ask = _call(ChatRequest((Message("user", "plan"),), MODEL, output=Schema(Plan)))
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": Schema(Plan).schema(),
    }
    assert body["generationConfig"]["responseJsonSchema"]["additionalProperties"] is False
    assert ask.json_schema is True
    completion = _planned('{"steps": ["a"]}', tools=(), json_schema=True)
    assert Schema(Plan).parse(_answer(completion).text) == Plan(steps=["a"])


def test_structured_output_with_tools_goes_into_the_system_instruction():
    """Gemini 2.x refuses JSON mode beside tools, so the schema is asked for in words."""
    request = ChatRequest(
        (Message("user", "plan"),), MODEL, system="Be brief.", tools=(READ,), output=Schema(Plan)
    )
    body, ask = _call(request)
    assert "responseMimeType" not in body.get("generationConfig", {})
    instruction = body["systemInstruction"]["parts"][0]["text"]
    assert instruction.startswith("Be brief.\n\nAnswer with JSON only")
    assert json.dumps(Schema(Plan).schema()) in instruction
    assert ask.tools == ("read_file",)


def test_a_refusal_to_structured_output_is_a_content_filter_error():
    """Gemini refuses through its safety filter: an emptied candidate is content_filter."""
    completion = plan_completion(_ask(tools=(), json_schema=True), Answer(refusal="No."))
    with pytest.raises(ProviderError) as caught:
        _answer(completion)
    assert caught.value.kind is ErrorKind.CONTENT_FILTER
    plan = wire.stream(completion, _ask(tools=(), json_schema=True, stream=True))
    parser = gemini.stream_parser(httpx.Headers())
    for frame in plan.body:
        parser.feed("", frame.decode().removeprefix("data: ").strip())
    with pytest.raises(ProviderError, match="SAFETY"):
        parser.finish()


@pytest.mark.parametrize(
    "candidate",
    [
        {
            "content": {"parts": [{"functionCall": {"name": "read_file", "args": ["a"]}}]},
            "finishReason": "STOP",
        },
        {"content": {"parts": [{"functionCall": {"args": {}}}]}, "finishReason": "STOP"},
        {
            "finishReason": "MALFORMED_FUNCTION_CALL",
            "finishMessage": "Malformed function call: read_file(path=)",
        },
    ],
)
def test_a_broken_call_is_malformed(candidate):
    """Arguments that are no object, a call without a name, Gemini's own malformed finish."""
    body = json.dumps({"candidates": [candidate]}).encode()
    with pytest.raises(ProviderError) as caught:
        gemini.parse_chat(200, httpx.Headers(), body)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def test_the_gemini_protocol_says_it_takes_tools():
    """The router may send tool traffic to Gemini."""
    assert gemini.PROTOCOL.tools is True


def test_a_streamed_call_with_broken_arguments_fails_before_it_reaches_the_caller():
    """Gemini streams a call whole, so bad arguments fail the chunk, never a half call."""
    parser = gemini.stream_parser(httpx.Headers())
    part = {"functionCall": {"name": "read_file", "args": "a.txt"}}
    chunk = {"candidates": [{"content": {"role": "model", "parts": [part]}}]}
    with pytest.raises(ProviderError) as caught:
        parser.feed("", json.dumps(chunk))
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE
