"""The router's routing policy: which chain a task gets, in which order, and why.

Plain code the router actor owns. It keeps the snapshot the strategies read (calls in
flight per provider, the latency book, the quota each provider reported, round-robin
turns, sticky sessions), learns it from what the router already hears (a call sent, an
attempt done, a task answered), and for each new task returns a `Plan`: the first
matching rule's chain (else the role's), ordered by the role's strategy, providers short
of quota moved last, and a sticky session's provider put first while it serves.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runtime._chat import ChatResult, EmbedResult
from runtime._config.prices import Price
from runtime._config.schema import Config, RoleSettings
from runtime._policy import language, strategies
from runtime._policy.latency import LatencyBook, RecentAnswers
from runtime._policy.quota import QuotaBook, QuotaLimits
from runtime._policy.routing import READY, Health
from runtime._policy.rules import Detect, RuleMatch, matching_rule
from runtime._policy.sessions import SessionTable
from runtime._policy.strategies import Figures, Ordered, Random, Slo
from runtime._record import record
from runtime._task_spec import TaskSpec

HealthOf = Callable[[Sequence[str]], Mapping[str, Health]]
"""Returns the health of the providers named (as the current routing casts them)."""
_DEFAULT_ROLE = RoleSettings()


@record
class Plan:
    """A task's chain in the order it will try it, and why that order."""

    chain: tuple[str, ...]
    strategy: str
    rule: str | None = None
    """The rule that picked the chain (``rules[0]: language=zh-Hans``), if one did."""
    sticky: str | None = None
    """The provider put first because it served the task's session last."""
    explored: bool = False
    """The first provider was put first to be measured (``least_latency``, ``slo``)."""
    short: tuple[str, ...] = ()
    """Providers ordered last because they are short of quota."""

    def audit_fields(self) -> dict[str, Any]:
        """Return the fields ``task_started`` carries about the choice (the chain apart)."""
        fields: dict[str, Any] = {"strategy": self.strategy}
        if self.rule is not None:
            fields["rule"] = self.rule
        if self.sticky is not None:
            fields["sticky"] = self.sticky
        if self.explored:
            fields["explored"] = True
        if self.short:
            fields["quota_short"] = list(self.short)
        return fields


