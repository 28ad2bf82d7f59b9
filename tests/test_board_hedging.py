"""Hedging, the time kept for a fallback, and the records of cancelled attempts."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest
from support import FAST_SECTIONS, config_toml

from runtime import StreamDelta, StreamEnd, StreamRestart, TaskFailedError
from runtime.testing import FAKES, Answer, Fail, Stall, StreamError

pytestmark = pytest.mark.timeout(30)

HEDGE_AFTER_S = 0.3
MARGIN_S = 1.6
"""What a bound may be overrun by: the fallback's own answer, and a loaded machine."""
LONG_TEXT = " ".join(["word"] * 20)
"""Streamed 50 ms a chunk, an answer that goes on for about a second after its first text."""
SECTIONS = (
    FAST_SECTIONS.replace("attempts = 2", "attempts = 1")
    .replace("request_s = 5.0", "request_s = 20.0")
    .replace("first_byte_s = 0.5", "first_byte_s = 4.0")
)


def _board(deployment, first, backup, *, role=None, first_settings=None):
    """A board whose role ``coder`` is first then backup (``warm``: backup, ``solo``: first)."""
    providers = {"first": (first, first_settings or {}), "backup": backup}
    cast = {"providers": ["first", "backup"], **(role or {})}
    roles: dict[str, Any] = {"coder": cast, "warm": ["backup"], "solo": ["first"]}
    deployment.write(config_toml(deployment, providers, roles, sections=SECTIONS))
    return deployment.board()


def _stream(board, role="coder", **kwargs):
    events = list(board.stream(role, "hi", **kwargs))
    assert isinstance(events[-1], StreamEnd)
    return events


def _attempts(deployment, task_id):
    return [a for a in deployment.events("attempt") if a["task_id"] == task_id]


def test_a_hedge_starts_the_next_provider_and_keeps_the_first_content(fakes, deployment):
    """A provider silent past hedge_after_s is raced; its cancelled attempt keeps its tokens."""
    first, backup = fakes("anthropic"), fakes("openai")
    board = _board(deployment, first, backup, role={"hedge_after_s": HEDGE_AFTER_S})
    first.script.append(Stall(after_chunks=0, idle_events=1))  # message_start has the usage
    backup.script.append(Answer(LONG_TEXT, chunk_delay_s=0.05))
    started = time.monotonic()
    events = _stream(board)
    first_text = next(i for i, e in enumerate(events) if isinstance(e, StreamDelta))
    assert {e.provider for e in events if isinstance(e, StreamDelta)} == {"backup"}
    reply = events[-1].reply
    assert reply.provider == "backup"
    assert time.monotonic() - started < HEDGE_AFTER_S + 1.0 + MARGIN_S
    assert first_text == 0
    assert [(a.provider, a.outcome) for a in reply.attempts] == [
        ("first", "cancelled"),
        ("backup", "ok"),
    ]
    assert "backup sent content first" in reply.attempts[0].message
    (hedge,) = deployment.events("hedge_started")
    assert (hedge["provider"], hedge["hedge"], hedge["after_s"]) == ("first", "backup", 0.3)
    (won,) = deployment.events("hedge_won")
    assert (won["provider"], won["cancelled"]) == ("backup", ["first"])
    cancelled = _attempts(deployment, reply.task_id)[0]
    assert cancelled["outcome"] == "cancelled"
    assert cancelled["input_tokens"] > 0
    assert cancelled["cost_usd"] > 0
    assert reply.usage.input_tokens > cancelled["input_tokens"]
    loser = board.stats().providers["first/coder"]
    assert (loser["failures"], loser["tokens"]["input"]) == (
        {"cancelled": 1},
        cancelled["input_tokens"],
    )


def test_a_slow_thinker_wins_its_hedge_when_it_answers_first(fakes, deployment):
    """The hedge does not cut the thinker off: its first text wins, the hedge is cancelled."""
    first, backup = fakes("openai"), fakes("gemini")
    board = _board(
        deployment,
        first,
        backup,
        role={"hedge_after_s": HEDGE_AFTER_S},
        first_settings={"first_token_s": 10.0},
    )
    first.script.append(Answer(LONG_TEXT, think_s=0.8, chunk_delay_s=0.05))
    backup.script.append(Answer("too late", delay_s=5.0))
    reply = board.ask("coder", "hi")
    assert (reply.provider, reply.text) == ("first", LONG_TEXT)
    assert [(a.provider, a.outcome) for a in reply.attempts] == [
        ("backup", "cancelled"),
        ("first", "ok"),
    ]
    (won,) = deployment.events("hedge_won")
    assert (won["provider"], won["cancelled"]) == ("first", ["backup"])
    cancelled = _attempts(deployment, reply.task_id)[0]
    assert (cancelled["input_tokens"], cancelled["cost_usd"]) == (0, None)  # unknown, not zero


@pytest.mark.parametrize("protocol", sorted(FAKES))
def test_a_streaming_caller_sees_only_the_winners_text(fakes, deployment, protocol):
    """When both attempts send text at about the same time, the caller gets one provider's only."""
    first, backup = fakes(protocol), fakes("openai")
    first_settings = {"auth": "api-key"} if protocol == "bedrock" else {}
    board = _board(
        deployment, first, backup, role={"hedge_after_s": 0.1}, first_settings=first_settings
    )
    first.script.append(Answer("the first text, whole", think_s=0.5, chunk_delay_s=0.02))
    backup.script.append(Answer("the backup text, whole", think_s=0.4, chunk_delay_s=0.02))
    events = _stream(board)
    reply = events[-1].reply
    deltas = [e for e in events if isinstance(e, StreamDelta)]
    assert not any(isinstance(e, StreamRestart) for e in events)
    assert {d.provider for d in deltas} == {reply.provider}
    assert "".join(d.text for d in deltas) == reply.text
    board.close()  # the loser's record may come after the reply: it is written by then
    outcomes = sorted(a["outcome"] for a in _attempts(deployment, reply.task_id))
    assert outcomes == ["cancelled", "ok"]


