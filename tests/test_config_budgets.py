"""``[[budgets]]`` and ``[tenants.<id>]`` in the config: shapes, references, lines."""

from __future__ import annotations

import pytest

from runtime import ConfigError, parse_config

pytestmark = pytest.mark.timeout(10)

BASE = """\
[providers.claude]
type = "anthropic"
model = "claude-sonnet-4-5"
api_key = "k1"

[providers.gpt]
type = "openai"
model = "gpt-4o"
api_key = "k2"

[roles.coder]
providers = ["claude", "gpt"]
"""

BUDGETS = """
[[budgets]]
name = "daily-total"
scope = {}
limit_usd = 50.0
period = "day"
on_exceed = "stop"
alert_at = [0.5, 0.8, 1.0]

[[budgets]]
name = "claude-month"
scope = { provider = "claude" }
limit_usd = 400.0
period = "month"
on_exceed = "downgrade"

[tenants.acme]
roles = { coder = ["gpt"] }
budget_usd_day = 5.0
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="config.toml", environ={})
    return [str(p) for p in caught.value.problems]


def test_the_issues_example_loads():
    """Budgets, a tenant's chain and its daily budget load as written."""
    config = parse_config(BASE + BUDGETS, environ={})
    names = [b.name for b in config.budget_rules]
    assert names == ["daily-total", "claude-month", "tenant-acme-day"]
    assert config.budget_rules[1].scope.provider == "claude"
    assert config.budget_rules[2].scope.tenant == "acme"
    assert config.chain_for("coder", "acme") == ("gpt",)
    assert config.chain_for("coder", "other") == ("claude", "gpt")
    assert config.chain_for("coder", None) == ("claude", "gpt")


def test_a_bad_budget_is_named_with_its_index_and_line():
    """A mistake in the second ``[[budgets]]`` is reported at ``budgets[1]``, on its line."""
    text = BASE + BUDGETS.replace('period = "month"', 'period = "mnth"').replace(
        'on_exceed = "downgrade"', 'on_exceed = "downgrade"\nlimt = 3'
    )
    lines = text.splitlines()
    period_line = lines.index('period = "mnth"') + 1
    assert _problems(text) == [
        (
            f"line {period_line}: budgets[1].period: must be 'hour', 'day', 'week', 'month' "
            "or 'total' (got \"mnth\")"
        ),
        f"line {period_line + 2}: budgets[1].limt: unknown key 'limt'; did you mean \"limit_usd\"?",
    ]


def test_budgets_and_tenants_name_known_providers():
    """A scope, or a tenant's chain, naming an unknown provider is reported with its place."""
    text = BASE + BUDGETS.replace('provider = "claude"', 'provider = "claudee"').replace(
        '["gpt"]', '["gpt", "deepseek"]'
    )
    found = _problems(text)
    assert any('budgets[1].scope.provider: unknown provider "claudee"' in p for p in found)
    assert any('tenants.acme.roles.coder[1]: unknown provider "deepseek"' in p for p in found)


def test_budget_names_are_unique_and_thresholds_rise():
    """Two budgets of one name, or thresholds out of order, are problems."""
    text = BASE + BUDGETS.replace('"claude-month"', '"daily-total"').replace(
        "[0.5, 0.8, 1.0]", "[0.8, 0.5]"
    )
    found = _problems(text)
    assert any('budgets[1].name: the budget name "daily-total" is used twice' in p for p in found)
    assert any("budgets[0].alert_at: must rise: [0.8, 0.5]" in p for p in found)


def test_a_limit_must_be_positive():
    """``limit_usd = 0`` is refused, at its place."""
    found = _problems(BASE + BUDGETS.replace("limit_usd = 50.0", "limit_usd = 0"))
    assert any("budgets[0].limit_usd: must be greater than 0" in p for p in found)


def test_typos_in_a_scope_or_a_tenant_get_a_suggestion():
    """An unknown key inside ``scope`` or ``[tenants.<id>]`` is named with its fix."""
    text = BASE + BUDGETS.replace("{ provider =", "{ provder =").replace(
        "budget_usd_day", "budget_usd_dya"
    )
    found = _problems(text)
    assert any(
        "budgets[1].scope.provder: unknown key 'provder'; did you mean \"provider\"?" in p
        for p in found
    )
    assert any(
        "tenants.acme.budget_usd_dya: unknown key" in p and "budget_usd_day" in p for p in found
    )


def test_tenant_names_are_kept_and_tenant_roles_are_known():
    """A budget may not take a tenant budget's name; a role only a tenant casts is known."""
    text = BASE + BUDGETS.replace('"claude-month"', '"tenant-x"').replace(
        "scope = {}", 'scope = { role = "triage" }'
    ).replace('roles = { coder = ["gpt"] }', 'roles = { coder = ["gpt"], triage = ["gpt"] }')
    found = _problems(text)
    assert any("budgets[1].name: names starting with tenant- are kept" in p for p in found)
    assert not any("triage" in p for p in found)
