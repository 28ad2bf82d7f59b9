"""Several processes, one provider: limits and health shared through Redis ([shared])."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from _redis_server import RedisServer
from support import ENV, FAST_SECTIONS, Deployment, callboard, config_toml, eventually

from runtime import Callboard
from runtime._chat import Usage
from runtime._config.schema import SharedSettings
from runtime._policy.leased_ledger import BudgetAsk, BudgetGrant
from runtime._transport.io_loop import IoLoop
from runtime._transport.shared_store import RedisStore
from runtime.testing import Answer, Fail, FakeProvider, busiest_window

WORKER = Path(__file__).with_name("fleet_worker.py")
RPM = 600


def fleet_config(
    deployment: Deployment,
    fake: FakeProvider,
    url: str,
    namespace: str,
    name: str,
    *,
    more: str = "",
    **extra: object,
) -> Path:
    """Write one process's config (its own audit file) casting ``coder`` to ``fake``.

    ``more`` is added as it is (budgets, prices); ``extra`` goes in the provider's table.
    """
    shared = f'\n[shared]\nurl = "{url}"\nnamespace = "{namespace}"\n{more}'
    sections = FAST_SECTIONS.replace("task_s = 10.0", "task_s = 60.0") + shared
    text = config_toml(deployment, {"p": (fake, extra)}, {"coder": ["p"]}, sections=sections)
    text = text.replace(str(deployment.audit_path), str(deployment.audit_path) + f".{name}")
    path = deployment.path.with_name(f"{name}.toml")
    path.write_text(text)
    return path


class Fleet:
    """Worker processes (tests/fleet_worker.py), started together."""

    def __init__(self, configs: list[Path], calls: int) -> None:
        env = {**os.environ, **ENV}
        self.children = [
            subprocess.Popen(
                [sys.executable, str(WORKER), str(config), str(calls)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for config in configs
        ]
        for child in self.children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"

    def go(self) -> None:
        """Let every worker send its calls."""
        for child in self.children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()

    def results(self, timeout_s: float) -> list[dict[str, object]]:
        """Wait for every worker; return their summaries."""
        summaries = []
        for child in self.children:
            out, _ = child.communicate(timeout=timeout_s)
            assert child.returncode == 0, out
            summaries.append(json.loads(out.strip().splitlines()[-1]))
        return summaries


@pytest.mark.timeout(120)
def test_four_processes_keep_one_rpm_within_one_percent(fakes, deployment, redis_url, namespace):
    """Four processes bursting 250 calls each at a 600-rpm provider send it at most 606 a minute.

    Alone, each would send its own 600 a minute (a 100-call burst, then 10 a second):
    about 720 in the first 12 s from four. Shared, the fake's log shows the fleet's limit.
    """
    fake = fakes("openai", rpm=RPM)
    configs = [
        fleet_config(deployment, fake, redis_url, namespace, f"w{i}", rpm=RPM) for i in range(4)
    ]
    fleet = Fleet(configs, calls=250)
    fleet.go()
    fake.wait_for_requests(540, chat_only=True, timeout_s=30)
    times = sorted(r.received_at for r in fake.requests if r.is_chat)
    for child in fleet.children:
        child.terminate()
    for child in fleet.children:
        child.wait(10)
    times = sorted(r.received_at for r in fake.requests if r.is_chat)
    assert busiest_window(times) <= RPM * 1.01
    assert busiest_window(times) >= RPM * 0.9


@pytest.mark.timeout(120)
def test_four_processes_keep_one_tpm_with_real_usage(fakes, deployment, redis_url, namespace):
    """Four processes at a 6,000-tpm provider: its log never carries more in a minute.

    Each call is estimated at about 202 tokens and uses 150: the difference goes back to the
    fleet's window, so the fleet gets more than 6,000 // 202 calls into the minute.
    """
    fake = fakes("openai", default=Answer("ok", usage=Usage(input_tokens=100, output_tokens=50)))
    limits = {"tpm": 6000, "max_tokens": 200}
    configs = [
        fleet_config(deployment, fake, redis_url, namespace, f"w{i}", **limits) for i in range(4)
    ]
    fleet = Fleet(configs, calls=30)
    fleet.go()
    fake.wait_for_requests(32, chat_only=True, timeout_s=60)
    for child in fleet.children:
        child.terminate()
    for child in fleet.children:
        child.wait(10)
    times = sorted(r.received_at for r in fake.requests if r.is_chat)
    assert busiest_window(times) * 150 <= 6000 * 1.01


BUDGET = """
[prices."gpt-4o"]
input = 100.0
output = 1000.0

