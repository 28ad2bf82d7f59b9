from __future__ import annotations

import threading
import time

import pytest
from support import KEYS, config_toml, primary_and_backup

from runtime import TaskFailedError
from runtime.testing import Answer, Fail

pytestmark = pytest.mark.timeout(30)


def test_a_key_revoked_mid_run_takes_the_provider_out(fakes, deployment):
    """After a 401 mid-run the provider is out of rotation, logged, and tasks fall back."""
    primary, backup = fakes("openai"), fakes("gemini")
    primary_and_backup(deployment, primary, backup)
    board = deployment.board()
    assert board.ask("coder", "one").provider == "primary"
    primary.revoke_key(KEYS["openai"])
    second = board.ask("coder", "two")
    assert [(a.provider, a.outcome) for a in second.attempts] == [
        ("primary", "auth"),
        ("backup", "ok"),
    ]
    third = board.ask("coder", "three")
    assert [(a.provider, a.outcome) for a in third.attempts] in (
        [("backup", "ok")],
        [("primary", "unavailable"), ("backup", "ok")],
    )
    assert len(primary.wait_for_requests(2, chat_only=True)) == 2
    (out,) = deployment.events("provider_out")
    assert out["provider"] == "primary"
    assert "OPENAI_KEY" in out["reason"]


def test_repeated_failures_open_the_breaker_and_a_trial_closes_it(fakes, deployment):
    """Three failures in a row open the breaker; after its cool-down one trial closes it."""
    primary, backup = fakes("anthropic"), fakes("openai")
    primary_and_backup(deployment, primary, backup)
    board = deployment.board()
    primary.script.extend([Fail(500)] * 3)
    for _ in range(3):
        assert board.ask("coder", "x").provider == "backup"
    (opened,) = deployment.events("breaker_opened")
    assert opened["provider"] == "primary"
    skipped = board.ask("coder", "while open")
    assert [a.provider for a in skipped.attempts] == ["backup"]
    assert len(primary.requests) == 3
    cooled = threading.Event()
    threading.Timer(0.6, cooled.set).start()
    assert cooled.wait(2)
    trial = board.ask("coder", "trial")
    assert trial.provider == "primary"
    assert [e["event"] for e in deployment.audit() if e["event"].startswith("breaker")] == [
        "breaker_opened",
        "breaker_half_open",
        "breaker_closed",
    ]


