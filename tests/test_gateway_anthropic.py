"""The gateway speaks Anthropic's Messages API: the official SDK, unchanged, routes through it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anthropic
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
    "name": "weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
HI = [{"role": "user", "content": "Hi"}]


def client(gateway: ServedGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)


def test_whole_message(gateway: ServedGateway) -> None:
    """A message names a role as its model; an OpenAI provider answers in Anthropic's shape."""
    reply = client(gateway).messages.create(
        model="coder", max_tokens=100, system="Be brief.", messages=HI
    )
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "Hello from the primary model"
    assert reply.stop_reason == "end_turn"
    assert reply.usage.output_tokens > 0


def test_streamed_message(gateway: ServedGateway) -> None:
    """A streamed message comes in Anthropic's event order; the SDK puts it back together."""
    sdk = client(gateway)
    with sdk.messages.stream(model="coder", max_tokens=100, messages=HI) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "Hello from the primary model"
    assert len(pieces) > 1
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_event_order(gateway: ServedGateway) -> None:
    """The raw events follow the Messages API: start, block start, deltas, stops, delta, stop."""
    events = list(
        client(gateway).messages.create(model="reviewer", max_tokens=100, messages=HI, stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}


@pytest.mark.parametrize("stream", [False, True])
def test_tool_round_trip(gateway: ServedGateway, primary: FakeOpenAI, stream: bool) -> None:
    """A tool_use reaches the client; its tool_result goes back to an OpenAI provider."""
    primary.script.extend(
        [Answer("", tool_calls=(ToolUse("weather", {"city": "Paris"}),)), Answer("Sunny")]
    )
    sdk = client(gateway)
    ask = {"model": "coder", "max_tokens": 100, "tools": [WEATHER]}
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        with sdk.messages.stream(messages=messages, **ask) as events:  # type: ignore[arg-type]
            reply = events.get_final_message()
    else:
        reply = sdk.messages.create(messages=messages, **ask)  # type: ignore[arg-type]
    assert reply.stop_reason == "tool_use"
    use = next(block for block in reply.content if block.type == "tool_use")
    assert use.name == "weather"
    assert use.input == {"city": "Paris"}
    messages += [
        {"role": "assistant", "content": [b.model_dump() for b in reply.content]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 24 C"}]},
    ]  # fmt: skip
    again = sdk.messages.create(messages=messages, **ask)  # type: ignore[arg-type]
    assert again.content[0].text == "Sunny"  # type: ignore[union-attr]
    sent = [e for e in primary.log.entries() if e.is_chat][-1].json
    assert sent["messages"][-1] == {
        "role": "tool",
        "tool_call_id": use.id,
        "content": "sunny, 24 C",
    }


def test_every_provider_down(
    gateway: ServedGateway, primary: FakeOpenAI, backup: FakeAnthropic
) -> None:
    """When every provider fails, the SDK raises its own error, with the trail of attempts."""
    primary.down()
    backup.script.append(Fail(500))
    with pytest.raises(anthropic.InternalServerError) as raised:
        client(gateway).messages.create(model="coder", max_tokens=100, messages=HI)
    assert raised.value.status_code == 502
    body = raised.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "api_error"
    assert "gpt" in body["error"]["message"]
    assert "claude" in body["error"]["message"]


def test_unknown_role_and_missing_max_tokens(gateway: ServedGateway) -> None:
    """Anthropic's own error types: not_found_error for a role, invalid_request_error."""
    sdk = client(gateway)
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk.messages.create(model="nobody", max_tokens=100, messages=HI)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        sdk.messages.with_raw_response.create(model="coder", max_tokens=0, messages=HI)
    assert "max_tokens" in str(bad.value)


def test_stream_broken_after_text(gateway: ServedGateway, primary: FakeOpenAI) -> None:
    """A stream that breaks after its first text ends with an error event the SDK raises."""
    primary.script.append(StreamError(after_chunks=1))
    pieces: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        client(gateway).messages.stream(model="coder", max_tokens=100, messages=HI) as stream,
    ):
        pieces.extend(stream.text_stream)
    assert pieces
    assert raised.value.body["error"]["type"] == "api_error"  # type: ignore[index]
