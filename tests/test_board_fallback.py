from __future__ import annotations

import time

import pytest
from support import FAST_SECTIONS, config_toml, primary_and_backup

from runtime import DeadlineExceededError, TaskFailedError
from runtime.testing import Answer, Drop, Fail, Hang, Malformed, ProxyError, Reset, StreamError

pytestmark = pytest.mark.timeout(20)


def two_providers(fakes, deployment, first="openai", second="anthropic", sections=""):
    primary, backup = fakes(first), fakes(second)
    deployment.write(
        config_toml(
            deployment,
            {"primary": primary, "backup": backup},
            {"coder": ["primary", "backup"]},
            sections=sections,
        )
    )
    backup.script.append(Answer("from backup"))
    return primary, backup, deployment.board()


@pytest.mark.parametrize(
    ("behaviour", "outcome"),
    [
        (Fail(500), "server"),
        (Fail(503), "overloaded"),
        (ProxyError(502), "server"),
        (Malformed(), "malformed_response"),
        (Drop(), "network"),
        (Reset(), "network"),
        (Hang(), "timeout"),
        (StreamError(after_chunks=1), "server"),
    ],
)
def test_a_failing_first_provider_falls_back_to_the_next(fakes, deployment, behaviour, outcome):
    """5xx, a proxy page, a malformed body, a dropped connection or a hang move the task on."""
    primary, _backup, board = two_providers(fakes, deployment)
    primary.script.append(behaviour)
    reply = board.ask("coder", "hi")
    assert (reply.text, reply.provider) == ("from backup", "backup")
    assert [(a.provider, a.outcome) for a in reply.attempts] == [
        ("primary", outcome),
        ("backup", "ok"),
    ]


def test_a_connection_reset_is_a_network_error_that_says_so(fakes, deployment):
    """A reset connection is `network`, "reset by peer", at once: never a timeout."""
    primary, _backup, board = two_providers(fakes, deployment)
    primary.script.append(Reset())
    first = board.ask("coder", "hi").attempts[0]
    assert first.outcome == "network"
    assert "connection reset by peer" in first.message
    assert "did not answer" not in first.message
    assert first.latency_ms < 1000


def test_anthropic_529_overloaded_falls_back(fakes, deployment):
    """Anthropic's 529 overloaded_error is retryable and moves the task on at once."""
    primary, _backup, board = two_providers(fakes, deployment, first="anthropic", second="openai")
    primary.script.append(Fail(529))
    reply = board.ask("coder", "hi")
    assert reply.provider == "backup"
    assert reply.attempts[0].outcome == "overloaded"
    assert reply.attempts[0].status == 529


def test_a_provider_that_is_down_falls_back(fakes, deployment):
    """A provider refusing connections costs one quick network failure."""
    primary, _backup, board = two_providers(fakes, deployment)
    primary.down()
    started = time.monotonic()
    reply = board.ask("coder", "hi")
    assert reply.provider == "backup"
    assert reply.attempts[0].outcome == "network"
    assert time.monotonic() - started < 2.0


def test_a_hanging_provider_is_abandoned_within_five_seconds_by_default(fakes, deployment):
    """With the default timeouts a provider that sends nothing back loses the task in < 5 s."""
    sections = FAST_SECTIONS.replace("first_byte_s = 0.5", "").replace("request_s = 5.0", "")
    primary, _backup, board = two_providers(fakes, deployment, sections=sections)
    assert board.config.timeouts.first_byte_s == 4.0
    primary.script.append(Hang())
    started = time.monotonic()
    reply = board.ask("coder", "hi")
    elapsed = time.monotonic() - started
    assert reply.provider == "backup"
    assert reply.attempts[0].outcome == "timeout"
    assert "sent nothing back within 4 s" in reply.attempts[0].message
    assert elapsed < 5.0