[[budgets]]
name = "fleet"
limit_usd = 1.0
period = "day"
on_exceed = "stop"
"""
"""Each call reserves about $0.05 (max_tokens = 50) and costs $0.02 (100 in, 10 out)."""
CALL_USD = (100 * 100.0 + 10 * 1000.0) / 1_000_000


@pytest.mark.timeout(120)
def test_four_processes_keep_one_budget(fakes, deployment, redis_url, namespace):
    """Four processes, 40 calls each, one $1 stop budget: the fake bills at most $1 in all.

    Alone, each process would spend its own $1 (up to $3.20 for the fleet).
    """
    fake = fakes("openai", default=Answer("ok", usage=Usage(input_tokens=100, output_tokens=10)))
    configs = [
        fleet_config(deployment, fake, redis_url, namespace, f"w{i}", more=BUDGET, max_tokens=50)
        for i in range(4)
    ]
    fleet = Fleet(configs, calls=40)
    fleet.go()
    results = fleet.results(timeout_s=90)
    billed = sum(1 for r in fake.requests if r.is_chat) * CALL_USD
    assert billed <= 1.0 + 1e-9
    # a burst reserves worst cases ($0.05) that end as $0.02: as with one process, calls are
    # refused while those holds are out; still more than a fixed quarter of the budget each
    assert billed > 0.25
    assert sum(int(str(r["ok"])) for r in results) * CALL_USD == pytest.approx(billed)
    assert all("fleet" in error for r in results for error in r["errors"])  # type: ignore[attr-defined]


@pytest.mark.timeout(60)
def test_a_429_seen_by_one_board_rests_the_other(fakes, deployment, redis_url, namespace):
    """One process's 429 (Retry-After 5 s) rests the provider in another, within 100 ms."""
    fake = fakes("openai", script=[Fail(429, retry_after_s=5)])
    first, second = (
        Callboard.from_config(
            fleet_config(deployment, fake, redis_url, namespace, name), environ=ENV
        )
        for name in ("a", "b")
    )
    deployment.boards += [first, second]
    with pytest.raises(Exception):  # noqa: B017 - only the cooldown matters here
        first.ask("coder", "hi", deadline_s=1.0)
    cooling = eventually(lambda: second.health()["p"].state == "cooling")
    assert cooling
    events = [e for e in _audit(deployment, "b") if e.get("event") == "provider_cooling"]
    assert events
    assert events[0]["propagation_ms"] < 100
    assert 4.0 < events[0]["seconds"] <= 5.0


@pytest.mark.timeout(60)
def test_a_revoked_key_is_taken_out_everywhere(fakes, deployment, redis_url, namespace):
    """A key rejected in one process takes the provider out of rotation in the other too."""
    fake = fakes("openai")
    first, second = (
        Callboard.from_config(
            fleet_config(deployment, fake, redis_url, namespace, name), environ=ENV
        )
        for name in ("a", "b")
    )
    deployment.boards += [first, second]
    fake.revoke_key(_key_of(fake))
    with pytest.raises(Exception):  # noqa: B017 - only the outcome elsewhere matters
        first.ask("coder", "hi", deadline_s=2.0)
    out = eventually(lambda: second.health()["p"].state == "out")
    assert out
    assert "seen by" in second.health()["p"].reason


@pytest.mark.timeout(120)
def test_a_redis_restart_fails_no_task(fakes, deployment, own_redis: RedisServer, namespace):
    """Redis stopped mid-run: each process falls back to its share, rejoins, and no task fails."""
    fake = fakes("openai")
    configs = [
        fleet_config(deployment, fake, own_redis.url, namespace, f"w{i}", rpm=120) for i in range(2)
    ]
    fleet = Fleet(configs, calls=40)  # a 20-call burst each, then 2 a second
    fleet.go()
    fake.wait_for_requests(44, chat_only=True, timeout_s=30)
    own_redis.stop()
    fake.wait_for_requests(56, chat_only=True, timeout_s=30)
    own_redis.start()
    results = fleet.results(timeout_s=90)
    assert [r["failed"] for r in results] == [0, 0], results
    events = [e["event"] for name in ("w0", "w1") for e in _audit(deployment, name)]
    assert "shared_store_lost" in events
    assert "shared_store_back" in events
    times = sorted(r.received_at for r in fake.requests if r.is_chat)
    assert len(times) == 80
    assert busiest_window(times) <= 120 * 1.01


def _board(config: Path) -> Callboard:
    return Callboard.from_config(config, environ=ENV)


def _key_of(fake: FakeProvider) -> str:
    return ENV[f"{fake.protocol.upper()}_KEY"]


