"""Live aggregates of attempts and tasks, per (provider, role) and per role.

Plain code: the metrics actor owns one `StatsBook` and is its only writer; `snapshot`
returns immutable copies for callers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from runtime._metrics.histogram import LatencyHistogram
from runtime._rows import AttemptRow, TaskEvent


@dataclass(slots=True)
class ProviderRoleStats:
    """Attempts made at one provider for one role."""

    attempts: int = 0
    successes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    fallback_attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def to_dict(self) -> dict[str, Any]:
        """Return the aggregates as a JSON-ready mapping."""
        return {
            "attempts": self.attempts,
            "successes": self.successes,
            "failures": dict(sorted(self.failures.items())),
            "fallback_attempts": self.fallback_attempts,
            "tokens": {
                "input": self.input_tokens,
                "output": self.output_tokens,
                "cached": self.cached_tokens,
            },
            "latency_ms": self.latency.summary(),
        }


@dataclass(slots=True)
class RoleStats:
    """Tasks run for one role."""

    tasks: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_fallback: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def to_dict(self) -> dict[str, Any]:
        """Return the aggregates as a JSON-ready mapping."""
        return {
            "tasks": self.tasks,
            "outcomes": dict(sorted(self.outcomes.items())),
            "answered_by_fallback": self.by_fallback,
            "latency_ms": self.latency.summary(),
        }


class StatsBook:
    """All live aggregates; fed one event at a time."""

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], ProviderRoleStats] = {}
        self.roles: dict[str, RoleStats] = {}

    def add_task(self, event: TaskEvent) -> None:
        """Count one task and each of its attempts."""
        for attempt in event.attempts:
            self._add_attempt(attempt)
        task = event.task
        stats = self.roles.get(task.role)
        if stats is None:  # built only when new: each holds a counter and a histogram
            stats = self.roles[task.role] = RoleStats()
        stats.tasks += 1
        stats.outcomes[task.outcome] += 1
        stats.by_fallback += task.fallback and task.outcome == "ok"
        stats.latency.add(task.latency_ms)

    def _add_attempt(self, attempt: AttemptRow) -> None:
        key = (attempt.provider, attempt.role)
        stats = self.pairs.get(key)
        if stats is None:
            stats = self.pairs[key] = ProviderRoleStats()
        stats.attempts += 1
        stats.fallback_attempts += attempt.fallback
        stats.latency.add(attempt.latency_ms)
        stats.input_tokens += attempt.input_tokens  # billed whatever the outcome
        stats.output_tokens += attempt.output_tokens
        stats.cached_tokens += attempt.cached_tokens
        if attempt.outcome != "ok":
            stats.failures[attempt.outcome] += 1
            return
        stats.successes += 1

    def snapshot(self) -> Stats:
        """Return a JSON-ready copy of every aggregate."""
        return Stats(
            providers={
                f"{provider}/{role}": {"provider": provider, "role": role, **stats.to_dict()}
                for (provider, role), stats in sorted(self.pairs.items())
            },
            roles={role: stats.to_dict() for role, stats in sorted(self.roles.items())},
        )


@dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of the live aggregates, as `Callboard.stats` returns it.

    ``providers`` is keyed ``"provider/role"``; each value holds attempts, successes,
    failures by kind, fallback attempts, tokens and latency (mean, p50, p95, p99, max).
    ``roles`` holds per role the tasks, their outcomes, how many were answered by a
    fallback provider, and task latency.
    """

    providers: dict[str, dict[str, Any]]
    roles: dict[str, dict[str, Any]]

    def pair(self, provider: str, role: str) -> dict[str, Any]:
        """Return the aggregates of one provider in one role (empty if none yet)."""
        return self.providers.get(f"{provider}/{role}", {})

    def to_dict(self) -> dict[str, Any]:
        """Return the snapshot as one JSON-ready mapping."""
        return {"providers": self.providers, "roles": self.roles}
