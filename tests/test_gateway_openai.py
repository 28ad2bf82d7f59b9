"""The gateway speaks OpenAI's API: the official SDK, unchanged, routes by role through it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import openai
import pytest

from runtime.testing import (
    Answer,
    Fail,
    FakeAnthropic,
    FakeOpenAI,
    StreamError,
    ToolUse,
)

if TYPE_CHECKING:
    from gateway_support import ServedGateway

pytestmark = pytest.mark.timeout(60)
pytest_plugins = ("gateway_support",)
"""The fixtures ``primary``, ``backup`` and ``gateway`` in front of them."""

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def client(gateway: ServedGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)


def test_whole_answer_by_role(gateway: ServedGateway) -> None:
    """A chat completion names a role as its model and gets that role's provider's answer."""
    reply = client(gateway).chat.completions.create(
        model="coder", messages=[{"role": "user", "content": "Hi"}]
    )
    assert reply.choices[0].message.content == "Hello from the primary model"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "coder"
    assert reply.usage is not None
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streamed_answer_with_usage(gateway: ServedGateway) -> None:
    """A streamed completion arrives in chunks, ends with a finish reason and, asked, usage."""
    chunks = list(
        client(gateway).chat.completions.create(
            model="reviewer",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the backup model"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_tool_round_trip(gateway: ServedGateway, primary: FakeOpenAI, stream: bool) -> None:
    """The model's tool call reaches the client, and the client's result goes back to it."""
    primary.script.extend(
        [Answer("", tool_calls=(ToolUse("weather", {"city": "Paris"}),)), Answer("Sunny")]
    )
    sdk = client(gateway)
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        chunks = list(
            sdk.chat.completions.create(
                model="coder", messages=messages, tools=[WEATHER], stream=True
            )
        )
        pieces = [t for c in chunks for t in (c.choices[0].delta.tool_calls or [])]
        call_id = next(p.id for p in pieces if p.id)
        name = next(p.function.name for p in pieces if p.function and p.function.name)
        arguments = "".join(p.function.arguments or "" for p in pieces if p.function)
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
    else:
        reply = sdk.chat.completions.create(model="coder", messages=messages, tools=[WEATHER])
        assert reply.choices[0].finish_reason == "tool_calls"
        call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
    assert name == "weather"
    assert json.loads(arguments) == {"city": "Paris"}
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": "weather", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "sunny, 24 C"},
    ]  # fmt: skip
    again = sdk.chat.completions.create(model="coder", messages=messages, tools=[WEATHER])
    assert again.choices[0].message.content == "Sunny"
    sent = [e for e in primary.log.entries() if e.is_chat][-1].json
    assert sent["messages"][-1] == {
        "role": "tool",
        "tool_call_id": call_id,
        "content": "sunny, 24 C",
    }


def test_structured_output(gateway: ServedGateway, primary: FakeOpenAI) -> None:
    """A json_schema response format is checked by callboard and passed to the provider."""
    primary.script.append(Answer('{"answer": 42}'))
    reply = client(gateway).chat.completions.create(
        model="coder",
        messages=[{"role": "user", "content": "The answer?"}],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "answer",
                "schema": {
                    "type": "object",
                    "properties": {"answer": {"type": "integer"}},
                    "required": ["answer"],
                    "additionalProperties": False,
                },
            },
        },
    )
    assert json.loads(reply.choices[0].message.content or "") == {"answer": 42}
    sent = [e for e in primary.log.entries() if e.is_chat][-1].json
    assert sent["response_format"]["type"] == "json_schema"


def test_fallback_is_invisible(gateway: ServedGateway, primary: FakeOpenAI) -> None:
    """A provider that fails is replaced by the next of the role; the client sees an answer."""
    primary.script.append(Fail(500))
    response = client(gateway).chat.completions.with_raw_response.create(
        model="coder", messages=[{"role": "user", "content": "Hi"}]
    )
    assert response.parse().choices[0].message.content == "Hello from the backup model"
    assert response.headers["x-callboard-provider"] == "claude"


def test_every_provider_down(
    gateway: ServedGateway, primary: FakeOpenAI, backup: FakeAnthropic
) -> None:
    """When every provider fails, the SDK raises its own error, with the trail of attempts."""
    primary.down()
    backup.script.append(Fail(503))
    with pytest.raises(openai.APIStatusError) as raised:
        client(gateway).chat.completions.create(
            model="coder", messages=[{"role": "user", "content": "Hi"}]
        )
    assert raised.value.status_code == 502
    message = str(raised.value)
    assert "gpt" in message
    assert "claude" in message
    assert "network" in message


def test_every_provider_down_mid_stream_request(
    gateway: ServedGateway, primary: FakeOpenAI, backup: FakeAnthropic
) -> None:
    """A stream whose task fails before any content answers with the HTTP error, not events."""
    primary.down()
    backup.down()
    with pytest.raises(openai.APIStatusError) as raised:
        client(gateway).chat.completions.create(
            model="coder", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
    assert raised.value.status_code == 502


def test_unknown_role(gateway: ServedGateway) -> None:
    """A model that names no role is the SDK's NotFoundError, naming the roles there are."""
    with pytest.raises(openai.NotFoundError) as raised:
        client(gateway).chat.completions.create(
            model="nobody", messages=[{"role": "user", "content": "Hi"}]
        )
    assert "coder" in str(raised.value)
    assert raised.value.code == "model_not_found"


def test_bad_request_names_the_parameter(gateway: ServedGateway) -> None:
    """A request the API would refuse is the SDK's BadRequestError naming the parameter."""
    with pytest.raises(openai.BadRequestError) as raised:
        client(gateway).chat.completions.create(
            model="coder",
            messages=[{"role": "user", "content": "Hi"}],
            temperature="hot",  # type: ignore[arg-type]
        )
    assert raised.value.param == "temperature"


def test_models_lists_roles(gateway: ServedGateway) -> None:
    """GET /v1/models lists the roles a request may name, before provider/model names."""
    names = [m.id for m in client(gateway).models.list()]
    assert names[:2] == ["coder", "reviewer"]
    assert all("/" in name for name in names[2:])


def test_every_provider_rate_limited(
    gateway: ServedGateway, primary: FakeOpenAI, backup: FakeAnthropic
) -> None:
    """When every provider answers 429, the SDK raises RateLimitError, with retry-after."""
    primary.script.append(Fail(429))
    backup.script.append(Fail(429))
    with pytest.raises(openai.RateLimitError) as raised:
        client(gateway).chat.completions.create(
            model="coder", messages=[{"role": "user", "content": "Hi"}]
        )
    assert raised.value.response.headers["retry-after"] == "1"
    assert "rate_limited" in str(raised.value)


def test_stream_broken_after_text(gateway: ServedGateway, backup: FakeAnthropic) -> None:
    """A stream that breaks after its first text ends with an error event the SDK raises."""
    backup.script.append(StreamError(after_chunks=1))
    stream = client(gateway).chat.completions.create(
        model="reviewer", messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    texts = []
    with pytest.raises(openai.APIError) as raised:
        texts.extend(chunk.choices[0].delta.content for chunk in stream if chunk.choices)
    assert "".join(t or "" for t in texts)
    assert "broke" in str(raised.value) or "stream" in str(raised.value)
