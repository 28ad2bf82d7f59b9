"""Bedrock Converse with tools and structured output, against the fake's own bytes."""

import json

import httpx
import pytest
from pydantic import BaseModel

from runtime._chat import ChatRequest, ImagePart, Message, TextPart
from runtime._errors import ErrorKind, ProviderError
from runtime._structured import Schema
from runtime._tools import Tool, ToolCall, ToolCallDelta
from runtime.protocols import Endpoint
from runtime.protocols import _bedrock as bedrock
from runtime.protocols._bedrock_tools import OUTPUT_TOOL, native_output
from runtime.testing import _bedrock as wire
from runtime.testing._bedrock_tools import model_answer
from runtime.testing._completion import AskError, ChatAsk, plan_completion
from runtime.testing._script import Answer, ToolUse

pytestmark = pytest.mark.timeout(10)

CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
CLAUDE_4_5 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
LLAMA = "meta.llama3-3-70b-instruct-v1:0"
ENDPOINT = Endpoint(base_url="https://bedrock-runtime.us-east-1.amazonaws.com", model=CLAUDE)
READ = Tool(
    "read_file",
    "Read a file",
    {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)
LIST = Tool("list_dir", "List a directory")
CALL = ToolCall.of("tooluse_abc", "read_file", {"path": "a.txt"})
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5Er"
    "kJggg=="
)


class Plan(BaseModel):
    """A planner's answer."""

    steps: list[str]


def _body(history, model=CLAUDE, *, stream=False, **kw):
    return bedrock.chat_request(ENDPOINT, ChatRequest(tuple(history), model, **kw), stream).json


def _read(body, model=CLAUDE, *, stream=False):
    """The fake's reading of a body (it raises `AskError` where Bedrock answers 400)."""
    return wire.read_ask(body, model=model, stream=stream, query={})


def _ask(tools=("read_file",), **kw):
    return ChatAsk(model=CLAUDE, prompt="read a", tools=tools, **kw)


def _completion(ask, answer):
    """What the fake answers, as a Bedrock model gives it (ids, forced calls)."""
    return plan_completion(ask, model_answer(ask, answer))


def _parse_whole(completion):
    body = json.dumps(wire.answer(completion, CLAUDE)).encode()
    return bedrock.parse_chat(200, httpx.Headers(), body)


def _frames(completion, ask):
    plan = wire.stream(completion, ask)
    return list(bedrock.decode_event_stream([b"".join((*plan.head, *plan.body, *plan.tail))]))


def _parse_stream(frames):
    parser = bedrock.stream_parser(httpx.Headers())
    pieces = [piece for name, payload in frames for piece in parser.feed(name, payload)]
    return pieces, parser.finish()


def _event(name, payload):
    return name, json.dumps(payload)


HISTORY = (
    Message("user", "read a"),
    Message("assistant", "", tool_calls=(CALL,)),
    Message("tool", "contents of a", tool_call_id="tooluse_abc", tool_name="read_file"),
)


def test_tools_and_a_named_choice_are_sent_in_converse_shape():
    """Tools become toolSpecs with an input schema; a tool's name is a ``tool`` choice."""
    body = _body([Message("user", "read a")], tools=(READ, LIST), tool_choice="read_file")
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "read_file",
                    "inputSchema": {"json": dict(READ.parameters)},
                    "description": "Read a file",
                }
            },
            {
                "toolSpec": {
                    "name": "list_dir",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                    "description": "List a directory",
                }
            },
        ],
        "toolChoice": {"tool": {"name": "read_file"}},
    }
    ask = _read(body)
    assert (ask.tools, ask.tool_choice) == (("read_file", "list_dir"), "read_file")


@pytest.mark.parametrize(
    ("choice", "sent"),
    [(None, None), ("auto", None), ("required", {"any": {}})],
)
def test_auto_is_the_default_choice_and_required_is_any(choice, sent):
    """``auto`` sends no toolChoice (Converse's default); ``required`` asks for ``any``."""
    body = _body([Message("user", "read a")], tools=(READ,), tool_choice=choice)
    assert body["toolConfig"].get("toolChoice") == sent
    assert _read(body).tool_choice == ("required" if sent else None)


def test_none_sends_no_tools_when_the_conversation_has_no_tool_blocks():
    """Converse has no ``none``: without tools offered the model cannot call one."""
    body = _body([Message("user", "read a")], tools=(READ,), tool_choice="none")
    assert "toolConfig" not in body
    assert _read(body).tools == ()


