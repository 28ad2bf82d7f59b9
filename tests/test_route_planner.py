from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from runtime import parse_config
from runtime._chat import ChatResult, Message, RateLimitInfo, Tuning
from runtime._config.prices import PriceTable
from runtime._config.schema import Config
from runtime._policy.latency import LatencyBook
from runtime._policy.planner import Plan, RoutePlanner
from runtime._policy.routing import Availability, Health
from runtime._task_spec import TaskSpec

pytestmark = pytest.mark.timeout(20)

PROVIDERS = """
[providers.claude]
type = "anthropic"
model = "claude-sonnet-4-5"
api_key = "k"

[providers.gpt]
type = "openai"
model = "gpt-4o-mini"
api_key = "k"

[providers.deepseek]
type = "openai"
model = "deepseek-chat"
api_key = "k"
"""


def config(roles: str, routing: str = "", head: str = "") -> Config:
    return parse_config(head + PROVIDERS + roles + routing, environ={})


def spec(
    text: str = "hello",
    *,
    role: str = "coder",
    tags: tuple[str, ...] = (),
    tenant: str | None = None,
    session: str | None = None,
) -> TaskSpec:
    messages = (Message("user", text),)
    return TaskSpec(
        "t", role, messages, None, Tuning(), None, None, 0.0, tags=tags, tenant=tenant,
        session=session,
    )  # fmt: skip


def all_ready(ids: Sequence[str]) -> dict[str, Health]:
    return {}


class Planning:
    """A planner with its own clock and random source, answering calls as scripted."""

    def __init__(self, cfg: Config, seed: int = 0) -> None:
        self.cfg = cfg
        self.now = 1000.0
        self.rng = random.Random(seed)  # noqa: S311 - a seeded draw, not a secret
        self.planner = RoutePlanner(LatencyBook(), detect=self.detect)
        self.detected: list[str] = []

    def detect(self, text: str, wanted: Sequence[str]) -> str | None:  # noqa: ARG002
        """Stand in for language detection: any Han character is Simplified Chinese."""
        self.detected.append(text)
        return "zh-Hans" if any("\u4e00" <= c <= "\u9fff" for c in text) else "en"

    def plan(self, task: TaskSpec | None = None, health=all_ready) -> Plan:
        """Plan ``task`` (default: a plain coder task) now."""
        task = task or spec()
        chain = self.cfg.chain(task.role)
        assert chain is not None
        return self.planner.plan(self.cfg, task, chain, health, self.now, self.rng.random)

    def answer(self, provider: str, latency_s: float, **limits: float) -> None:
        """Send a call to ``provider`` that answers in ``latency_s`` with these rate limits."""
        result = ChatResult("ok", "m", rate_limits=RateLimitInfo(**limits))  # type: ignore[arg-type]
        self.planner.dispatched(provider)
        self.now += latency_s
        self.planner.attempt_ended(
            self.cfg, "coder", provider, result, latency_s=latency_s, now=self.now
        )


LATENCY_ROLE = """
[roles.coder]
providers = ["claude", "gpt"]
strategy = "least_latency"
"""


def test_least_latency_moves_to_the_faster_provider_and_back_after_recovery():
    """Traffic moves to the faster provider within a few calls, and back after recovery.

    Exploration keeps measuring the slow one, and its old calls weigh less over time.
    """
    planning = Planning(config(LATENCY_ROLE))
    speed = {"claude": 1.0, "gpt": 0.2}
    firsts = []
    for _ in range(40):
        first = planning.plan().chain[0]
        firsts.append(first)
        planning.answer(first, speed[first])
    assert firsts[:2] == ["claude", "gpt"]  # each measured once
    assert firsts[2:5] == ["gpt", "gpt", "gpt"]
    speed["claude"] = 0.05
    late = []
    for _ in range(600):
        first = planning.plan().chain[0]
        late.append(first)
        planning.answer(first, speed[first])
        planning.now += 5.0
    assert Counter(late[-100:])["claude"] > 80


