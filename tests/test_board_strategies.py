from __future__ import annotations

import asyncio
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from support import callboard, config_toml

from runtime import StreamEnd
from runtime._config.workflows import StageSettings
from runtime._workflows.run import run_workflow
from runtime.testing import Answer, Fail

pytestmark = pytest.mark.timeout(60)


def deploy(deployment: Any, fakes: dict[str, Any], role: str, extra: str = "") -> None:
    """Write a config casting ``fakes`` to ``coder`` with ``role`` keys and ``extra`` tables."""
    cast = {"coder": ["placeholder"]}
    text = config_toml(deployment, fakes, cast)
    own = f"providers = {list(fakes)!r}\n".replace("'", '"')
    text = text.replace('providers = ["placeholder"]\n', own + role)
    deployment.write(text + "\n" + extra)


def test_least_latency_moves_traffic_to_the_faster_provider(fakes, deployment):
    """After each provider has been measured once, tasks go to the faster one."""
    slow, fast = fakes("openai", latency_s=0.2), fakes("openai")  # under first_byte_s
    deploy(
        deployment,
        {"slow": slow, "fast": fast},
        'strategy = "least_latency"\n',
        "[routing]\nexplore = 0\n",
    )  # the slow fake stays under first_byte_s
    board = deployment.board()
    served = [board.ask("coder", f"task {n}").provider for n in range(8)]
    assert "slow" in served[:3]  # measured first, then left
    assert served[3:] == ["fast"] * 5
    started = deployment.events("task_started")
    assert {record["strategy"] for record in started} == {"least_latency"}
    finished = deployment.events("task_finished")
    assert not any(record["fallback"] for record in finished)


def test_round_robin_spreads_tasks_through_aask(fakes, deployment):
    """round_robin starts each task at the next provider, from asyncio too."""
    one, two = fakes("openai"), fakes("anthropic")
    deploy(deployment, {"one": one, "two": two}, 'strategy = "round_robin"\n')
    board = deployment.board()

    async def run() -> list[str]:
        return [(await board.aask("coder", f"task {n}")).provider for n in range(4)]

    assert asyncio.run(run()) == ["one", "two", "one", "two"]


def test_weighted_sends_both_providers_tasks(fakes, deployment):
    """A 3:1 weighting uses both providers, the heavier one more often."""
    heavy, light = fakes("openai"), fakes("openai")
    deploy(
        deployment,
        {"heavy": heavy, "light": light},
        'strategy = "weighted"\nweights = { heavy = 3, light = 1 }\n',
    )
    board = deployment.board()
    served = Counter(board.ask("coder", f"task {n}").provider for n in range(40))
    assert served["light"] > 0
    assert served["heavy"] > served["light"]


RULES = """
[[roles.coder.rules]]
when = { language = "zh-Hans" }
providers = ["deepseek"]

[[roles.coder.rules]]
when = { tag = "review" }
providers = ["gpt"]

[[roles.coder.rules]]
when = { tenant = "acme" }
providers = ["gpt", "claude"]
"""


def test_rules_route_by_language_tag_and_tenant(fakes, deployment):
    """Rules pick the chain by the prompt's language (streamed too), by tag and by tenant.

    A Chinese prompt goes to the provider its rule names; other tasks keep the role's own.
    """
    claude, gpt, deepseek = fakes("anthropic"), fakes("openai"), fakes("openai")
    deploy(deployment, {"claude": claude, "gpt": gpt, "deepseek": deepseek}, "", RULES)
    board = deployment.board()
    assert board.ask("coder", "请帮我写一个排序函数").provider == "deepseek"
    streamed = list(board.stream("coder", "请解释这段代码"))
    assert isinstance(streamed[-1], StreamEnd)
    assert streamed[-1].reply.provider == "deepseek"
    assert board.ask("coder", "Please write a sort function").provider == "claude"
    assert board.ask("coder", "check this", tags=["review"]).provider == "gpt"
    assert board.ask("coder", "check this", tenant="acme").provider == "gpt"
    started = deployment.events("task_started")
    assert started[0]["rule"] == "rules[0]: language=zh-Hans"
    assert started[0]["chain"] == ["deepseek"]
    assert "rule" not in started[2]
    assert started[4]["chain"] == ["gpt", "claude"]


def test_a_sticky_session_moves_only_when_its_provider_fails(fakes, deployment):
    """A session stays on the provider that served it and moves only when that one fails.

    The rotation would alternate; after the move, the session stays on its new provider.
    """
    one = fakes("openai", script=[Answer("1"), Answer("2"), Fail(500), Fail(500)])
    two = fakes("openai")
    deploy(
        deployment,
        {"one": one, "two": two},
        'strategy = "round_robin"\n',
        "[routing]\nsticky_s = 600\n",
    )
    board = deployment.board()
    served = [board.ask("coder", f"turn {n}", session="s1").provider for n in range(5)]
    assert served == ["one", "one", "two", "two", "two"]
    started = deployment.events("task_started")
    assert [record.get("sticky") for record in started] == [None, "one", "one", "two", "two"]
    finished = deployment.events("task_finished")
    assert finished[2]["fallback"] is True  # not the provider the routing chose first


