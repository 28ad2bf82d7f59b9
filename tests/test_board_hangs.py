"""Every way a provider can hang, in every wire format, is bounded; slow thinkers are not cut.

The first provider of the role is a fake of each protocol that hangs at one point of its
answer; the second is a healthy fake OpenAI. Each task must be answered by the second
within the bound that applies (``first_token_s``, or ``min_chars_per_s`` over its
window) plus `MARGIN_S`, with the reason named in the first attempt's record.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from support import config_toml

from runtime import StreamEnd
from runtime.testing import FAKES, Answer, Hang, Stall, Trickle

pytestmark = pytest.mark.timeout(30)

FIRST_TOKEN_S = 0.4
"""The first provider's ``first_token_s`` in these tests."""
MARGIN_S = 1.6
"""What the bound may be overrun by: the fallback's own answer, and a loaded machine."""
SECTIONS = """
[retry]
attempts = 1
jitter = false

[timeouts]
connect_s = 2.0
first_byte_s = 4.0
stream_idle_s = 30.0
request_s = 30.0
task_s = 60.0
validate_s = 1.0
"""
"""Every other bound is far: the one a test pins is what ends the attempt."""

PROTOCOLS = sorted(FAKES)
SHAPES = {
    "no headers": (Hang(), {}),
    "headers only": (Hang(headers=True), {}),
    "first events only": (Stall(after_chunks=0, idle_events=1), {}),
    "non-content events forever": (Trickle(every_s=0.1), {}),
    "a whole answer whose body hangs": (Hang(headers=True), {"stream": False}),
}


def _board(fakes, deployment, protocol: str, first: dict[str, Any], sections: str = SECTIONS):
    primary, backup = fakes(protocol), fakes("openai")
    settings = {"auth": "api-key"} if protocol == "bedrock" else {}
    providers = {"first": (primary, settings | first), "backup": backup}
    deployment.write(
        config_toml(deployment, providers, {"coder": ["first", "backup"]}, sections=sections)
    )
    backup.script.append(Answer("from backup"))
    return primary, deployment.board()


def _answer(board, *, streamed: bool):
    """Ask (streaming when ``streamed``, going on elsewhere if it breaks); return the reply."""
    if not streamed:
        return board.ask("coder", "hi")
    events = list(board.stream("coder", "hi", on_broken="restart"))
    assert isinstance(events[-1], StreamEnd)
    return events[-1].reply


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_hang_before_any_content_moves_on_after_first_token_s(fakes, deployment, protocol, shape):
    """No headers, headers only, events without text, or a body that never comes: first_token_s."""
    behaviour, extra = SHAPES[shape]
    primary, board = _board(fakes, deployment, protocol, {"first_token_s": FIRST_TOKEN_S, **extra})
    primary.script.append(behaviour)
    started = time.monotonic()
    reply = _answer(board, streamed=not extra)
    elapsed = time.monotonic() - started
    assert (reply.text, reply.provider) == ("from backup", "backup")
    first = reply.attempts[0]
    assert (first.provider, first.outcome) == ("first", "timeout")
    assert f"no content within {FIRST_TOKEN_S:g} s (first_token_s" in first.message
    assert elapsed < FIRST_TOKEN_S + MARGIN_S


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_text_slower_than_the_floor_moves_on_after_the_window(fakes, deployment, protocol):
    """A stream that trickles text under min_chars_per_s is broken one window after its start."""
    sections = SECTIONS.replace("validate_s = 1.0", "validate_s = 1.0\nrate_window_s = 0.6")
    first = {"min_chars_per_s": 200.0}
    primary, board = _board(fakes, deployment, protocol, first, sections)
    primary.script.append(Answer(" ".join(["slow"] * 400), chunk_delay_s=0.2))
    started = time.monotonic()
    reply = _answer(board, streamed=True)
    elapsed = time.monotonic() - started
    assert reply.provider == "backup"
    assert reply.attempts[0].outcome == "timeout"
    assert "under the floor of 200 a second (min_chars_per_s)" in reply.attempts[0].message
    assert elapsed < 0.6 + MARGIN_S


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_slow_thinker_with_a_long_first_token_s_is_not_cut_off(
    fakes, deployment, protocol, streamed
):
    """A reasoning model that thinks 1 s, under a first_token_s of 3 s, answers itself."""
    first = {"first_token_s": 3.0, "min_chars_per_s": 5.0} | ({} if streamed else {"stream": False})
    primary, board = _board(fakes, deployment, protocol, first)
    primary.script.append(Answer("after some thought", think_s=1.0, chunk_delay_s=0.02))
    reply = _answer(board, streamed=streamed)
    assert (reply.text, reply.provider) == ("after some thought", "first")
    assert [a.outcome for a in reply.attempts] == ["ok"]
