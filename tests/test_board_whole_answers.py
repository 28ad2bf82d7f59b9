"""An ask to a provider that answers fast is sent for a whole answer; streams stay streams.

Every protocol that streams: after `WINDOW` fast answers, the next `ask` asks for a whole
answer (the fake sees a ``chat`` request, not ``chat_stream``), bounded by
``first_byte_s``; a `stream` caller still gets a stream; a provider whose answers are not
fast enough, or that ran out of time, is asked for streams.
"""

from __future__ import annotations

import time

import pytest
from support import config_toml

from runtime import StreamEnd
from runtime._policy.answer_mode import MARGIN, WINDOW
from runtime.testing import FAKES, Answer, Hang

pytestmark = pytest.mark.timeout(30)

FIRST_BYTE_S = 0.8
SECTIONS = f"""
[retry]
attempts = 1
jitter = false

[timeouts]
connect_s = 2.0
first_byte_s = {FIRST_BYTE_S}
request_s = 20.0
task_s = 30.0
validate_s = 1.0
"""
STREAMING = sorted(p for p in FAKES if p != "replicate")
"""Replicate streams only for `stream` callers already."""


def _board(fakes, deployment, protocol: str, **options):
    fake = fakes(protocol, **options)
    settings = {"auth": "api-key"} if protocol == "bedrock" else {}
    backup = fakes("openai")
    providers = {"first": (fake, settings), "backup": backup}
    deployment.write(
        config_toml(deployment, providers, {"coder": ["first", "backup"]}, sections=SECTIONS)
    )
    return fake, backup, deployment.board()


def _chats(fake) -> list[str]:
    """Each chat request the fake received: ``chat_stream`` if it asked for a stream."""
    return [
        "chat_stream"
        if fake.wire.read_ask(
            r.json, model="m", stream=r.action == "chat_stream", query=r.query
        ).stream
        else "chat"
        for r in fake.requests
        if r.is_chat
    ]


@pytest.mark.parametrize("protocol", STREAMING)
def test_asks_go_whole_after_a_window_of_fast_answers_and_streams_stay_streams(
    fakes, deployment, protocol
):
    fake, _, board = _board(fakes, deployment, protocol)
    fake.default = Answer("the same answer")
    replies = [board.ask("coder", "hi") for _ in range(WINDOW + 2)]
    assert {(r.text, r.provider) for r in replies} == {("the same answer", "first")}
    assert _chats(fake) == ["chat_stream"] * WINDOW + ["chat"] * 2
    events = list(board.stream("coder", "hi"))
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].reply.text == "the same answer"
    assert _chats(fake)[-1] == "chat_stream"
    whole = replies[-1]
    assert whole.usage.output_tokens > 0  # a whole answer's usage is read as a stream's is


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini", "bedrock"])
def test_a_fast_provider_that_hangs_is_left_after_first_byte_s_then_streams(
    fakes, deployment, protocol
):
    fake, backup, board = _board(fakes, deployment, protocol)
    for _ in range(WINDOW):
        board.ask("coder", "hi")
    fake.script.append(Hang())
    backup.script.append(Answer("from backup"))
    started = time.monotonic()
    reply = board.ask("coder", "hi")
    elapsed = time.monotonic() - started
    assert (reply.text, reply.provider) == ("from backup", "backup")
    first = reply.attempts[0]
    assert (first.provider, first.outcome) == ("first", "timeout")
    assert f"sent no answer within {FIRST_BYTE_S:g} s (first_byte_s; asked for a whole" in (
        first.message
    )
    assert FIRST_BYTE_S <= elapsed < FIRST_BYTE_S + 2.0
    assert _chats(fake)[-1] == "chat"
    board.ask("coder", "hi")
    assert _chats(fake)[-1] == "chat_stream"  # back to streams after the timeout


def test_a_provider_slower_than_the_margin_keeps_streaming(fakes, deployment):
    fake, _, board = _board(fakes, deployment, "openai", latency_s=FIRST_BYTE_S / MARGIN)
    for _ in range(WINDOW + 1):
        board.ask("coder", "hi")
    assert set(_chats(fake)) == {"chat_stream"}


def test_a_provider_configured_not_to_stream_still_answers_whole(fakes, deployment):
    fake = fakes("openai")
    providers = {"first": (fake, {"stream": False})}
    deployment.write(config_toml(deployment, providers, {"coder": ["first"]}, sections=SECTIONS))
    board = deployment.board()
    for _ in range(3):
        board.ask("coder", "hi")
    list(board.stream("coder", "hi"))
    assert set(_chats(fake)) == {"chat"}
