"""Routing strategies: each orders a role's chain for one task, from figures passed in.

Pure functions over plain values: the chain in the role's priority order, and what the
router knows of each provider (`Figures`: calls in flight, decayed latency and time to
first token, how much of that is recent) and the task's estimated cost on each. The
random source is passed in. Fallback, retries, the deadline, the breaker and cooldowns
apply to whatever order comes out; the first provider is the one the strategy chose.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

Random = Callable[[], float]
"""Returns a float in [0, 1)."""


@dataclass(frozen=True, slots=True)
class Figures:
    """What the router knows of one provider (for one role) when a task starts."""

    in_flight: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    ttft_p50_s: float | None = None
    ttft_p95_s: float | None = None
    latency_recent_s: float | None = None
    """The median latency of the last few answers (``None``: too few yet)."""
    ttft_recent_s: float | None = None
    """The median time to first token of the last few streamed answers."""
    measured: float = -math.inf
    """How much and how lately the latencies were measured: higher is more, and more
    recent (`DecayedHistogram.recency`); ``-inf``: never."""


@dataclass(frozen=True, slots=True)
class Slo:
    """The targets of ``strategy = "slo"``, in seconds (``None``: no target)."""

    ttft_p95_s: float | None = None
    latency_p95_s: float | None = None


@dataclass(frozen=True, slots=True)
class Ordered:
    """A chain in the order a strategy chose, and whether it explored."""

    chain: tuple[str, ...]
    explored: bool = False
    """The first provider was put first to be measured, not for its figures."""


NO_FIGURES = Figures()


def round_robin(chain: Sequence[str], turn: int) -> Ordered:
    """Rotate the chain by ``turn``: task ``n`` starts at provider ``n mod len``."""
    if not chain:
        return Ordered(())
    start = turn % len(chain)
    return Ordered((*chain[start:], *chain[:start]))


def weighted(chain: Sequence[str], weights: Mapping[str, float], random: Random) -> Ordered:
    """Draw the order by weight, without replacement (a provider not listed weighs 1).

    The first provider is each one's weight over the total as often; the rest follow in
    the same way among those left, so a fallback also spreads by weight.
    """
    left = list(chain)
    order = []
    while len(left) > 1:
        shares = [weights.get(p, 1.0) for p in left]
        point = random() * sum(shares)
        index = 0
        for index, share in enumerate(shares):  # noqa: B007 - the index found is used
            point -= share
            if point < 0:
                break
        order.append(left.pop(index))
    return Ordered((*order, *left))


def least_busy(chain: Sequence[str], in_flight: Mapping[str, int]) -> Ordered:
    """Order by calls in flight, fewest first; ties keep the role's order."""
    return Ordered(tuple(sorted(chain, key=lambda p: in_flight.get(p, 0))))


def least_latency(
    chain: Sequence[str],
    figures: Mapping[str, Figures],
    random: Random,
    explore: float,
    *,
    by_ttft: bool = False,
) -> Ordered:
    """Order by median latency, fastest first; a provider never measured goes first.

    A provider not measured yet goes first while no call to it is in flight (in the role's
    order), so every provider is measured early. After that, a share ``explore`` of tasks
    go first to the provider measured least lately, so a slow one that got better is seen.
    With ``by_ttft`` (a streamed task) the median time to first token counts where known.
    """

    def median(pid: str) -> float:
        own = figures.get(pid, NO_FIGURES)
        if by_ttft and own.ttft_p50_s is not None:
            return own.ttft_p50_s
        if own.latency_p50_s is not None:
            return own.latency_p50_s
        return math.inf if own.in_flight else -math.inf  # its first call is out: wait for it

    ordered = tuple(sorted(chain, key=median))
    return _explored(ordered, figures, random, explore)


def cheapest(chain: Sequence[str], costs: Mapping[str, float | None]) -> Ordered:
    """Order by the task's estimated cost, cheapest first; unknown prices last."""
    return Ordered(tuple(sorted(chain, key=lambda p: _cost(costs, p))))


def slo(  # noqa: PLR0917 - a pure function of its inputs, all needed
    chain: Sequence[str],
    target: Slo,
    figures: Mapping[str, Figures],
    costs: Mapping[str, float | None],
    random: Random,
    explore: float,
) -> Ordered:
    """Put first the cheapest provider whose p95s meet ``target``.

    Providers meeting the target come first, cheapest first; then those not measured yet,
    cheapest first; then those missing it, the nearest miss first. A target whose figure
    is not known yet (no streamed answer for time to first token) does not count against
    a provider. ``explore`` as for `least_latency`.
    """

    def key(pid: str) -> tuple[int, float, float]:
        own = figures.get(pid, NO_FIGURES)
        if own.latency_p95_s is None and own.ttft_p95_s is None:
            return (1, _cost(costs, pid), 0.0)
        miss = _miss(own, target)
        return (0, _cost(costs, pid), 0.0) if miss <= 1.0 else (2, miss, _cost(costs, pid))

    ordered = tuple(sorted(chain, key=key))
    return _explored(ordered, figures, random, explore)


def _cost(costs: Mapping[str, float | None], pid: str) -> float:
    value = costs.get(pid)
    return math.inf if value is None else value


def _miss(own: Figures, target: Slo) -> float:
    """Return the worst ratio of a measured p95 to its target (at most 1: meets it).

    A p95 is at least the median of the last few answers: when most of them miss the
    target the provider misses it now, however long its history of meeting it.
    """
    worst = 0.0
    ttft = _at_least(own.ttft_p95_s, own.ttft_recent_s)
    if ttft is not None and target.ttft_p95_s is not None:
        worst = ttft / target.ttft_p95_s
    latency = _at_least(own.latency_p95_s, own.latency_recent_s)
    if latency is not None and target.latency_p95_s is not None:
        worst = max(worst, latency / target.latency_p95_s)
    return worst


def _at_least(value: float | None, floor: float | None) -> float | None:
    if value is None or floor is None:
        return value
    return max(value, floor)


def _explored(
    ordered: tuple[str, ...], figures: Mapping[str, Figures], random: Random, explore: float
) -> Ordered:
    """Now and then put first the provider whose latency is known least (to measure it)."""
    if len(ordered) < 2 or explore <= 0 or random() >= explore:  # noqa: PLR2004
        return Ordered(ordered)
    coldest = min(ordered, key=lambda p: figures.get(p, NO_FIGURES).measured)
    if coldest == ordered[0]:
        return Ordered(ordered)
    rest = tuple(p for p in ordered if p != coldest)
    return Ordered((coldest, *rest), explored=True)


def quota_last(chain: Sequence[str], short: Callable[[str], bool]) -> tuple[str, ...]:
    """Move the providers ``short`` of quota to the end, each group in its order."""
    return (*(p for p in chain if not short(p)), *(p for p in chain if short(p)))
