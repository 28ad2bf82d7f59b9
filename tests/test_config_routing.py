from __future__ import annotations

import re

import pytest

from runtime import ConfigError, parse_config
from runtime._config.routing import strategy_line

pytestmark = pytest.mark.timeout(10)

BASE = """
[providers.claude]
type = "anthropic"
model = "claude-sonnet-4-5"
api_key = "k"

[providers.gpt]
type = "openai"
model = "gpt-4o"
api_key = "k"

[providers.deepseek]
type = "openai"
model = "deepseek-chat"
api_key = "k"
"""

GOOD = (
    BASE
    + """
[roles.coder]
providers = ["claude", "gpt", "deepseek"]
strategy = "slo"
slo = { ttft_p95_ms = 1500, latency_p95_ms = 20000 }

[[roles.coder.rules]]
when = { language = "zh-Hans" }
providers = ["deepseek", "claude"]

[[roles.coder.rules]]
when = { tag = "cheap", tenant = "acme" }
providers = ["deepseek"]

[roles.reviewer]
providers = ["claude", "gpt"]
strategy = "weighted"
weights = { claude = 3, gpt = 1 }

[routing]
sticky_s = 600
quota_reserve = 0.05
"""
)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="config.toml", environ={})
    return [str(p) for p in caught.value.problems]


def test_the_issue_example_loads():
    """Strategies, weights, an slo target, rules and [routing] load as written."""
    config = parse_config(GOOD, environ={})
    coder = config.roles["coder"]
    assert coder.strategy == "slo"
    assert coder.slo is not None
    assert coder.slo.ttft_p95_ms == 1500
    assert [r.providers for r in coder.rules] == [("deepseek", "claude"), ("deepseek",)]
    assert coder.rules[1].when.tenant == "acme"
    assert config.roles["reviewer"].weights == {"claude": 3, "gpt": 1}
    assert (config.routing.sticky_s, config.routing.quota_reserve) == (600, 0.05)
    assert config.routing.explore == 0.02
    assert config.roles["reviewer"].strategy == "weighted"


def test_a_role_is_priority_by_default_and_check_describes_each_strategy():
    """Without strategy a role keeps its priority order; check's line names the settings."""
    config = parse_config(GOOD, environ={})
    assert strategy_line(config.roles["coder"]) == (
        "slo (ttft p95 ms <= 1500, latency p95 ms <= 20000), 2 rules"
    )
    assert strategy_line(config.roles["reviewer"]) == "weighted claude=3, gpt=1"
    plain = parse_config(BASE + '[roles.x]\nproviders = ["gpt"]\n', environ={})
    assert strategy_line(plain.roles["x"]) == "priority"


def test_every_routing_mistake_is_named_with_its_place():
    """Unknown strategy, stray weights, a missing slo, bad rules: all reported, located."""
    text = (
        BASE
        + """
[roles.coder]
providers = ["claude", "gpt"]
strategy = "slo"
weights = { deepseek = 2 }

[[roles.coder.rules]]
when = { language = "chinese" }
providers = ["deepsek"]

[[roles.coder.rules]]
when = {}
providers = ["gpt"]
"""
    )
    found = "\n".join(problems(text))
    assert 'roles.coder.weights.deepseek: "deepseek" is not a provider of the role' in found
    assert 'roles.coder.weights: weights apply only to strategy = "weighted"' in found
    assert 'roles.coder.slo: strategy = "slo" needs slo =' in found
    assert 'roles.coder.rules[0].when.language: "chinese" is not an ISO 639-1 code' in found
    assert 'roles.coder.rules[0].providers[0]: unknown provider "deepsek"' in found
    assert "roles.coder.rules[1].when: give at least one of language, tag, tenant" in found
    lines = text.splitlines()
    rule = lines.index("[[roles.coder.rules]]") + 1
    located = re.search(r"line (\d+): roles\.coder\.rules\[0\]\.providers\[0\]", found)
    assert located is not None
    assert rule <= int(located.group(1)) <= rule + 2  # in the first rule's table


def test_an_unknown_strategy_lists_the_known_ones():
    """A misspelt strategy is named with its line and the strategies there are."""
    text = BASE + '[roles.other]\nproviders = ["gpt"]\nstrategy = "fastest"\n'
    (found,) = problems(text)
    assert found.startswith(f"line {len(text.splitlines())}: roles.other.strategy: must be")
    assert "'least_latency'" in found
    assert '(got "fastest")' in found


def test_routing_table_values_are_checked():
    """quota_reserve is a share under 1; sticky_s is not negative."""
    found = "\n".join(problems(BASE + "[routing]\nquota_reserve = 1.5\nsticky_s = -1\n"))
    assert "routing.quota_reserve: must be less than 1" in found
    assert "routing.sticky_s: must be greater than or equal to 0" in found