def test_slo_moves_off_the_cheapest_provider_when_its_p95_degrades():
    """The slo strategy leaves the cheapest provider once its measured p95 misses the target."""
    planning = Planning(
        config(
            """
[roles.coder]
providers = ["claude", "gpt"]
strategy = "slo"
slo = { latency_p95_ms = 2000 }
""",
            "[routing]\nexplore = 0\n",
        )
    )
    for provider in ("claude", "gpt"):
        planning.answer(provider, 0.5)
    assert planning.plan().chain == ("gpt", "claude")  # gpt-4o-mini is cheaper
    for _ in range(30):
        planning.answer("gpt", 5.0)
    assert planning.plan().chain == ("claude", "gpt")


def test_cheapest_uses_the_price_table_and_the_estimated_tokens():
    """Cheapest puts the lower price first; a model with no known price goes last."""
    cfg = config(
        '[roles.coder]\nproviders = ["deepseek", "claude", "gpt"]\nstrategy = "cheapest"\n'
    )
    # gpt-4o-mini $0.15/$0.60, deepseek-chat $0.27/$1.10, claude-sonnet-4-5 $3/$15 a million
    assert Planning(priced_at(cfg, 12)).plan().chain == ("gpt", "deepseek", "claude")
    house = cfg.providers["deepseek"].model_copy(update={"model": "house-model-7b"})
    unpriced = cfg.model_copy(update={"providers": {**cfg.providers, "deepseek": house}})
    assert Planning(priced_at(unpriced, 12)).plan().chain == ("gpt", "claude", "deepseek")


def test_cheapest_follows_a_price_set_by_time_of_day():
    """Off-peak (16:30 to 00:30 UTC) deepseek-chat costs half, $0.135/$0.55: it goes first."""
    cfg = config(
        '[roles.coder]\nproviders = ["deepseek", "claude", "gpt"]\nstrategy = "cheapest"\n'
    )
    assert Planning(priced_at(cfg, 20)).plan().chain == ("deepseek", "gpt", "claude")


def priced_at(cfg: Config, hour: int) -> Config:
    """``cfg`` with its price table read at ``hour`` UTC (catalogue prices can vary by hour)."""
    when = datetime(2026, 12, 5, hour, 0, tzinfo=UTC)
    vars(cfg)["price_table"] = PriceTable(clock=lambda: when)
    return cfg


def test_quota_headers_order_a_provider_last_until_its_reset():
    """A provider whose remaining requests fall under the reserve goes last until its reset."""
    planning = Planning(
        config('[roles.coder]\nproviders = ["claude", "gpt"]\n', "[routing]\nquota_reserve = 0.1\n")
    )
    planning.answer("claude", 0.1, remaining_requests=50, limit_requests=100)
    assert planning.plan().chain == ("claude", "gpt")
    planning.answer("claude", 0.1, remaining_requests=9, limit_requests=100, reset_requests_s=30.0)
    plan = planning.plan()
    assert (plan.chain, plan.short) == (("gpt", "claude"), ("claude",))
    planning.now += 31.0
    assert planning.plan().chain == ("claude", "gpt")


def test_quota_uses_the_configured_rpm_when_the_headers_give_no_limit():
    """Azure sends remaining counts only: the provider's rpm is the limit they are read against."""
    cfg = config(
        '[roles.coder]\nproviders = ["gpt", "claude"]\n', "[routing]\nquota_reserve = 0.2\n"
    )
    gpt = cfg.providers["gpt"].model_copy(update={"rpm": 100})
    cfg = cfg.model_copy(update={"providers": {**cfg.providers, "gpt": gpt}})
    planning = Planning(cfg)
    planning.answer("gpt", 0.1, remaining_requests=10)
    assert planning.plan().chain == ("claude", "gpt")


