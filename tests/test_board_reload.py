from __future__ import annotations

import concurrent.futures
import os
import signal
import threading

import pytest
from support import config_toml

from runtime import Config, ConfigError
from runtime.testing import Answer, Hang

pytestmark = pytest.mark.timeout(30)


def test_a_reload_applies_to_tasks_started_after_it(fakes, deployment):
    """Recasting a role in the file and reloading sends new tasks to the new provider."""
    gpt, claude = fakes("openai"), fakes("anthropic")
    providers = {"gpt": gpt, "claude": claude}
    deployment.write(config_toml(deployment, providers, {"coder": ["gpt"]}))
    board = deployment.board()
    assert board.ask("coder", "before").provider == "gpt"
    deployment.write(config_toml(deployment, providers, {"coder": ["claude"], "critic": ["gpt"]}))
    config = board.reload()
    assert config.chain("coder") == ("claude",)
    assert board.ask("coder", "after").provider == "claude"
    assert board.ask("critic", "new role").provider == "gpt"
    loaded = deployment.events("config_loaded")
    assert [e.get("reload", False) for e in loaded] == [False, True]


def test_tasks_in_flight_finish_as_they_began(fakes, deployment):
    """A task started before a reload keeps its chain and settings, retries included."""
    gpt, claude = fakes("openai"), fakes("anthropic")
    providers = {"gpt": (gpt, {"temperature": 0.3}), "claude": claude}
    deployment.write(config_toml(deployment, providers, {"coder": ["gpt"]}))
    board = deployment.board()
    gpt.script.extend([Hang(), Answer("old task, retried")])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(board.ask, "coder", "old")
        gpt.wait_for_requests(1, chat_only=True)
        changed = {"gpt": (gpt, {"temperature": 0.9}), "claude": claude}
        deployment.write(config_toml(deployment, changed, {"coder": ["claude", "gpt"]}))
        board.reload()
        assert board.ask("coder", "new").provider == "claude"
        old = pending.result(timeout=10)
    assert (old.provider, old.text) == ("gpt", "old task, retried")
    assert [a.outcome for a in old.attempts] == ["timeout", "ok"]
    deployment.write(config_toml(deployment, changed, {"coder": ["gpt"]}))
    board.reload()
    assert board.ask("coder", "newer").provider == "gpt"
    temperatures = [r.json["temperature"] for r in gpt.requests if r.is_chat]
    assert temperatures == [0.3, 0.3, 0.9]
    assert deployment.events("actor_retired")[0]["actor"] == "provider:gpt#1"


def test_an_invalid_reload_is_rejected_and_the_old_config_stays(fakes, deployment):
    """A broken file is refused with its problems; tasks keep running on the old config."""
    gpt = fakes("openai")
    deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    board = deployment.board()
    deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gtp"]}))
    with pytest.raises(ConfigError, match='unknown provider "gtp"; did you mean "gpt"'):
        board.reload()
    assert board.ask("coder", "still works").provider == "gpt"
    (rejected,) = deployment.events("config_rejected")
    assert "gtp" in rejected["problems"][0]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is POSIX-only")
def test_sighup_reloads_when_the_process_asks_for_it(fakes, deployment):
    """After reload_on_sighup, a SIGHUP reloads the file and reports the outcome."""
    gpt, claude = fakes("openai"), fakes("anthropic")
    providers = {"gpt": gpt, "claude": claude}
    deployment.write(config_toml(deployment, providers, {"coder": ["gpt"]}))
    board = deployment.board()
    outcomes: list[object] = []
    done = threading.Event()
    previous = signal.getsignal(signal.SIGHUP)
    try:
        board.reload_on_sighup(lambda outcome: (outcomes.append(outcome), done.set()))
        deployment.write(config_toml(deployment, providers, {"coder": ["claude"]}))
        os.kill(os.getpid(), signal.SIGHUP)
        assert done.wait(5)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert isinstance(outcomes[0], Config)
    assert board.ask("coder", "x").provider == "claude"