def _audit(deployment: Deployment, name: str) -> list[dict[str, object]]:
    path = Path(str(deployment.audit_path) + f".{name}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.timeout(60)
def test_check_reports_the_shared_store(fakes, deployment, redis_url, namespace, own_redis):
    """``callboard check`` names the store, its Redis version and latency, or warns it is away."""
    fake = fakes("openai")
    reachable = fleet_config(deployment, fake, redis_url, namespace, "up")
    done = callboard("check", "--config", str(reachable))
    assert done.returncode == 0, done.stderr
    assert "shared store: redis://127.0.0.1:" in done.stdout
    assert "reachable, Redis " in done.stdout
    own_redis.stop()
    away = fleet_config(deployment, fake, own_redis.url, namespace, "down")
    done = callboard("check", "--strict", "--config", str(away))
    assert done.returncode == 2
    assert "unreachable" in done.stdout
    assert "local share" in done.stderr


@pytest.mark.timeout(60)
def test_one_trial_call_for_the_fleet_after_a_shared_rest(fakes, deployment, redis_url, namespace):
    """A 429 rests two boards; when it ends one sends the trial, the other waits for it."""
    trial = Answer("ok", delay_s=0.3)
    fake = fakes("openai", script=[Fail(429, retry_after_s=1), trial])
    first, second = (_board(fleet_config(deployment, fake, redis_url, namespace, n)) for n in "ab")
    deployment.boards += [first, second]
    with pytest.raises(Exception):  # noqa: B017 - only the rest matters here
        first.ask("coder", "hi", deadline_s=0.5)
    assert eventually(lambda: second.health()["p"].state == "cooling")

    async def both() -> list[object]:
        boards = (first, second, first, second)
        asks = [board.aask("coder", f"t{i}", deadline_s=20) for i, board in enumerate(boards)]
        return await asyncio.gather(*asks)

    answers = asyncio.run(both())
    assert len(answers) == 4
    chats = [r for r in fake.requests if r.is_chat]
    assert len(chats) == 5  # the 429, the trial, the three others
    trial_at = chats[1].received_at
    assert all(r.received_at >= trial_at + 0.25 for r in chats[2:])  # all after its answer
    events = [e["event"] for name in "ab" for e in _audit(deployment, name)]
    assert events.count("trial_call") == 1
    assert "trial_passed" in events


@pytest.mark.timeout(60)
def test_a_board_that_starts_later_learns_the_rest(fakes, deployment, redis_url, namespace):
    """A board started after another's 429 (Retry-After 5 s) starts cooling, for what is left."""
    fake = fakes("openai", script=[Fail(429, retry_after_s=5)])
    first = _board(fleet_config(deployment, fake, redis_url, namespace, "a"))
    deployment.boards.append(first)
    with pytest.raises(Exception):  # noqa: B017 - only the rest matters here
        first.ask("coder", "hi", deadline_s=1.0)
    later = _board(fleet_config(deployment, fake, redis_url, namespace, "b"))
    deployment.boards.append(later)
    assert eventually(lambda: later.health()["p"].state == "cooling")
    events = [e for e in _audit(deployment, "b") if e.get("event") == "provider_cooling"]
    assert 3.0 < events[0]["seconds"] < 5.0


@pytest.mark.timeout(60)
def test_budgets_fall_back_to_a_local_share_without_redis(fakes, deployment, own_redis, namespace):
    """Redis away: the budget is kept on this process's share, and the audit log says so."""
    fake = fakes("openai", default=Answer("ok", usage=Usage(input_tokens=100, output_tokens=10)))
    own_redis.stop()
    config = fleet_config(
        deployment, fake, own_redis.url, namespace, "a", more=BUDGET, max_tokens=50
    )
    board = _board(config)
    deployment.boards.append(board)
    assert board.ask("coder", "hi", deadline_s=10).text == "ok"
    events = [e for e in _audit(deployment, "a") if e.get("event") == "budget_shared_lost"]
    assert events
    assert events[0]["budget"] == "fleet"
    assert board.budgets()[0].spent_usd == pytest.approx(CALL_USD)


@pytest.mark.timeout(30)
def test_the_budget_script_grants_what_is_left_and_drops_a_dead_process(redis_url, namespace):
    """Redis grants only limit - spent - leased; a process gone quiet has its slice dropped."""
    io = IoLoop()
    settings = SharedSettings.model_validate({"url": redis_url, "namespace": namespace})
    first, second = RedisStore(settings, io), RedisStore(settings, io)
    try:

        def ask(store: RedisStore, want: float, report: float = 0.0) -> BudgetGrant:
            budget = BudgetAsk(("b", ""), 0.0, None, 1.0, report, 0.0, 0.0, want, 0.0, 0.0)
            return store.budget(budget).result(timeout=5)

        assert ask(first, 0.6).granted_usd == pytest.approx(0.6)
        grant = ask(second, 0.6)
        assert grant.granted_usd == pytest.approx(0.4)
        assert grant.leased_usd == pytest.approx(1.0)
        assert ask(first, 0.0, report=0.5).spent_usd == pytest.approx(0.5)  # 0.1 still held
        client = redis.Redis.from_url(redis_url)
        client.zrem(f"{namespace}:processes", first.origin)  # as if 10 s went by without it
        client.close()
        grant = ask(second, 0.6)
        assert grant.granted_usd == pytest.approx(0.1)  # the first's 0.1 no longer counts
        assert grant.spent_usd + grant.leased_usd == pytest.approx(1.0)
    finally:
        first.close()
        second.close()
        io.close()
