from __future__ import annotations

import math

import pytest

from runtime import parse_config
from runtime._policy.provider_table import ProviderTable, Routing
from runtime._policy.routing import READY, Availability, Health

pytestmark = pytest.mark.timeout(5)


def _table() -> ProviderTable:
    config = parse_config(
        '[providers.a]\ntype = "ollama"\nmodel = "m"\n[roles.coder]\nproviders = ["a"]\n',
        environ={},
    )
    return ProviderTable(Routing(config, {"a": "a#1"}), {"a#1": object()}, {})


def test_the_call_sent_to_a_cooled_open_breaker_is_its_trial():
    """Once an open breaker has cooled, the first call sent marks it half-open until it ends."""
    table = _table()
    table.set_health("a#1", Health(Availability.OPEN, until=5.0))
    table.dispatching("a#1", 4.0)
    assert table.health_of(table.routing, ["a"])["a"].state is Availability.OPEN
    table.dispatching("a#1", 5.0)
    (trial,) = table.health_of(table.routing, ["a"]).values()
    assert trial.state is Availability.HALF_OPEN
    assert trial.ready_at() == math.inf
    standing = table.standing(6.0)["a"]
    assert (standing.state, standing.for_s) == ("half_open", None)


def test_setting_health_returns_what_it_replaces():
    """The router learns whether a provider became ready sooner than it thought."""
    table = _table()
    opened = Health(Availability.OPEN, until=5.0)
    assert table.set_health("a#1", opened) == READY
    assert table.set_health("a#1", READY) == opened


def test_a_reload_brings_back_a_provider_that_was_out():
    """Out of rotation lasts until a reload: the table then counts it ready again."""
    table = _table()
    table.set_health("a#1", Health(Availability.OUT, reason="quota spent"))
    table.apply(table.routing, {}, {})
    assert table.standing(0.0)["a"].state == "ready"