class RoutePlanner:
    """Orders each task's chain from a snapshot it keeps of the providers."""

    def __init__(self, latency: LatencyBook, detect: Detect = language.detect) -> None:
        self._latency = latency
        self._detect = detect
        self._quota = QuotaBook()
        self._sessions = SessionTable()
        self._in_flight: Counter[str] = Counter()
        self._turns: Counter[tuple[str, int]] = Counter()
        self._recent: dict[tuple[str, str], RecentAnswers] = {}
        self._figures: dict[tuple[str, str], Figures] = {}
        """(provider, role) → its latency figures, read since its last answer."""
        self._priced: Config | None = None
        self._prices: dict[str, tuple[Price | None, int | None]] = {}
        """Provider → its price and max_tokens, for the config last priced."""

    # -- deciding ----------------------------------------------------------------------

    def plan(  # noqa: PLR0917 - the task, the config and the live view, all needed
        self,
        config: Config,
        spec: TaskSpec,
        chain: tuple[str, ...],
        health: HealthOf,
        now: float,
        random: Random,
    ) -> Plan:
        """Return the chain ``spec`` tries, in order, given the role's ``chain``."""
        role = config.roles.get(spec.role, _DEFAULT_ROLE)
        last = config.last_resort(spec.role)
        match = matching_rule(role.rules, spec, self._detect) if role.rules else None
        own = _own_part(chain, last) if match is None else match.rule.providers
        ordered = self._ordered(config, spec, role, own, match, random)
        order = ordered.chain
        if last is not None and last not in order:
            order = (*order, last)
        short = tuple(p for p in order if self._quota.short(p, now)) if self._quota else ()
        if short:
            order = strategies.quota_last(order, lambda p: p in short)
        sticky = self._sticky(config, spec, order, short, health, now)
        if sticky is not None:
            order = (sticky, *(p for p in order if p != sticky))
        return Plan(
            order,
            role.strategy,
            match.describe() if match is not None else None,
            sticky,
            ordered.explored and sticky is None,
            short,
        )

    def _ordered(  # noqa: PLR0911, PLR0917 - one return per strategy; inputs as for plan
        self,
        config: Config,
        spec: TaskSpec,
        role: RoleSettings,
        chain: tuple[str, ...],
        match: RuleMatch | None,
        random: Random,
    ) -> Ordered:
        explore = config.routing.explore
        match role.strategy:
            case "round_robin":
                key = (spec.role, -1 if match is None else match.index)
                turn = self._turns[key]
                self._turns[key] = turn + 1
                return strategies.round_robin(chain, turn)
            case "weighted":
                return strategies.weighted(chain, role.weights, random)
            case "least_busy":
                return strategies.least_busy(chain, self._in_flight)
            case "least_latency":
                figures = self.figures(chain, spec.role)
                streamed = spec.sink is not None
                return strategies.least_latency(chain, figures, random, explore, by_ttft=streamed)
            case "cheapest":
                return strategies.cheapest(chain, self.estimated_costs(config, spec, chain))
            case "slo":
                target = _slo(role)
                figures = self.figures(chain, spec.role)
                costs = self.estimated_costs(config, spec, chain)
                return strategies.slo(chain, target, figures, costs, random, explore)
            case _:
                return Ordered(chain)

    def _sticky(  # noqa: PLR0917 - see plan
        self,
        config: Config,
        spec: TaskSpec,
        order: tuple[str, ...],
        short: tuple[str, ...],
        health: HealthOf,
        now: float,
    ) -> str | None:
        """Return the session's provider if it is in the chain and can serve now."""
        sticky_s = config.routing.sticky_s
        if spec.session is None or sticky_s <= 0:
            return None
        provider = self._sessions.provider_for(spec.session, sticky_s, now)
        if provider is None or provider not in order or provider in short:
            return None
        state = health((provider,)).get(provider, READY)
        return provider if state.usable and state.ready_at() <= now else None

    def figures(self, chain: Sequence[str], role: str) -> dict[str, Figures]:
        """Return what is known of each provider of ``chain`` for ``role`` (else overall).

        The figures are read again from the latency book only after the provider's next
        answer; the calls in flight are counted now.
        """
        found = {}
        for pid in chain:
            known = self._figures.get((pid, role))
            if known is None:
                known = self._figures[pid, role] = self._read_figures(pid, role)
            busy = self._in_flight[pid]
            found[pid] = dataclasses.replace(known, in_flight=busy) if busy else known
        return found

    def _read_figures(self, pid: str, role: str) -> Figures:
        latency = self._latency.latency((pid, role)) or self._latency.latency(pid)
        if latency is None:
            return strategies.NO_FIGURES
        ttft = self._latency.ttft((pid, role)) or self._latency.ttft(pid)
        recent = self._recent.get((pid, role))
        return Figures(
            latency_p50_s=latency.quantile(0.5),
            latency_p95_s=latency.quantile(0.95),
            ttft_p50_s=ttft.quantile(0.5) if ttft is not None else None,
            ttft_p95_s=ttft.quantile(0.95) if ttft is not None else None,
            latency_recent_s=recent.latency_s() if recent is not None else None,
            ttft_recent_s=recent.ttft_s() if recent is not None else None,
            measured=latency.recency(),
        )

    def estimated_costs(
        self, config: Config, spec: TaskSpec, chain: Sequence[str]
    ) -> dict[str, float | None]:
        """Return the task's estimated cost on each provider (``None``: its price is unknown).

        Four characters to a prompt token; the answer is ``max_tokens`` long (the call's,
        the role's or the provider's), else ``[routing] output_tokens``.
        """
        if config is not self._priced:
            self._priced, self._prices = config, {}
        if spec.embed is not None:
            chars, answer = sum(len(t) for t in spec.embed.texts), 0
        else:
            chars = sum(len(m.text) for m in spec.messages) + len(spec.system or "")
            answer = spec.tuning.max_tokens or config.role_tuning(spec.role).max_tokens or -1
        prompt = chars // 4 + 1
        costs: dict[str, float | None] = {}
        for pid in chain:
            known = self._prices.get(pid)
            if known is None:
                settings = config.providers[pid]
                price = config.price_table.price(settings.model, settings.type)
                known = self._prices[pid] = (price, settings.max_tokens)
            price, own_max = known
            out = answer if answer >= 0 else own_max or config.routing.output_tokens
            costs[pid] = None if price is None else prompt * price.input + out * price.output
        return costs

    # -- learning ----------------------------------------------------------------------

    def dispatched(self, provider: str) -> None:
        """Note a call sent to ``provider``."""
        self._in_flight[provider] += 1

    def attempt_ended(
        self,
        config: Config,
        role: str,
        provider: str,
        result: ChatResult | EmbedResult | None,
        *,
        latency_s: float,
        now: float,
    ) -> None:
        """Learn from an ended attempt: one call fewer in flight, its latency and its quota.

        The provider's own latency is learned by the router (it keeps time for fallbacks
        with it); this adds the latency for ``role``.
        """
        if self._in_flight[provider] > 0:
            self._in_flight[provider] -= 1
        if not isinstance(result, ChatResult):
            return
        ttft_s = None if result.ttft_ms is None else result.ttft_ms / 1000.0
        self._latency.observe((provider, role), latency_s, ttft_s, now)
        recent = self._recent.get((provider, role))
        if recent is None:
            recent = self._recent[provider, role] = RecentAnswers()
        recent.add(latency_s, ttft_s)
        for key in [k for k in self._figures if k[0] == provider]:
            del self._figures[key]
        settings = config.providers.get(provider)
        limits = QuotaLimits(settings.rpm, settings.tpm) if settings else QuotaLimits()
        self._quota.report(provider, result.rate_limits, limits, config.routing.quota_reserve, now)

    def served(self, spec: TaskSpec, provider: str, now: float) -> None:
        """Note that ``provider`` answered ``spec``: its session sticks to it."""
        if spec.session is not None:
            self._sessions.served(spec.session, provider, now)

    def forget(self, keep: set[str]) -> None:
        """Drop what is known of providers not in ``keep`` (gone after a reload).

        The figures are read again from the latency book, which forgets on its own.
        """
        self._quota.forget(keep)
        self._figures.clear()
        for key in [k for k in self._recent if k[0] not in keep]:
            del self._recent[key]


def _own_part(chain: tuple[str, ...], last: str | None) -> tuple[str, ...]:
    """Return the role's own providers: ``chain`` without its last resort."""
    return chain[:-1] if last is not None and chain and chain[-1] == last else chain


def _slo(role: RoleSettings) -> Slo:
    target = role.slo
    if target is None:
        return Slo()
    ttft = None if target.ttft_p95_ms is None else target.ttft_p95_ms / 1000.0
    latency = None if target.latency_p95_ms is None else target.latency_p95_ms / 1000.0
    return Slo(ttft, latency)