def test_calls_past_the_rate_limit_wait_their_turn(fakes, deployment):
    """At 120 rpm the 20-call burst passes and the rest are paced at two a second."""
    only = fakes("openai")
    deployment.write(config_toml(deployment, {"only": (only, {"rpm": 120})}, {"coder": ["only"]}))
    board = deployment.board()
    results = []
    started = time.monotonic()
    threads = [
        threading.Thread(target=lambda: results.append(board.ask("coder", "x"))) for _ in range(23)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    elapsed = time.monotonic() - started
    assert len(results) == 23
    assert all(r.attempts[-1].outcome == "ok" for r in results)
    assert all(len(r.attempts) == 1 for r in results)
    assert 1.3 <= elapsed < 4.0


def test_a_call_that_would_wait_past_its_deadline_falls_back_instead(fakes, deployment):
    """When the rate limit would hold a call beyond its deadline, the next provider takes it."""
    slow, backup = fakes("openai"), fakes("anthropic")
    deployment.write(
        config_toml(
            deployment,
            {"slow": (slow, {"rpm": 1}), "backup": backup},
            {"coder": ["slow", "backup"]},
        )
    )
    board = deployment.board()
    assert board.ask("coder", "first").provider == "slow"
    reply = board.ask("coder", "second", deadline_s=5)
    assert [(a.provider, a.outcome) for a in reply.attempts] == [
        ("slow", "unavailable"),
        ("backup", "ok"),
    ]
    assert "past the task's deadline" in reply.attempts[0].message


def test_a_429_cools_the_provider_and_the_router_skips_it(fakes, deployment):
    """After a 429 with Retry-After, other tasks go to the next provider without trying it."""
    primary, backup = fakes("openai"), fakes("gemini")
    primary_and_backup(deployment, primary, backup)
    board = deployment.board()
    primary.script.append(Fail(429, retry_after_s=30))
    first = board.ask("coder", "one")
    assert [(a.provider, a.outcome) for a in first.attempts] == [
        ("primary", "rate_limited"),
        ("backup", "ok"),
    ]
    later = [board.ask("coder", str(i)) for i in range(3)]
    assert all(r.provider == "backup" for r in later)
    assert len(primary.requests) == 1


def test_the_providers_own_rate_limit_headers_pause_it(fakes, deployment):
    """A provider that says its request budget is spent is rested until its reset."""
    primary, backup = fakes("openai", rpm=2), fakes("gemini")
    primary_and_backup(deployment, primary, backup)
    board = deployment.board()
    assert board.ask("coder", "one").provider == "primary"
    assert board.ask("coder", "two").provider == "primary"
    third = board.ask("coder", "three")
    assert third.provider == "backup"
    assert len([r for r in primary.requests if r.is_chat]) == 2


def test_an_answer_after_fallback_still_reports_usage(fakes, deployment):
    """Token usage of the answering attempt reaches the reply and the audit record."""
    primary, backup = fakes("openai"), fakes("anthropic")
    primary_and_backup(deployment, primary, backup)
    primary.script.append(Fail(503))
    backup.script.append(Answer("ok", usage=None))
    board = deployment.board()
    reply = board.ask("coder", "count me")
    assert reply.usage.output_tokens >= 1
    (finished,) = deployment.events("task_finished")
    assert finished["output_tokens"] == reply.usage.output_tokens
    assert finished["provider"] == "backup"


def test_progress_reports_each_step_of_a_task(fakes, deployment):
    """on_progress hears the first attempt, its failure, the fallback and the end."""
    primary, backup = fakes("openai"), fakes("anthropic")
    primary_and_backup(deployment, primary, backup)
    primary.script.append(Fail(500))
    board = deployment.board()
    seen = []
    reply = board.ask("coder", "x", on_progress=seen.append)
    assert [(p.state, p.provider, p.attempt) for p in seen] == [
        ("running", "primary", 1),
        ("attempt_failed", "primary", 1),
        ("fallback", "backup", 2),
        ("ok", "backup", 2),
    ]
    assert seen[1].detail == "server"
    assert all(p.task_id == reply.task_id for p in seen)
    assert reply.cost_usd is not None


def test_a_failing_progress_callback_never_harms_the_task(fakes, deployment):
    """A callback that raises is dropped; the task still gets its answer."""
    only = fakes("openai")
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    board = deployment.board()

    def broken(_progress):
        raise RuntimeError("caller bug")

    assert board.ask("coder", "x", on_progress=broken).provider == "only"


def test_health_says_how_each_provider_stands(fakes, deployment):
    """board.health() shows a provider cooling after a 429 and one out after a 401."""
    primary, backup = fakes("openai"), fakes("gemini")
    primary_and_backup(deployment, primary, backup)
    primary.script.append(Fail(429, retry_after_s=30))
    board = deployment.board()
    assert {pid: h.state for pid, h in board.health().items()} == {
        "primary": "ready",
        "backup": "ready",
    }
    board.ask("coder", "x")
    backup.revoke_key(KEYS["gemini"])
    with pytest.raises(TaskFailedError):
        board.ask("coder", "y")
    health = board.health()
    assert health["primary"].state == "cooling"
    assert health["primary"].for_s is not None
    assert 20 < health["primary"].for_s <= 30
    assert health["backup"].state == "out"
    assert "GEMINI_KEY" in health["backup"].reason


def test_a_spent_quota_takes_the_provider_out_until_a_reload(fakes, deployment):
    """After insufficient_quota the provider is out, saying why, until a reload brings it back."""
    primary, backup = fakes("openai"), fakes("gemini")
    primary.script.extend([Fail(429, code="insufficient_quota")] * 3)
    primary_and_backup(deployment, primary, backup)
    board = deployment.board()
    first = board.ask("coder", "one")
    assert [(a.provider, a.outcome) for a in first.attempts] == [
        ("primary", "quota"),
        ("backup", "ok"),
    ]
    later = [board.ask("coder", str(i)) for i in range(3)]
    assert all([a.provider for a in r.attempts] == ["backup"] for r in later)
    assert len(primary.requests) == 1
    health = board.health()["primary"]
    assert health.state == "out"
    assert "quota or credit is used up" in health.reason
    (out,) = deployment.events("provider_out")
    assert out["provider"] == "primary"
    assert "exceeded your current quota" in out["reason"]
    assert out["status"] == 429
    primary.script.clear()
    board.reload()
    assert board.ask("coder", "paid").provider == "primary"
    (back,) = deployment.events("provider_back")
    assert back["provider"] == "primary"
