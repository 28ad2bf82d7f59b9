"""Circuit breakers through the whole runtime: only a trial closes one, the router keeps up."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections import defaultdict

import pytest
from support import FAST_SECTIONS, config_toml

from runtime import TaskFailedError
from runtime.testing import Answer, Behaviour, Fail

pytestmark = pytest.mark.timeout(60)

LONG_COOLDOWN = FAST_SECTIONS.replace("cooldown_s = 0.5", "cooldown_s = 30.0").replace(
    "first_byte_s = 0.5", "first_byte_s = 4.0"
)


def test_a_call_started_before_the_breaker_opened_does_not_close_it(fakes, deployment):
    """A slow success that began before three failures opened the breaker leaves it open."""
    primary, backup = fakes("openai"), fakes("anthropic")
    primary.script.extend([Answer("slow", delay_s=0.3), Fail(500), Fail(500), Fail(500)])
    providers = {"primary": primary, "backup": backup}
    deployment.write(
        config_toml(deployment, providers, {"coder": ["primary", "backup"]}, sections=LONG_COOLDOWN)
    )
    board = deployment.board()

    async def scenario() -> list[str]:
        slow = asyncio.ensure_future(board.aask("coder", "slow one"))
        await asyncio.to_thread(primary.wait_for_requests, 1, chat_only=True)
        quick = [(await board.aask("coder", f"quick {i}")).provider for i in range(3)]
        assert (await slow).provider == "primary"
        return quick

    assert asyncio.run(scenario()) == ["backup"] * 3
    assert board.health()["primary"].state == "open"
    assert board.ask("coder", "after").provider == "backup"
    assert len(primary.requests) == 4
    events = [e["event"] for e in deployment.audit() if e["event"].startswith("breaker")]
    assert events == ["breaker_opened"]


def test_the_router_knows_a_breaker_opened_before_it_decides_the_next_step(fakes, deployment):
    """The failure that opens a breaker reaches the router after the news of it: no retry there."""
    primary, backup = fakes("openai"), fakes("anthropic")
    primary.script.append(Fail(500))
    sections = (
        '[retry]\nattempts = 3\nbackoff_initial_s = 0.0\nfailover = "after_retries"\n'
        "[breaker]\nfailures = 1\ncooldown_s = 30.0\n"
    )
    providers = {"primary": primary, "backup": backup}
    deployment.write(
        config_toml(deployment, providers, {"coder": ["primary", "backup"]}, sections=sections)
    )
    reply = deployment.board().ask("coder", "x")
    assert [(a.provider, a.outcome) for a in reply.attempts] == [
        ("primary", "server"),
        ("backup", "ok"),
    ]


def test_tasks_waiting_for_a_breaker_go_as_soon_as_its_trial_succeeds(fakes, deployment):
    """Tasks waiting on an open breaker do not all follow its trial; they go once it closes."""
    only = fakes("openai")
    only.script.extend([Fail(500), Answer("trial", delay_s=0.3)])
    sections = FAST_SECTIONS.replace("failures = 3", "failures = 1")
    deployment.write(
        config_toml(deployment, {"only": only}, {"coder": ["only"]}, sections=sections)
    )
    board = deployment.board()
    with pytest.raises(TaskFailedError):
        board.ask("coder", "opens it", deadline_s=0.3)

    async def waiting() -> list[str]:
        replies = await asyncio.gather(*(board.aask("coder", f"w{i}") for i in range(5)))
        return [r.attempts[-1].outcome for r in replies]

    assert asyncio.run(waiting()) == ["ok"] * 5
    outcomes = [e["outcome"] for e in deployment.events("attempt")]
    assert "unavailable" not in outcomes
    assert len(only.requests) == 6
    events = [e["event"] for e in deployment.audit() if e["event"].startswith("breaker")]
    assert events == ["breaker_opened", "breaker_half_open", "breaker_closed"]


def _random_faults(seed: int, fault: float) -> object:
    rng = random.Random(seed)  # noqa: S311 - faults, not secrets

    def respond(_prompt: str) -> Behaviour:
        if rng.random() < fault:
            return Fail(500)
        return Answer("ok", delay_s=rng.uniform(0.0, 0.04))

    return respond


@pytest.mark.timeout(120)
def test_under_random_faults_breakers_close_only_after_a_trial(fakes, deployment):
    """500 tasks over three providers failing 30 % at random: no breaker closes untried.

    Every close follows a half-open trial, the router never sends a task after a trial
    already in flight, and a task that fails without a request sent says that every
    provider is failing and when the first is tried again.
    """
    providers = {
        pid: fakes(protocol, respond=_random_faults(seed, 0.3))
        for seed, (pid, protocol) in enumerate(
            (("a", "openai"), ("b", "anthropic"), ("c", "gemini"))
        )
    }
    sections = (
        "[retry]\nbackoff_initial_s = 0.05\nbackoff_max_s = 0.2\n"
        "[breaker]\nfailures = 5\ncooldown_s = 1.0\n"
    )
    deployment.write(
        config_toml(deployment, providers, {"coder": list(providers)}, sections=sections)
    )
    board = deployment.board()

    async def run_all() -> None:
        gate = asyncio.Semaphore(100)

        async def one(index: int) -> None:
            async with gate:
                with contextlib.suppress(TaskFailedError):
                    await board.aask("coder", f"task {index}", deadline_s=3.0)

        await asyncio.gather(*(one(i) for i in range(500)))

    asyncio.run(run_all())
    board.close()
    records = deployment.audit()
    last: dict[str, str] = {}
    closes = untried = 0
    for record in records:
        if record["event"].startswith("breaker_"):
            if record["event"] == "breaker_closed":
                closes += 1
                untried += last.get(record["provider"]) != "breaker_half_open"
            last[record["provider"]] = record["event"]
    assert untried == 0, f"{untried} of {closes} breakers closed without a trial"
    attempts = defaultdict(list)
    for record in deployment.events("attempt"):
        attempts[record["task_id"]].append(record)
    messages = [a["message"] or "" for tries in attempts.values() for a in tries]
    assert not [m for m in messages if "trial call is in flight" in m]
    finished = deployment.events("task_finished")
    assert len(finished) == 500
    for task in finished:
        if task["outcome"] != "ok" and all(
            a["outcome"] == "unavailable" for a in attempts[task["task_id"]]
        ):
            assert task["error"].startswith("every provider is failing"), task["error"]
            assert "tried again is" in task["error"]


def test_when_every_breaker_is_open_the_error_says_when_one_is_tried_again(fakes, deployment):
    """No "raise the deadline": every provider is failing, and the first is tried in N s."""
    primary, backup = fakes("openai"), fakes("anthropic")
    primary.script.append(Fail(500))
    backup.script.append(Fail(503))
    sections = LONG_COOLDOWN.replace("failures = 3", "failures = 1")
    providers = {"primary": primary, "backup": backup}
    deployment.write(
        config_toml(deployment, providers, {"coder": ["primary", "backup"]}, sections=sections)
    )
    board = deployment.board()
    with pytest.raises(TaskFailedError) as failed:
        board.ask("coder", "x")
    message = str(failed.value)
    assert "every provider is failing" in message
    assert re.search(r"the first to be tried again is primary, in (30\.0|29\.\d) s", message)
    assert "deadline" not in message
    with pytest.raises(TaskFailedError, match=r"tried again is primary, in (30\.0|29\.\d) s"):
        board.ask("coder", "y")