def test_none_keeps_the_tools_when_the_conversation_holds_tool_blocks():
    """Bedrock wants a toolConfig beside tool blocks, so ``none`` falls back to the default."""
    body = _body(HISTORY, tools=(READ,), tool_choice="none")
    assert body["toolConfig"] == {
        "tools": [_body(HISTORY, tools=(READ,))["toolConfig"]["tools"][0]]
    }
    _read(body)


def test_tool_blocks_without_tools_offered_bring_the_called_tools():
    """A conversation with calls but no tools gets a toolConfig naming the tools it called."""
    body = _body(HISTORY)
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "read_file",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                }
            }
        ]
    }
    _read(body)


def test_a_call_and_its_result_go_back_as_tool_use_and_tool_result_blocks():
    """The call is a toolUse block of the assistant turn, its result a toolResult block."""
    body = _body(HISTORY, tools=(READ,))
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "toolUse": {
                        "toolUseId": "tooluse_abc",
                        "name": "read_file",
                        "input": {"path": "a.txt"},
                    }
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tooluse_abc", "content": [{"text": "contents of a"}]}}
            ],
        },
    ]
    assert _read(body).prompt.endswith("contents of a")


def test_parallel_results_go_in_one_user_turn_before_the_next_text():
    """Results of one turn share one user turn (roles must alternate), ahead of new text."""
    second = ToolCall.of("tooluse_def", "list_dir", {})
    history = (
        Message("user", "look around"),
        Message("assistant", "Looking.", tool_calls=(CALL, second)),
        Message("tool", "contents of a", tool_call_id="tooluse_abc"),
        Message("tool", "no such dir", tool_call_id="tooluse_def", is_error=True),
        Message("user", "and now?"),
    )
    body = _body(history, tools=(READ, LIST))
    assert [turn["role"] for turn in body["messages"]] == ["user", "assistant", "user"]
    assistant, results = body["messages"][1:]
    assert assistant["content"][0] == {"text": "Looking."}
    assert results["content"] == [
        {"toolResult": {"toolUseId": "tooluse_abc", "content": [{"text": "contents of a"}]}},
        {
            "toolResult": {
                "toolUseId": "tooluse_def",
                "content": [{"text": "no such dir"}],
                "status": "error",
            }
        },
        {"text": "and now?"},
    ]
    _read(body)


def test_a_result_with_an_image_and_a_cache_mark_keeps_both():
    """A result's image goes inside its toolResult; its cache mark follows the block."""
    result = Message(
        "tool",
        (TextPart("a pixel", cache=True), ImagePart(data=PNG, media_type="image/png")),
        tool_call_id="tooluse_abc",
    )
    body = _body((*HISTORY[:2], result), tools=(READ,))
    block, cache = body["messages"][2]["content"]
    assert block["toolResult"]["content"] == [
        {"text": "a pixel"},
        {"image": {"format": "png", "source": {"bytes": PNG}}},
    ]
    assert cache == {"cachePoint": {"type": "default"}}
    _read(body)


def test_an_error_result_without_output_still_has_content():
    """Bedrock refuses an error result without content, so an empty one says the tool failed."""
    failed = Message("tool", "", tool_call_id="tooluse_abc", is_error=True)
    body = _body((*HISTORY[:2], failed), tools=(READ,))
    result = body["messages"][2]["content"][0]["toolResult"]
    assert result["status"] == "error"
    assert result["content"][0]["text"]
    _read(body)


