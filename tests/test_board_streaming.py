from __future__ import annotations

import asyncio

import pytest
from support import FAST_SECTIONS, config_toml, primary_and_backup

from runtime import StreamBrokenError, StreamDelta, StreamEnd, StreamRestart
from runtime.testing import Answer, Fail, Stall, StreamError

pytestmark = pytest.mark.timeout(30)

TEXT = "one two three four five six seven eight nine ten"


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
def test_a_stream_yields_text_as_it_arrives_then_the_reply(fakes, deployment, protocol):
    """Pieces of text arrive in order, then StreamEnd with usage and time to first token."""
    only = fakes(protocol)
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    only.script.append(Answer(TEXT, chunk_delay_s=0.01))
    board = deployment.board()
    events = list(board.stream("coder", "count"))
    deltas = [e for e in events if isinstance(e, StreamDelta)]
    assert len(deltas) > 1
    assert "".join(d.text for d in deltas) == TEXT
    assert isinstance(events[-1], StreamEnd)
    reply = events[-1].reply
    assert reply.text == TEXT
    assert reply.provider == "only"
    assert reply.usage.output_tokens > 0
    assert reply.ttft_ms is not None
    assert reply.ttft_ms < reply.latency_ms


def test_a_failure_before_the_first_text_falls_back_quietly(fakes, deployment):
    """A provider that fails before streaming anything is replaced with no restart event."""
    primary, backup = fakes("openai"), fakes("anthropic")
    primary_and_backup(deployment, primary, backup)
    primary.script.append(Fail(503))
    backup.script.append(Answer(TEXT))
    board = deployment.board()
    events = list(board.stream("coder", "x"))
    assert not any(isinstance(e, StreamRestart) for e in events)
    assert events[-1].reply.provider == "backup"


def test_a_stream_broken_after_text_raises_with_the_partial_text(fakes, deployment):
    """By default a stream that breaks mid-way raises StreamBrokenError with what arrived."""
    primary, backup = fakes("anthropic"), fakes("openai")
    primary_and_backup(deployment, primary, backup)
    primary.script.append(StreamError(after_chunks=3))
    board = deployment.board()
    received: list[object] = []
    with pytest.raises(StreamBrokenError) as caught:
        received.extend(board.stream("coder", "x"))
    partial = "".join(e.text for e in received if isinstance(e, StreamDelta))
    assert partial
    assert caught.value.partial_text == partial
    assert caught.value.attempts[0].outcome == "overloaded"
    assert len([r for r in backup.requests if r.is_chat]) == 0


def test_restart_goes_on_elsewhere_and_says_the_text_is_void(fakes, deployment):
    """With on_broken='restart' a StreamRestart is yielded, then the next provider's text."""
    primary, backup = fakes("anthropic"), fakes("openai")
    primary_and_backup(deployment, primary, backup)
    primary.script.append(StreamError(after_chunks=2))
    backup.script.append(Answer("from the backup"))
    board = deployment.board()
    events = list(board.stream("coder", "x", on_broken="restart"))
    kinds = [type(e).__name__ for e in events]
    restart = kinds.index("StreamRestart")
    assert 0 < restart < len(kinds) - 1
    assert events[restart].provider == "backup"
    after = "".join(e.text for e in events[restart:] if isinstance(e, StreamDelta))
    assert after == "from the backup"
    assert events[-1].reply.text == "from the backup"


def test_a_stalled_stream_counts_as_failed(fakes, deployment):
    """A stream silent for longer than stream_idle_s fails its attempt."""
    primary, backup = fakes("openai"), fakes("gemini")
    sections = FAST_SECTIONS.replace("task_s = 10.0", "task_s = 10.0\nstream_idle_s = 0.3")
    providers = {"primary": primary, "backup": backup}
    deployment.write(
        config_toml(deployment, providers, {"coder": ["primary", "backup"]}, sections=sections)
    )
    primary.script.append(Stall(after_chunks=2))
    board = deployment.board()
    reply = board.ask("coder", "x")
    assert reply.provider == "backup"
    assert reply.attempts[0].outcome == "timeout"
    assert "stalled" in reply.attempts[0].message


def test_a_provider_that_does_not_stream_gives_its_text_whole(fakes, deployment):
    """With stream = false the answer arrives as one delta, then the end."""
    only = fakes("gemini")
    deployment.write(
        config_toml(deployment, {"only": (only, {"stream": False})}, {"coder": ["only"]})
    )
    only.script.append(Answer(TEXT))
    events = list(deployment.board().stream("coder", "x"))
    assert [type(e).__name__ for e in events] == ["StreamDelta", "StreamEnd"]
    assert events[0].text == TEXT


def test_asyncio_streams_and_cancelling_ends_the_task(fakes, deployment):
    """Astream yields on the caller's loop; leaving early cancels the task in the runtime."""
    only = fakes("openai")
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    only.script.extend([Answer(TEXT), Answer(TEXT, chunk_delay_s=0.2)])
    board = deployment.board()

    async def main() -> tuple[str, str]:
        whole = "".join(
            [e.text async for e in board.astream("coder", "x") if isinstance(e, StreamDelta)]
        )
        events = board.astream("coder", "y")
        first = await anext(events)
        await events.aclose()
        return whole, first.text

    whole, first = asyncio.run(main())
    assert whole == TEXT
    assert first
    board.ask("coder", "flush")
    outcomes = [e["outcome"] for e in deployment.events("task_finished")]
    assert outcomes == ["ok", "cancelled", "ok"]