def test_a_hedge_goes_on_alone_when_the_first_attempt_fails(fakes, deployment):
    """The first provider failing while the hedge is in flight leaves the hedge to answer."""
    first, backup = fakes("openai"), fakes("anthropic")
    board = _board(deployment, first, backup, role={"hedge_after_s": 0.2})
    first.script.append(Fail(500, delay_s=0.5))
    backup.script.append(Answer("from backup", think_s=0.8))
    reply = board.ask("coder", "hi")
    assert reply.provider == "backup"
    assert [(a.provider, a.outcome) for a in reply.attempts] == [
        ("first", "server"),
        ("backup", "ok"),
    ]
    assert len([r for r in backup.requests if r.is_chat]) == 1


def test_a_hedged_task_goes_on_after_the_attempt_that_had_its_content_breaks(fakes, deployment):
    """The content an attempt claimed is void when it breaks: the next provider may claim it."""
    first, backup = fakes("openai"), fakes("anthropic")
    board = _board(deployment, first, backup, role={"hedge_after_s": 5.0})
    first.script.append(StreamError(after_chunks=1))
    backup.script.append(Answer("from backup"))
    reply = board.ask("coder", "hi")
    assert (reply.provider, reply.text) == ("backup", "from backup")
    assert [a.outcome for a in reply.attempts] == ["server", "ok"]


def test_an_attempt_keeps_the_fallbacks_live_p95_of_the_deadline(fakes, deployment):
    """A steady but endless first stream is cut so that the fallback, measured at ~1 s, fits."""
    first, backup = fakes("cohere"), fakes("openai", latency_s=1.0)
    board = _board(deployment, first, backup)
    board.ask("warm", "measure the backup")  # about 1 s: the backup's p95, live
    backup.latency_s = 0.1
    first.script.append(Answer(" ".join(["steady"] * 400), chunk_delay_s=0.05))
    started = time.monotonic()
    reply = board.ask("coder", "hi", deadline_s=4.0)
    assert reply.provider == "backup"
    assert time.monotonic() - started < 4.0
    cut = reply.attempts[0]
    assert cut.outcome == "timeout"
    assert "its share of the task's deadline, keeping 1." in cut.message
    assert "for backup" in cut.message


def test_an_unmeasured_fallback_still_leaves_half_the_deadline(fakes, deployment):
    """Before any measurement the fallback is owed a documented floor, at most half the time."""
    first, backup = fakes("openai"), fakes("anthropic")
    board = _board(deployment, first, backup)
    first.script.append(Answer(" ".join(["steady"] * 400), chunk_delay_s=0.05))
    started = time.monotonic()
    reply = board.ask("coder", "hi", deadline_s=3.0)
    assert reply.provider == "backup"
    assert time.monotonic() - started < 3.0
    assert "keeping 1.5 s for backup" in reply.attempts[0].message


def test_the_last_provider_may_use_the_whole_deadline(fakes, deployment):
    """With no fallback left, nothing is kept: the attempt ends at the task's deadline."""
    first, backup = fakes("openai"), fakes("anthropic")
    board = _board(deployment, first, backup)
    first.script.append(Answer(" ".join(["steady"] * 400), chunk_delay_s=0.05))
    with pytest.raises(TaskFailedError) as caught:
        board.ask("solo", "hi", deadline_s=1.0)
    assert "(the task's deadline)" in caught.value.attempts[0].message


def test_a_cancelled_stream_leaves_exactly_one_attempt_record(fakes, deployment):
    """Leaving a stream early records its attempt once, as cancelled, in the audit and the store."""
    first, backup = fakes("anthropic"), fakes("openai")
    board = _board(deployment, first, backup)
    first.script.append(Answer(LONG_TEXT, chunk_delay_s=0.1))
    stream = board.stream("coder", "hi")
    assert isinstance(next(stream), StreamDelta)
    stream.close()
    board.close()
    (finished,) = deployment.events("task_finished")
    assert finished["outcome"] == "cancelled"
    (attempt,) = _attempts(deployment, finished["task_id"])
    assert (attempt["provider"], attempt["outcome"]) == ("first", "cancelled")
    with sqlite3.connect(deployment.metrics_path) as store:
        rows = store.execute(
            "SELECT outcome, input_tokens FROM attempts WHERE task_id = ?", (finished["task_id"],)
        ).fetchall()
    assert rows == [("cancelled", attempt["input_tokens"])]


def test_a_hedge_winner_that_breaks_moves_the_task_on_at_once(fakes, deployment):
    """The winner breaking while the loser's cancellation is on its way moves the task on."""
    first, backup, third = fakes("anthropic"), fakes("openai"), fakes("gemini")
    providers = {"first": first, "backup": backup, "third": third}
    cast = {"providers": ["first", "backup", "third"], "hedge_after_s": 0.2}
    deployment.write(config_toml(deployment, providers, {"coder": cast}, sections=SECTIONS))
    first.script.append(Stall(after_chunks=0, idle_events=1))
    backup.script.append(StreamError(after_chunks=1))
    first.default = third.default = Answer("answered")
    started = time.monotonic()
    reply = deployment.board().ask("coder", "hi", deadline_s=20.0)
    assert reply.text == "answered"  # by first again (its attempt was cut, not failed), or third
    assert time.monotonic() - started < 0.2 + MARGIN_S
    assert sorted(a.outcome for a in reply.attempts) == ["cancelled", "ok", "server"]
