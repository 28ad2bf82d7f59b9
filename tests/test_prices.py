from __future__ import annotations

import pytest

from runtime._config.prices import Price, PriceTable

pytestmark = pytest.mark.timeout(5)


def test_known_models_are_priced_per_million_tokens():
    """Cost is input, output and cached input at their rates, per million tokens."""
    table = PriceTable()
    assert table.cost("gpt-4o", 1_000_000, 0) == pytest.approx(2.50)
    assert table.cost("gpt-4o", 0, 1_000_000) == pytest.approx(10.0)
    assert table.cost("gpt-4o", 1_000_000, 0, cached_tokens=400_000) == pytest.approx(
        0.6 * 2.50 + 0.4 * 1.25
    )


def test_cache_writes_are_priced_at_their_own_rate():
    """Anthropic's cache writes cost 1.25x input; without a write price they cost input."""
    table = PriceTable()
    cost = table.cost("claude-sonnet-4-5", 2000, 100, cached_tokens=500, cache_write_tokens=1000)
    assert cost == pytest.approx((500 * 3.0 + 500 * 0.30 + 1000 * 3.75 + 100 * 15.0) / 1e6)
    assert table.cost("gpt-4o", 1000, 0, cache_write_tokens=1000) == pytest.approx(2.5 / 1000)
    too_many = table.cost("claude-sonnet-4-5", 1000, 0, cached_tokens=600, cache_write_tokens=900)
    assert too_many == pytest.approx((600 * 0.30 + 400 * 3.75) / 1e6)


def test_snapshots_are_priced_as_their_base_model():
    """Dated snapshots and -latest fall back to the base model's price."""
    table = PriceTable()
    assert table.price("gpt-4o-2024-08-06") == table.price("gpt-4o")
    assert table.price("claude-sonnet-4-5-20250929") == table.price("claude-sonnet-4-5")
    assert table.price("models/gemini-2.5-flash") == table.price("gemini-2.5-flash")


def test_other_variants_are_not_confused_with_their_base():
    """A model that merely starts like a known one has no price."""
    table = PriceTable()
    assert table.price("gpt-4o-mini") == Price(0.15, 0.60, 0.075)
    assert table.price("gpt-4o-audio") is None
    assert table.cost("my-local-model", 10, 10) is None


def test_config_overrides_and_adds_prices():
    """Configured prices replace the defaults and price new models."""
    table = PriceTable({"gpt-4o": Price(1.0, 2.0), "llama-3-70b": Price(0.5, 0.5)})
    assert table.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert table.cost("gpt-4o", 1_000_000, 0, cached_tokens=1_000_000) == pytest.approx(1.0)
    assert table.cost("llama-3-70b", 2_000_000, 0) == pytest.approx(1.0)
