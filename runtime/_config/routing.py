"""Routing policy settings: a role's strategy and rules, and the ``[routing]`` table.

A role orders its providers for each task by a strategy (``priority`` by default); rules
by language, tag or tenant pick another chain first. ``[routing]`` holds what applies to
every role: sticky sessions, the quota reserve, the exploration share.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Strategy = Literal[
    "priority", "round_robin", "weighted", "least_busy", "least_latency", "cheapest", "slo"
]
STRATEGIES: tuple[str, ...] = Strategy.__args__  # type: ignore[attr-defined]

_LANGUAGE = re.compile(r"^[a-z]{2}$|^zh-Han[st]$")
"""An ISO 639-1 code, or ``zh-Hans`` / ``zh-Hant`` (Simplified / Traditional Chinese)."""


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class SloTarget(_Table):
    """``slo = { ttft_p95_ms = ..., latency_p95_ms = ... }``: the targets a provider must meet."""

    ttft_p95_ms: Annotated[float, Field(gt=0)] | None = None
    latency_p95_ms: Annotated[float, Field(gt=0)] | None = None


class RuleWhen(_Table):
    """``when = { ... }``: every condition given must hold."""

    language: str | None = None
    """An ISO 639-1 code (``zh`` matches either script), ``zh-Hans`` or ``zh-Hant``."""
    tag: str | None = None
    """One of the tags passed with the task."""
    tenant: str | None = None
    """The tenant passed with the task."""


class RuleSettings(_Table):
    """``[[roles.<name>.rules]]``: a chain for the tasks the rule matches."""

    when: RuleWhen
    providers: tuple[str, ...]


class RolePolicy(_Table):
    """A role's routing keys (mixed into ``[roles.<name>]``)."""

    strategy: Strategy = "priority"
    """How the chain is ordered for each task (see the README's config reference)."""
    weights: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    """``weighted``: each provider's share (unlisted providers weigh 1)."""
    slo: SloTarget | None = None
    """``slo``: the targets; the cheapest provider meeting them goes first."""
    rules: tuple[RuleSettings, ...] = ()
    """The first rule that matches a task picks its chain; otherwise the role's own."""


class RoutingSettings(_Table):
    """``[routing]``: what applies to every role's routing."""

    sticky_s: Annotated[float, Field(ge=0)] = 0.0
    """Keep a session's tasks on the provider that last served it while it serves, until
    the session has been idle this long (0: no sticky sessions)."""
    quota_reserve: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Order last a provider whose remaining requests or tokens (from its rate-limit
    headers) are under this share of its limit, until they reset (0: only when spent)."""
    explore: Annotated[float, Field(ge=0, le=1)] = 0.02
    """``least_latency`` and ``slo``: the share of tasks that go first to the provider
    measured least lately, so a cold or recovered provider gets measured."""
    output_tokens: Annotated[int, Field(gt=0)] = 512
    """``cheapest`` and ``slo``: the answer length assumed when the task sets no
    ``max_tokens``."""


def role_policy_problems(
    role: str, policy: RolePolicy, cast: Iterable[str], known: Iterable[str]
) -> list[tuple[str, str]]:
    """Return (location, message) for each mistake in a role's routing keys.

    ``cast`` is the role's own providers (its rules' count too), ``known`` every
    configured provider id.
    """
    known_ids = set(known)
    cast = {*cast, *(pid for rule in policy.rules for pid in rule.providers)}
    where = f"roles.{role}"
    problems = [
        (f"{where}.weights.{pid}", f'"{pid}" is not a provider of the role')
        for pid in policy.weights
        if pid not in cast
    ]
    if policy.weights and policy.strategy != "weighted":
        problems.append(
            (
                f"{where}.weights",
                f'weights apply only to strategy = "weighted" (not "{policy.strategy}")',
            )
        )
    if policy.strategy == "slo" and (policy.slo is None or _empty(policy.slo)):
        problems.append(
            (
                f"{where}.slo",
                'strategy = "slo" needs slo = { ttft_p95_ms = ..., latency_p95_ms = ... }',
            )
        )
    for index, rule in enumerate(policy.rules):
        problems += _rule_problems(f"{where}.rules[{index}]", rule, known_ids)
    return problems


def _rule_problems(where: str, rule: RuleSettings, known: set[str]) -> list[tuple[str, str]]:
    problems = []
    when = rule.when
    if when.language is None and when.tag is None and when.tenant is None:
        problems.append((f"{where}.when", "give at least one of language, tag, tenant"))
    if when.language is not None and not _LANGUAGE.match(when.language):
        problems.append(
            (
                f"{where}.when.language",
                (
                    f'"{when.language}" is not an ISO 639-1 code (such as "zh", "ja", "en") '
                    'nor "zh-Hans" / "zh-Hant"'
                ),
            )
        )
    elif when.language is not None and (missing := _missing_language_libraries()):
        problems.append(
            (
                f"{where}.when.language",
                f'language rules need {missing}: pip install "callboard[language]"',
            )
        )
    if not rule.providers:
        problems.append((f"{where}.providers", "a rule needs at least one provider"))
    for index, pid in enumerate(rule.providers):
        if pid not in known:
            names = ", ".join(sorted(known))
            problems.append(
                (f"{where}.providers[{index}]", f'unknown provider "{pid}"; configured: {names}')
            )
    return problems


def _missing_language_libraries() -> str:
    """Name the language detection libraries that are not installed ("": none)."""
    wanted = {"lingua": "lingua-language-detector", "hanzidentifier": "hanzidentifier"}
    return " and ".join(
        package for module, package in wanted.items() if importlib.util.find_spec(module) is None
    )


def _empty(slo: SloTarget) -> bool:
    return slo.ttft_p95_ms is None and slo.latency_p95_ms is None


def strategy_line(policy: RolePolicy) -> str:
    """Describe a role's strategy in a few words, for ``callboard check``."""
    text: str = policy.strategy
    if policy.strategy == "weighted" and policy.weights:
        text += " " + ", ".join(f"{p}={w:g}" for p, w in policy.weights.items())
    if policy.strategy == "slo" and policy.slo is not None:
        targets = [
            f"{name} <= {value:g}"
            for name, value in (
                ("ttft p95 ms", policy.slo.ttft_p95_ms),
                ("latency p95 ms", policy.slo.latency_p95_ms),
            )
            if value is not None
        ]
        text += " (" + ", ".join(targets) + ")"
    if policy.rules:
        count = len(policy.rules)
        text += f", {count} rule" + ("s" if count > 1 else "")
    return text
