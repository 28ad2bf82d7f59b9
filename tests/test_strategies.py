from __future__ import annotations

import random
from collections import Counter

import pytest

from runtime._policy import strategies
from runtime._policy.strategies import Figures, Slo

pytestmark = pytest.mark.timeout(10)

CHAIN = ("a", "b", "c")


def never() -> float:
    return 0.999


def test_priority_is_the_role_order_and_round_robin_is_even():
    """Round-robin rotates the chain, so each provider goes first equally often."""
    firsts = Counter(strategies.round_robin(CHAIN, turn).chain[0] for turn in range(3000))
    assert firsts == {"a": 1000, "b": 1000, "c": 1000}
    assert strategies.round_robin(CHAIN, 4).chain == ("b", "c", "a")


def test_weighted_three_to_one_lands_within_five_percent_of_75_percent():
    """Over 4,000 tasks, a 3:1 weighting sends 75 % (±5 %) of first tries to the heavier."""
    rng = random.Random(7)  # noqa: S311 - a seeded draw, not a secret
    firsts = Counter(
        strategies.weighted(("claude", "gpt"), {"claude": 3}, rng.random).chain[0]
        for _ in range(4000)
    )
    assert abs(firsts["claude"] / 4000 - 0.75) < 0.05


def test_weighted_keeps_every_provider_in_the_order():
    """A weighted draw orders the whole chain, so fallback still reaches every provider."""
    rng = random.Random(1)  # noqa: S311 - a seeded draw, not a secret
    for _ in range(100):
        assert sorted(strategies.weighted(CHAIN, {"b": 5}, rng.random).chain) == list(CHAIN)


def test_least_busy_goes_to_the_fewest_calls_in_flight_ties_in_role_order():
    """The provider with the fewest calls in flight goes first; equals keep the role's order."""
    assert strategies.least_busy(CHAIN, {"a": 4, "b": 1, "c": 1}).chain == ("b", "c", "a")


def test_least_latency_measures_each_provider_then_prefers_the_fastest():
    """Unmeasured providers go first (one at a time), then the lowest median leads."""
    cold = strategies.least_latency(CHAIN, {"a": Figures(latency_p50_s=2.0)}, never, 0.05)
    assert cold.chain[0] == "b"
    busy_cold = {
        "a": Figures(latency_p50_s=2.0),
        "b": Figures(in_flight=1),
        "c": Figures(latency_p50_s=1.0),
    }
    assert strategies.least_latency(CHAIN, busy_cold, never, 0.05).chain == ("c", "a", "b")


def test_cheapest_orders_by_estimated_cost_unknown_prices_last():
    """The cheapest estimate goes first; a provider with no known price goes last."""
    costs = {"a": 0.02, "b": None, "c": 0.001}
    assert strategies.cheapest(CHAIN, costs).chain == ("c", "a", "b")


def test_slo_picks_the_cheapest_provider_meeting_the_target():
    """Among providers whose p95s meet the target, the cheapest leads; misses go last."""
    target = Slo(ttft_p95_s=1.5, latency_p95_s=20.0)
    figures = {
        "a": Figures(latency_p95_s=5.0, ttft_p95_s=0.5, measured=10),
        "b": Figures(latency_p95_s=30.0, ttft_p95_s=0.4, measured=10),
        "c": Figures(latency_p95_s=8.0, ttft_p95_s=1.0, measured=10),
    }
    costs = {"a": 0.05, "b": 0.001, "c": 0.01}
    assert strategies.slo(CHAIN, target, figures, costs, never, 0.05).chain == ("c", "a", "b")
    degraded = {**figures, "c": Figures(latency_p95_s=8.0, ttft_p95_s=3.0, measured=10)}
    order = strategies.slo(CHAIN, target, degraded, costs, never, 0.05).chain
    assert order == ("a", "b", "c")  # c misses by 2x, b by 1.5x


def test_exploration_puts_the_least_measured_provider_first_a_small_share_of_the_time():
    """About ``explore`` of tasks go first to the provider whose latency is known least."""
    rng = random.Random(3)  # noqa: S311 - a seeded draw, not a secret
    figures = {
        "a": Figures(latency_p50_s=0.2, measured=50),
        "b": Figures(latency_p50_s=2.0, measured=2),
        "c": Figures(latency_p50_s=1.0, measured=20),
    }
    results = [strategies.least_latency(CHAIN, figures, rng.random, 0.05) for _ in range(4000)]
    explored = [r for r in results if r.explored]
    assert all(r.chain[0] == "b" for r in explored)
    assert 0.03 < len(explored) / 4000 < 0.07
    assert all(r.chain[0] == "a" for r in results if not r.explored)


def test_quota_last_moves_short_providers_to_the_end_in_order():
    """Providers short of quota keep their relative order, after all the others."""
    assert strategies.quota_last(("a", "b", "c", "d"), lambda p: p in {"a", "c"}) == (
        "b",
        "d",
        "a",
        "c",
    )


def test_slo_leaves_a_provider_whose_last_answers_miss_despite_its_history():
    """A long history of meeting the target does not hold a provider that slows down now."""
    target = Slo(latency_p95_s=0.15)
    steady = Figures(latency_p95_s=0.05, measured=10)
    costs = {"a": 0.001, "b": 0.01}
    figures = {"a": Figures(latency_p95_s=0.05, latency_recent_s=0.4, measured=10), "b": steady}
    assert strategies.slo(("a", "b"), target, figures, costs, never, 0.0).chain == ("b", "a")
    figures["a"] = Figures(latency_p95_s=0.05, latency_recent_s=0.03, measured=10)
    assert strategies.slo(("a", "b"), target, figures, costs, never, 0.0).chain == ("a", "b")


def test_least_latency_ranks_a_streamed_task_by_time_to_first_token():
    """For a stream, the provider that starts answering soonest leads, not the one that ends."""
    figures = {
        "a": Figures(latency_p50_s=1.0, ttft_p50_s=0.6, measured=5),
        "b": Figures(latency_p50_s=2.0, ttft_p50_s=0.2, measured=5),
    }
    assert strategies.least_latency(("a", "b"), figures, never, 0.0).chain == ("a", "b")
    streamed = strategies.least_latency(("a", "b"), figures, never, 0.0, by_ttft=True)
    assert streamed.chain == ("b", "a")
