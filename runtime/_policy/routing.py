"""Which provider a task tries next, or how long it waits, or why it gives up.

Pure decisions over a task's progress and the providers' health, with the time passed
in. The router actor holds the state and carries the decisions out.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from runtime._config.schema import RetrySettings
from runtime._errors import ErrorKind
from runtime._policy.backoff import Random, retry_wait_s


class Availability(enum.StrEnum):
    """A provider's standing as the router sees it."""

    READY = "ready"
    COOLING = "cooling"
    """Resting after a 429 or a spent rate budget, until ``Health.until``."""
    OPEN = "open"
    """Its breaker is open; a trial call is allowed from ``Health.until``."""
    HALF_OPEN = "half_open"
    """Its breaker's trial call is in flight: when it can take calls again is unknown until
    the trial ends, and the provider says at once how it stands then."""
    OUT = "out"
    """Out of rotation until a reload: its key was rejected mid-run."""
    FAILED = "failed"
    """Its actor crashed more often than supervision allows."""
    UNCHECKED = "unchecked"
    """Its check found the provider in trouble (at start or on a reload); it is checked
    again in the background, next at ``Health.until``, and joins once a check passes."""


@dataclass(frozen=True, slots=True)
class Health:
    """One provider's availability, and since or until when."""

    state: Availability = Availability.READY
    until: float = 0.0
    reason: str = ""

    @property
    def usable(self) -> bool:
        """Whether the router may choose it: not out, failed, or waiting for a check to pass."""
        return self.state not in (Availability.OUT, Availability.FAILED, Availability.UNCHECKED)

    def ready_at(self) -> float:
        """Return when the provider can take a call (0.0: now; ``inf``: not known yet)."""
        if self.state is Availability.HALF_OPEN:
            return math.inf
        return 0.0 if self.state is Availability.READY else self.until


READY = Health()
TRIAL = Health(Availability.HALF_OPEN, reason="its breaker's trial call is in flight")


@dataclass(slots=True)
class ProviderProgress:
    """What one task has done with one provider so far."""

    failures: int = 0
    not_before: float = 0.0
    finished: bool = False
    """No more tries here: a non-retryable error, or the attempts are spent."""
    again: bool = False
    """Try this provider once more at once, before any other (an answer that did not match
    the task's schema, the first time)."""

    def record_failure(
        self,
        kind: ErrorKind,
        retry_after_s: float | None,
        policy: RetrySettings,
        now: float,
        random: Random,
        *,
        again: bool = False,
    ) -> None:
        """Count a failed attempt and set when this provider may be tried again.

        With ``again``, a first failure is tried once more at once on this provider.
        """
        self.failures += 1
        self.again = False
        if not kind.retryable or self.failures >= policy.attempts:
            self.finished = True
            return
        if again and self.failures == 1:
            self.again, self.not_before = True, now
            return
        self.not_before = now + retry_wait_s(policy, self.failures, retry_after_s, random)


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Send the next attempt to ``provider`` now."""

    provider: str


@dataclass(frozen=True, slots=True)
class WaitUntil:
    """Nothing can be tried before ``when``; wake up then and decide again."""

    when: float
    provider: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    """No provider can answer in time; ``deadline`` says whether time ran out."""

    reason: str
    deadline: bool = False


Step = Dispatch | WaitUntil | GiveUp


def next_step(  # noqa: PLR0917 - a pure function of six inputs, all needed
    chain: Sequence[str],
    progress: Mapping[str, ProviderProgress],
    health: Mapping[str, Health],
    policy: RetrySettings,
    now: float,
    deadline: float,
) -> Step:
    """Decide what a task does next.

    Under ``failover = "immediate"`` the first provider of the chain that is healthy now
    and has not failed this task is tried; failing that, whichever provider can be tried
    soonest (its backoff over, its cooldown ended). Under ``"after_retries"`` the task
    stays on the first healthy provider until its attempts are spent. A provider out of
    rotation, failed, or done with for this task is never chosen.
    """
    usable = [p for p in chain if not progress[p].finished and health.get(p, READY).usable]
    if not usable:
        return GiveUp(_exhausted_reason(chain, health))

    def ready_at(pid: str) -> float:
        return max(progress[pid].not_before, health.get(pid, READY).ready_at())

    healthy_now = [p for p in usable if health.get(p, READY).ready_at() <= now]
    choice = _choice(usable, healthy_now, progress, policy, ready_at)
    when = ready_at(choice)
    if when <= now:
        return Dispatch(choice)
    if when < deadline:
        return WaitUntil(when, choice)
    if when == math.inf and now < deadline:
        return WaitUntil(deadline, choice)  # a breaker's trial: the router hears how it ends
    return _too_late(choice, when - now, [health.get(p, READY) for p in usable])


def _choice(
    usable: Sequence[str],
    healthy_now: Sequence[str],
    progress: Mapping[str, ProviderProgress],
    policy: RetrySettings,
    ready_at: Callable[[str], float],
) -> str:
    """Pick the provider to try next (maybe later): see `next_step`."""
    again = [p for p in healthy_now if progress[p].again]
    if again:
        return again[0]
    if policy.failover == "immediate":
        fresh = [p for p in healthy_now if progress[p].failures == 0]
        return fresh[0] if fresh else min(usable, key=ready_at)
    return healthy_now[0] if healthy_now else min(usable, key=ready_at)


_BREAKER_STATES = (Availability.OPEN, Availability.HALF_OPEN)


def _too_late(choice: str, wait_s: float, health: Sequence[Health]) -> GiveUp:
    """Give up: the next try could start only after the deadline."""
    if all(h.state in _BREAKER_STATES for h in health):
        when = "once its trial call ends" if wait_s == math.inf else f"in {wait_s:.1f} s"
        return GiveUp(
            "every provider is failing (each one's circuit breaker is open); "
            f"the first to be tried again is {choice}, {when}"
        )
    return GiveUp(
        f"the next try ({choice}) could start only in {wait_s:.1f} s, after the task's deadline",
        deadline=True,
    )


def next_fallback(
    chain: Sequence[str],
    progress: Mapping[str, ProviderProgress],
    health: Mapping[str, Health],
    busy: Collection[str],
) -> str | None:
    """Return the provider a task would go on with if its attempts on ``busy`` failed.

    The first provider of the chain that is not busy, not done with for this task and not
    out of rotation, preferring one not tried yet (as ``failover = "immediate"`` does);
    ``None`` when there is none.
    """
    candidates = [
        p
        for p in chain
        if p not in busy and not progress[p].finished and health.get(p, READY).usable
    ]
    fresh = [p for p in candidates if progress[p].failures == 0]
    ordered = fresh or candidates
    return ordered[0] if ordered else None


def _exhausted_reason(chain: Sequence[str], health: Mapping[str, Health]) -> str:
    out = [f"{p} ({health[p].reason})" for p in chain if p in health and not health[p].usable]
    if out:
        return "every provider failed or is out of rotation: " + ", ".join(out)
    return "every provider failed"