def test_a_session_sticks_to_its_provider_until_it_cannot_serve():
    """A session goes first to the provider that served it last, while healthy and not idle."""
    planning = Planning(
        config('[roles.coder]\nproviders = ["claude", "gpt"]\n', "[routing]\nsticky_s = 600\n")
    )
    task = spec(session="s1")
    assert planning.plan(task).sticky is None
    planning.planner.served(task, "gpt", planning.now)
    plan = planning.plan(task)
    assert (plan.chain, plan.sticky) == (("gpt", "claude"), "gpt")
    assert planning.plan(spec(session="other")).chain == ("claude", "gpt")

    def gpt_open(ids: Sequence[str]) -> dict[str, Health]:
        return {"gpt": Health(Availability.OPEN, planning.now + 30, "breaker")}

    assert planning.plan(task, gpt_open).chain == ("claude", "gpt")
    planning.now += 601
    assert planning.plan(task).chain == ("claude", "gpt")


RULES = """
[roles.coder]
providers = ["claude", "gpt"]

[[roles.coder.rules]]
when = { tenant = "acme" }
providers = ["gpt"]

[[roles.coder.rules]]
when = { tag = "cheap", language = "en" }
providers = ["deepseek"]

[[roles.coder.rules]]
when = { language = "zh-Hans" }
providers = ["deepseek", "claude"]
"""


def test_the_first_matching_rule_picks_the_chain():
    """Rules by tenant, tag and language pick the chain in order; no match keeps the role's."""
    planning = Planning(config(RULES))
    acme = planning.plan(spec(tenant="acme"))
    assert (acme.chain, acme.rule) == (("gpt",), "rules[0]: tenant=acme")
    assert planning.detected == []  # no rule asked for a language yet
    assert planning.plan(spec("fix it", tags=("cheap",))).chain == ("deepseek",)
    assert planning.plan(spec("请写一个排序函数")).chain == ("deepseek", "claude")
    plain = planning.plan(spec("fix it"))
    assert (plain.chain, plain.rule) == (("claude", "gpt"), None)
    assert len(planning.detected) == 3  # once per task that reached a language condition


def test_a_rule_chain_keeps_the_default_provider_as_last_resort():
    """With default_provider set, a rule's chain ends with it as the role's own does."""
    roles = '[roles.coder]\nproviders = ["gpt"]\n' + RULES[RULES.index("[[") :]
    planning = Planning(config(roles, head='default_provider = "claude"\n'))
    assert planning.plan(spec(tenant="acme")).chain == ("gpt", "claude")
    assert planning.plan(spec("请写")).chain == ("deepseek", "claude")


def test_round_robin_rotates_per_role():
    """round_robin starts each task at the next provider of the role."""
    planning = Planning(
        config(
            '[roles.coder]\nproviders = ["claude", "gpt", "deepseek"]\nstrategy = "round_robin"\n'
        )
    )
    firsts = [planning.plan().chain[0] for _ in range(6)]
    assert firsts == ["claude", "gpt", "deepseek"] * 2


def test_least_busy_counts_the_calls_in_flight():
    """least_busy sends a task to the provider with fewer calls out."""
    planning = Planning(
        config('[roles.coder]\nproviders = ["claude", "gpt"]\nstrategy = "least_busy"\n')
    )
    planning.planner.dispatched("claude")
    assert planning.plan().chain == ("gpt", "claude")
    planning.planner.dispatched("gpt")
    planning.planner.dispatched("gpt")
    assert planning.plan().chain == ("claude", "gpt")


def test_the_plan_says_why_in_the_audit_fields():
    """task_started carries the strategy, the rule that matched and a sticky provider."""
    plan = Plan(("gpt",), "weighted", rule="rules[0]: tag=x", sticky="gpt")
    assert plan.audit_fields() == {
        "strategy": "weighted",
        "rule": "rules[0]: tag=x",
        "sticky": "gpt",
    }
