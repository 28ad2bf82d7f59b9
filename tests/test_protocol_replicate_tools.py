"""Replicate without tools: structured output by instruction, tool turns in words."""

import json

import httpx
import pytest
from pydantic import BaseModel

from runtime._chat import ChatRequest, Message
from runtime._structured import OutputMismatchError, Schema
from runtime._tools import ToolCall
from runtime.protocols import Endpoint
from runtime.protocols import _replicate as replicate
from runtime.protocols._common import output_instruction
from runtime.testing import _replicate as wire
from runtime.testing._completion import ChatAsk, plan_completion
from runtime.testing._script import Answer

pytestmark = pytest.mark.timeout(10)

LLAMA = "meta/meta-llama-3-8b-instruct"
DEEPSEEK = "deepseek-ai/deepseek-r1"
ENDPOINT = Endpoint("https://api.replicate.com/v1", LLAMA, api_key="r8_token")
PLAN = '{"steps": ["read", "write"]}'


class Plan(BaseModel):
    """A planner's answer."""

    steps: list[str]


def _call(*messages, model=LLAMA, stream=False, **kwargs):
    request = ChatRequest(messages or (Message("user", "plan"),), model, **kwargs)
    return replicate.chat_request(ENDPOINT, request, stream)


def _read(call, model=LLAMA):
    return wire.read_ask(call.json, model=model, stream=False, query={})


def _parsed(text, model=LLAMA):
    """The protocol's reading of the fake's finished prediction answering ``text``."""
    completion = plan_completion(ChatAsk(model=model, prompt="plan"), Answer(text))
    reply = wire.answer(completion, model)
    return replicate.parse_chat(reply.status, httpx.Headers(), json.dumps(reply.body).encode())


def test_replicate_takes_no_tools():
    """The protocol says so, and the router skips Replicate for tasks with tools."""
    assert replicate.PROTOCOL.tools is False


def test_structured_output_ends_the_system_prompt_with_the_schema():
    """The last resort: the instruction with the schema follows the caller's system prompt."""
    call = _call(Message("system", "Be brief."), Message("user", "plan"), output=Schema(Plan))
    inputs = call.json["input"]
    assert inputs["system_prompt"] == f"Be brief.\n\n{output_instruction(Schema(Plan))}"
    assert inputs["prompt"] == "plan"
    assert "response_format" not in call.json
    assert json.dumps(Schema(Plan).schema()) in _read(call).prompt


def test_structured_output_without_a_system_prompt_is_the_instruction_alone():
    """With no system prompt of the caller's, the instruction is the whole system prompt."""
    call = _call(output=Schema(Plan))
    assert call.json["input"]["system_prompt"] == output_instruction(Schema(Plan))


def test_a_model_without_a_system_prompt_input_gets_it_in_the_prompt():
    """DeepSeek's models take no system_prompt: the system text leads the prompt instead."""
    call = _call(
        Message("system", "Be brief."), Message("user", "plan"), model=DEEPSEEK, output=Schema(Plan)
    )
    inputs = call.json["input"]
    assert "system_prompt" not in inputs
    assert inputs["prompt"] == f"Be brief.\n\n{output_instruction(Schema(Plan))}\n\nplan"
    ask = _read(call, DEEPSEEK)
    assert "Be brief." in ask.prompt
    assert "JSON Schema" in ask.prompt
    assert replicate.takes_system_prompt(LLAMA)
    assert not replicate.takes_system_prompt("deepseek-ai/deepseek-v3")
    assert not replicate.takes_system_prompt("meta/meta-llama-3-8b")


def test_the_fake_never_shows_a_deepseek_model_its_system_prompt_input():
    """Sent as system_prompt to a model without that input, the text never reaches it."""
    body = {"input": {"prompt": "plan", "system_prompt": "Be brief."}}
    assert "Be brief." not in wire.read_ask(body, model=DEEPSEEK, stream=False, query={}).prompt
    assert "Be brief." in wire.read_ask(body, model=LLAMA, stream=False, query={}).prompt


def test_a_json_answer_comes_back_as_text_the_schema_validates():
    """The answer is the model's text; the runtime's check makes it a Plan, fenced or not."""
    result = _parsed(PLAN)
    assert result.text == PLAN
    assert Schema(Plan).parse(result.text) == Plan(steps=["read", "write"])
    fenced = _parsed(f"```json\n{PLAN}\n```")
    assert Schema(Plan).parse(fenced.text) == Plan(steps=["read", "write"])
    with pytest.raises(OutputMismatchError):
        Schema(Plan).parse(_parsed('{"steps": "all of them"}').text)


def test_a_streamed_json_answer_joins_into_the_same_text():
    """Streamed from urls.stream, the pieces join into the JSON the schema validates."""
    completion = plan_completion(ChatAsk(model=LLAMA, prompt="plan"), Answer(PLAN))
    plan = wire.stream(completion, ChatAsk(model=LLAMA, prompt="plan", stream=True))
    parser = replicate.stream_parser(httpx.Headers())
    pieces = []
    for frame in (*plan.head, *plan.body, *plan.tail):
        fields = dict(
            line.split(": ", 1) for line in frame.decode().strip().splitlines() if ": " in line
        )
        pieces += parser.feed(fields["event"], fields["data"])
    assert "".join(pieces) == PLAN
    assert Schema(Plan).parse(parser.finish().text).steps == ["read", "write"]


def test_a_conversation_that_used_tools_elsewhere_is_flattened_in_words():
    """After a fallback, earlier calls and results stay in the prompt, as text."""
    call = ToolCall.of("call_abc", "read_file", {"path": "a.txt"})
    history = (
        Message("user", "read a"),
        Message("assistant", "Reading.", tool_calls=(call,)),
        Message("tool", "contents of a", tool_call_id="call_abc", tool_name="read_file"),
        Message("tool", "no such file", tool_call_id="call_x", tool_name="stat", is_error=True),
    )
    prompt = _call(*history).json["input"]["prompt"]
    assert prompt == (
        "User: read a\n\n"
        'Assistant: Reading. [called read_file {"path":"a.txt"}]\n\n'
        "Tool read_file returned: contents of a\n\n"
        "Tool stat failed: no such file\n\n"
        "Assistant:"
    )
    assert _read(_call(*history)).prompt == prompt