def test_an_id_bedrock_cannot_take_is_rewritten_alike_in_call_and_result():
    """Another provider's id with characters Bedrock refuses becomes one it takes, both ends."""
    call = ToolCall.of("call/1 x", "read_file", {"path": "a"})
    history = (
        Message("user", "read a"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", "a", tool_call_id="call/1 x"),
    )
    body = _body(history, tools=(READ,))
    use = body["messages"][1]["content"][0]["toolUse"]["toolUseId"]
    result = body["messages"][2]["content"][0]["toolResult"]["toolUseId"]
    assert use == result == "call_1_x"
    _read(body)


def test_a_whole_answer_with_parallel_calls_parses_into_tool_calls():
    """Two toolUse blocks come back in order, with Bedrock's ids and parsed input."""
    ask = _ask(tools=("read_file", "list_dir"))
    answer = Answer(
        text="", tool_calls=(ToolUse("read_file", {"path": "a"}), ToolUse("list_dir", {"dir": "."}))
    )
    result = _parse_whole(_completion(ask, answer))
    assert [(c.name, c.arguments) for c in result.tool_calls] == [
        ("read_file", {"path": "a"}),
        ("list_dir", {"dir": "."}),
    ]
    assert all(c.id.startswith("tooluse_") for c in result.tool_calls)
    assert (result.text, result.finish_reason) == ("", "tool_calls")


def test_a_streamed_call_yields_its_name_then_input_fragments_then_the_whole_call():
    """Frames: start, text, the call's block start, input fragments, stops; whole at the end."""
    ask = _ask(stream=True)
    answer = Answer(
        text="Reading it.", tool_calls=(ToolUse("read_file", {"path": "a long/path.txt"}),)
    )
    frames = _frames(_completion(ask, answer), ask)
    names = [name for name, _ in frames]
    assert names == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "contentBlockStart",
        *["contentBlockDelta"] * 4,
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    pieces, result = _parse_stream(frames)
    assert "".join(p for p in pieces if isinstance(p, str)) == "Reading it."
    deltas = [p for p in pieces if isinstance(p, ToolCallDelta)]
    assert (deltas[0].name, deltas[0].arguments) == ("read_file", "")
    assert deltas[0].id.startswith("tooluse_")
    assert len(deltas) == 5
    assert all(d.name is None and d.id is None for d in deltas[1:])
    (call,) = result.tool_calls
    assert (call.id, call.name, call.arguments) == (
        deltas[0].id,
        "read_file",
        {"path": "a long/path.txt"},
    )
    assert (result.text, result.finish_reason) == ("Reading it.", "tool_calls")


def test_structured_output_is_native_on_models_that_take_it():
    """Claude 4.5 gets ``outputConfig.textFormat`` with the schema as JSON text, no tool."""
    body = _body([Message("user", "plan")], CLAUDE_4_5, output=Schema(Plan))
    structure = body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
    assert body["outputConfig"]["textFormat"]["type"] == "json_schema"
    assert json.loads(structure["schema"]) == Schema(Plan).schema()
    assert structure["name"] == "Plan"
    assert "toolConfig" not in body
    assert _read(body, CLAUDE_4_5).json_schema is True


def test_structured_output_elsewhere_is_a_forced_tool_whose_input_is_the_answer():
    """Other models must call the output tool; its input comes back as the text, no call."""
    body = _body([Message("user", "plan")], output=Schema(Plan))
    assert "outputConfig" not in body
    (spec,) = body["toolConfig"]["tools"]
    assert spec["toolSpec"]["name"] == OUTPUT_TOOL
    assert spec["toolSpec"]["inputSchema"] == {"json": Schema(Plan).schema()}
    assert body["toolConfig"]["toolChoice"] == {"any": {}}
    ask = _read(body)
    completion = _completion(ask, Answer('{"steps": ["read", "write"]}'))
    assert completion.tool_calls[0].name == OUTPUT_TOOL
    result = _parse_whole(completion)
    assert json.loads(result.text) == {"steps": ["read", "write"]}
    assert (result.tool_calls, result.finish_reason) == ((), "stop")
    assert Schema(Plan).parse(result.text) == Plan(steps=["read", "write"])


def test_a_streamed_forced_tool_answer_streams_as_text():
    """The output tool's input fragments are text pieces, and the whole is the answer."""
    body = _body([Message("user", "plan")], stream=True, output=Schema(Plan))
    ask = _read(body, stream=True)
    pieces, result = _parse_stream(_frames(_completion(ask, Answer('{"steps": ["a", "b"]}')), ask))
    assert all(isinstance(p, str) for p in pieces)
    assert len(pieces) > 1
    assert json.loads("".join(pieces)) == json.loads(result.text) == {"steps": ["a", "b"]}
    assert (result.tool_calls, result.finish_reason) == ((), "stop")


def test_structured_output_beside_tools_leaves_the_model_a_choice_of_tools():
    """With tools too, the output tool joins them and some tool must be called."""
    body = _body([Message("user", "plan")], tools=(READ,), output=Schema(Plan))
    names = [t["toolSpec"]["name"] for t in body["toolConfig"]["tools"]]
    assert names == ["read_file", OUTPUT_TOOL]
    assert body["toolConfig"]["toolChoice"] == {"any": {}}
    _read(body)


@pytest.mark.parametrize("model", [LLAMA, "us.deepseek.r1-v1:0"])
def test_models_without_tool_choice_are_asked_for_the_schema_by_instruction(model):
    """Llama takes no tool choice (nor tools when streaming): the schema goes in the system."""
    body = _body([Message("user", "plan")], model, stream=True, output=Schema(Plan))
    assert "toolConfig" not in body
    assert "outputConfig" not in body
    instruction = body["system"][-1]["text"]
    assert json.dumps(Schema(Plan).schema(), separators=(",", ":")) in instruction
    ask = _read(body, model, stream=True)
    _, result = _parse_stream(_frames(_completion(ask, Answer('{"steps": ["a"]}')), ask))
    assert Schema(Plan).parse(result.text) == Plan(steps=["a"])


def test_a_forced_tool_needs_a_schema_of_an_object():
    """A non-object schema cannot be a tool's input: the attempt fails as a bad request."""
    with pytest.raises(ProviderError) as caught:
        _body(
            [Message("user", "list")], output=Schema({"type": "array", "items": {"type": "string"}})
        )
    assert caught.value.kind is ErrorKind.BAD_REQUEST


def test_strict_tools_are_strict_only_where_bedrock_takes_it():
    """``strict`` goes to models with structured output, not to others (which refuse it)."""
    strict = Tool("read_file", parameters=READ.parameters, strict=True)
    native = _body([Message("user", "a")], CLAUDE_4_5, tools=(strict,))
    other = _body([Message("user", "a")], tools=(strict,))
    assert native["toolConfig"]["tools"][0]["toolSpec"]["strict"] is True
    assert "strict" not in other["toolConfig"]["tools"][0]["toolSpec"]


@pytest.mark.parametrize(
    ("model", "native"),
    [
        (CLAUDE_4_5, True),
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", True),
        ("global.anthropic.claude-opus-4-6-v1", True),
        ("arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.claude-opus-4-5-v1:0", True),
        ("anthropic.claude-sonnet-4-20250514-v1:0", False),
        ("anthropic.claude-opus-4-1-20250805-v1:0", False),
        ("anthropic.claude-3-7-sonnet-20250219-v1:0", False),
        ("amazon.nova-pro-v1:0", False),
        (LLAMA, False),
    ],
)
def test_native_structured_output_is_for_the_documented_models(model, native):
    """Claude 4.5 and later (whatever the profile) have it; older and other models do not."""
    assert native_output(model) is native


def test_a_refusal_is_a_content_filter_error():
    """Converse has no refusal field; a filtered answer with no text and no call fails."""
    completion = _completion(_ask(tools=(), json_schema=True), Answer(refusal="I can't help."))
    with pytest.raises(ProviderError) as caught:
        _parse_whole(completion)
    assert caught.value.kind is ErrorKind.CONTENT_FILTER


def test_a_call_whose_input_is_not_an_object_is_malformed():
    """A toolUse whose input is not a JSON object is a malformed_response, never a crash."""
    content = [{"toolUse": {"toolUseId": "t", "name": "read_file", "input": ["a"]}}]
    body = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": "tool_use",
    }
    with pytest.raises(ProviderError) as caught:
        bedrock.parse_chat(200, httpx.Headers(), json.dumps(body).encode())
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