def test_quota_headers_move_traffic_before_a_429(fakes, deployment):
    """A provider whose remaining requests fall under the reserve goes last: no 429 comes."""
    limited, spare = fakes("openai", rpm=4), fakes("openai")
    deploy(deployment, {"limited": limited, "spare": spare}, "", "[routing]\nquota_reserve = 0.5\n")
    board = deployment.board()
    replies = [board.ask("coder", f"task {n}") for n in range(6)]
    assert [r.provider for r in replies] == ["limited"] * 3 + ["spare"] * 3
    assert all(len(r.attempts) == 1 for r in replies)
    started = deployment.events("task_started")
    assert started[3]["quota_short"] == ["limited"]
    assert started[3]["chain"] == ["spare", "limited"]


def test_check_offline_prints_each_roles_strategy(fakes, deployment):
    """`callboard check --offline` shows each role's strategy next to its chain."""
    claude, gpt = fakes("anthropic"), fakes("openai")
    deploy(
        deployment,
        {"claude": claude, "gpt": gpt},
        'strategy = "slo"\nslo = { ttft_p95_ms = 1500 }\n',
        '[[roles.coder.rules]]\nwhen = { tag = "x" }\nproviders = ["gpt"]\n',
    )
    done = callboard("check", "--config", str(deployment.path), "--offline")
    assert done.returncode == 0, done.stderr
    assert "role coder: claude -> gpt; strategy slo (ttft p95 ms <= 1500), 1 rule" in done.stdout


def test_a_workflow_stage_tag_picks_a_rule_chain(fakes, deployment, tmp_path):
    """A stage's tags reach its tasks, so a role's rule by tag routes them."""
    claude, deepseek = fakes("anthropic"), fakes("openai")
    rule = '[[roles.coder.rules]]\nwhen = { tag = "draft" }\nproviders = ["deepseek"]\n'
    deploy(deployment, {"claude": claude, "deepseek": deepseek}, "", rule)
    stages = {
        "draft": StageSettings(role="coder", prompt="Draft {goal}", tags=("draft",)),
        "final": StageSettings(role="coder", prompt="Finish {draft}", after=("draft",)),
    }
    listener = Listener()
    result = asyncio.run(
        run_workflow(
            deployment.board(), "a parser", stages=stages, out_dir=tmp_path, listener=listener
        )
    )
    assert result.ok
    assert [view.provider for view in result.views] == ["deepseek", "claude"]


class Listener:
    """A workflow listener that ignores what it hears."""

    def started(self, *_args: object) -> None:
        """Ignore the start."""

    def changed(self, *_args: object) -> None:
        """Ignore a change."""

    def answered(self, *_args: object) -> None:
        """Ignore an answer."""

    def finished(self, *_args: object) -> None:
        """Ignore the end."""


def test_callboard_ask_takes_tags_tenant_and_session(fakes, deployment):
    """`callboard ask --tag/--tenant/--session` reach the routing rules."""
    claude, gpt = fakes("anthropic"), fakes("openai")
    rules = (
        '[[roles.coder.rules]]\nwhen = { tag = "review", tenant = "acme" }\nproviders = ["gpt"]\n'
    )
    deploy(deployment, {"claude": claude, "gpt": gpt}, "", rules)
    config = str(deployment.path)
    flags = ["--tag", "review", "--tenant", "acme", "--session", "s1", "--json"]
    done = callboard("ask", "coder", "check it", "--config", config, *flags)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["provider"] == "gpt"
    plain = callboard("ask", "coder", "check it", "--config", config, "--tag", "review", "--json")
    assert json.loads(plain.stdout)["provider"] == "claude"


def test_cheapest_sends_tasks_to_the_lower_price(fakes, deployment):
    """Cheapest puts the cheaper model first, whatever the role's order."""
    dear, cheap = fakes("openai", models="gpt-4o"), fakes("openai", models="gpt-4o-mini")
    cast = {"dear": (dear, {"model": "gpt-4o"}), "cheap": (cheap, {"model": "gpt-4o-mini"})}
    deploy(deployment, cast, 'strategy = "cheapest"\n')
    board = deployment.board()
    assert {board.ask("coder", f"task {n}").provider for n in range(3)} == {"cheap"}


def test_slo_leaves_the_cheap_provider_that_misses_the_target(fakes, deployment):
    """Slo tries the cheapest first, then keeps to the provider that meets the target."""
    cheap = fakes("openai", models="gpt-4o-mini", latency_s=0.3)
    dear = fakes("openai", models="gpt-4o")
    deploy(
        deployment,
        {"cheap": (cheap, {"model": "gpt-4o-mini"}), "dear": (dear, {"model": "gpt-4o"})},
        'strategy = "slo"\nslo = { latency_p95_ms = 150 }\n',
        "[routing]\nexplore = 0\n",
    )
    board = deployment.board()
    served = [board.ask("coder", f"task {n}").provider for n in range(5)]
    assert served == ["cheap"] + ["dear"] * 4


def test_least_busy_avoids_the_provider_with_a_call_in_flight(fakes, deployment):
    """While one provider works on a task, least_busy sends the next task to the other."""
    busy = fakes("openai", script=[Answer("slow", delay_s=1.0)])
    idle = fakes("openai")
    deploy(deployment, {"busy": busy, "idle": idle}, 'strategy = "least_busy"\n')
    text = deployment.path.read_text().replace("first_byte_s = 0.5", "first_byte_s = 5.0")
    deployment.write(text)
    board = deployment.board()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(board.ask, "coder", "long one")
        busy.wait_for_requests(1, chat_only=True)
        assert board.ask("coder", "short one").provider == "idle"
        assert first.result(timeout=10).provider == "busy"