@pytest.mark.parametrize("policy", ["immediate", "after_retries"])
def test_both_policies_answer_from_the_backup_within_five_seconds(fakes, deployment, policy):
    """Whatever the failover policy, a 5xx-answering first provider costs well under 5 s."""
    sections = FAST_SECTIONS.replace("jitter = false", f'jitter = false\nfailover = "{policy}"')
    primary, _backup, board = two_providers(fakes, deployment, sections=sections)
    primary.script.extend([Fail(500), Fail(500), Fail(500)])
    started = time.monotonic()
    reply = board.ask("coder", "hi")
    assert reply.provider == "backup"
    assert time.monotonic() - started < 5.0
    tries = [a.provider for a in reply.attempts]
    expected = ["primary", "backup"] if policy == "immediate" else ["primary", "primary", "backup"]
    assert tries == expected


def test_retry_after_is_honoured_before_retrying(fakes, deployment):
    """A 429's Retry-After is waited out before the same provider is tried again."""
    only = fakes("openai")
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    only.script.append(Fail(429, retry_after_s=0.6))
    board = deployment.board()
    started = time.monotonic()
    reply = board.ask("coder", "hi")
    elapsed = time.monotonic() - started
    assert [a.outcome for a in reply.attempts] == ["rate_limited", "ok"]
    assert elapsed >= 0.6
    assert any(e["event"] == "provider_cooling" for e in deployment.audit())


def test_gemini_retry_info_is_honoured(fakes, deployment):
    """Gemini's RESOURCE_EXHAUSTED with a RetryInfo delay is waited out."""
    only = fakes("gemini")
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    only.script.append(Fail(429, retry_after_s=0.5))
    board = deployment.board()
    started = time.monotonic()
    reply = board.ask("coder", "hi")
    assert [a.outcome for a in reply.attempts] == ["rate_limited", "ok"]
    assert time.monotonic() - started >= 0.5


def test_when_every_provider_fails_the_error_lists_each_and_what_to_do(fakes, deployment):
    """The caller gets one error naming each provider tried, its answer, and advice."""
    primary, backup = fakes("openai"), fakes("anthropic", keys={"another-key"})
    primary_and_backup(deployment, primary, backup)
    primary.script.extend([Fail(500), Fail(500)])
    board = deployment.board()
    with pytest.raises(TaskFailedError) as caught:
        board.ask("coder", "hi")
    error = caught.value
    assert [(a.provider, a.outcome) for a in error.attempts] == [
        ("primary", "server"),
        ("backup", "auth"),
        ("primary", "server"),
    ]
    text = str(error)
    assert "tried primary (gpt-4o): server HTTP 500" in text
    assert "tried backup (claude-sonnet-4-5): auth HTTP 401" in text
    assert "set a valid key in the environment variable ANTHROPIC_KEY" in text
    assert "sk-ant-test" not in text


def test_non_retryable_errors_are_not_retried_on_the_same_provider(fakes, deployment):
    """A 400 moves the task to the next provider without retrying the first."""
    sections = FAST_SECTIONS.replace("jitter = false", 'jitter = false\nfailover = "after_retries"')
    primary, _backup, board = two_providers(fakes, deployment, sections=sections)
    primary.script.append(Fail(400))
    reply = board.ask("coder", "hi")
    assert [(a.provider, a.outcome) for a in reply.attempts] == [
        ("primary", "bad_request"),
        ("backup", "ok"),
    ]


def test_one_deadline_bounds_the_whole_task(fakes, deployment):
    """A task whose only provider hangs fails when its own deadline runs out."""
    only = fakes("openai")
    sections = FAST_SECTIONS.replace("first_byte_s = 0.5", "first_byte_s = 30")
    deployment.write(
        config_toml(deployment, {"only": only}, {"coder": ["only"]}, sections=sections)
    )
    only.script.extend([Hang(), Hang()])
    board = deployment.board()
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError) as caught:
        board.ask("coder", "hi", deadline_s=0.8)
    elapsed = time.monotonic() - started
    assert 0.7 <= elapsed < 2.0
    assert caught.value.attempts[0].outcome == "timeout"
    finished = deployment.events("task_finished")
    assert finished[-1]["outcome"] == "deadline"