@pytest.mark.parametrize(
    "frames",
    [
        [
            _event(
                "contentBlockStart",
                {
                    "contentBlockIndex": 0,
                    "start": {"toolUse": {"toolUseId": "t", "name": "read_file"}},
                },
            ),
            _event(
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"path'}}},
            ),
            _event("messageStop", {"stopReason": "tool_use"}),
        ],
        [
            _event(
                "contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{}"}}}
            ),
            _event("messageStop", {"stopReason": "tool_use"}),
        ],
        [_event("messageStop", {"stopReason": "malformed_tool_use"})],
    ],
    ids=["broken-json", "no-start", "malformed-tool-use"],
)
def test_a_broken_streamed_call_is_malformed(frames):
    """Input that is not JSON, input for no started call, or Bedrock's own verdict fail."""
    with pytest.raises(ProviderError) as caught:
        _parse_stream(frames)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE


def _message(role, *blocks):
    return {"role": role, "content": list(blocks)}


USE = {"toolUse": {"toolUseId": "tooluse_1", "name": "read_file", "input": {}}}
RESULT = {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "ok"}]}}
TOOLS = {
    "tools": [{"toolSpec": {"name": "read_file", "inputSchema": {"json": {"type": "object"}}}}]
}


@pytest.mark.parametrize(
    ("body", "model", "stream", "words"),
    [
        (
            {
                "messages": [
                    _message("user", {"text": "a"}),
                    _message("assistant", USE),
                    _message("user", RESULT),
                ]
            },
            CLAUDE,
            False,
            "toolConfig field must be defined",
        ),
        (
            {"messages": [_message("user", RESULT)], "toolConfig": TOOLS},
            CLAUDE,
            False,
            "exceeds the number of toolUse blocks",
        ),
        (
            {
                "messages": [
                    _message("user", {"text": "a"}),
                    _message("assistant", USE),
                    _message("user", {"text": "b"}),
                ],
                "toolConfig": TOOLS,
            },
            CLAUDE,
            False,
            "Expected toolResult blocks at messages.2.content for the following Ids: tooluse_1",
        ),
        (
            {"messages": [_message("user", {"text": "a"}), _message("user", {"text": "b"})]},
            CLAUDE,
            False,
            "must alternate between user and assistant",
        ),
        (
            {
                "messages": [
                    _message("user", {"text": "a"}),
                    _message("assistant", USE),
                    _message("user", RESULT, {"text": "b"}),
                ],
                "toolConfig": TOOLS,
            },
            "mistral.mistral-large-2407-v1:0",
            False,
            "Conversation blocks and tool result blocks cannot be provided in the same turn",
        ),
        (
            {
                "messages": [
                    _message("user", {"text": "a"}),
                    _message("assistant", USE),
                    _message(
                        "user",
                        {
                            "toolResult": {
                                "toolUseId": "tooluse_1",
                                "content": [],
                                "status": "error",
                            }
                        },
                    ),
                ],
                "toolConfig": TOOLS,
            },
            CLAUDE,
            False,
            "cannot be empty when status value is error",
        ),
        (
            {"messages": [_message("user", {"text": "a"})], "toolConfig": TOOLS},
            "deepseek.r1-v1:0",
            False,
            "doesn't support tool use.",
        ),
        (
            {"messages": [_message("user", {"text": "a"})], "toolConfig": TOOLS},
            LLAMA,
            True,
            "doesn't support tool use in streaming mode",
        ),
        (
            {
                "messages": [_message("user", {"text": "a"})],
                "toolConfig": {**TOOLS, "toolChoice": {"any": {}}},
            },
            LLAMA,
            False,
            "doesn't support the toolConfig.toolChoice.any field",
        ),
        (
            {
                "messages": [_message("user", {"text": "a"})],
                "toolConfig": {
                    "tools": [
                        {"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "array"}}}}
                    ]
                },
            },
            CLAUDE,
            False,
            "inputSchema.json.type must be one of the following: object",
        ),
        (
            {
                "messages": [_message("user", {"text": "a"})],
                "toolConfig": {
                    "tools": [
                        {
                            "toolSpec": {
                                "name": "read file",
                                "inputSchema": {"json": {"type": "object"}},
                            }
                        }
                    ]
                },
            },
            CLAUDE,
            False,
            "regular expression pattern",
        ),
        (
            {"messages": [_message("user", {"text": "a"})], "toolConfig": {"tools": []}},
            CLAUDE,
            False,
            "length greater than or equal to 1",
        ),
    ],
    ids=[
        "no-tool-config",
        "result-without-call",
        "unanswered-call",
        "roles-not-alternating",
        "text-beside-result-on-mistral",
        "empty-error-result",
        "model-without-tools",
        "llama-streaming-tools",
        "llama-any",
        "schema-not-object",
        "bad-tool-name",
        "no-tools",
    ],
)
def test_the_fake_refuses_what_bedrock_refuses(body, model, stream, words):
    """Tool turns and configurations Bedrock answers 400 are refused with its message."""
    with pytest.raises(AskError) as caught:
        _read(body, model, stream=stream)
    assert words in caught.value.message
    reply = wire.bad_request(caught.value)
    assert reply.status == 400
    assert reply.headers["x-amzn-ErrorType"].startswith("ValidationException:")


def test_the_protocol_declares_tools():
    """Bedrock's Converse API takes tools."""
    assert bedrock.PROTOCOL.tools is True
