"""The router's view of its provider actors: which actor serves each provider, and its health.

Plain code, owned by the router actor. A `Routing` is one config snapshot with the actor
slot serving each provider id in it; each task keeps the routing it started with, so a
reload changes only later tasks. The table holds the current routing, the actor of each
slot, the health each provider actor last reported, and the slots that a reload retired,
which are stopped once no running task can use them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runtime._config.schema import Config
from runtime._policy.routing import READY, TRIAL, Availability, Health


@dataclass(frozen=True, slots=True)
class Routing:
    """A config snapshot and the provider actor slot serving each provider id in it."""

    config: Config
    slots: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """How a provider stands now, as `Callboard.health` reports it."""

    state: str
    """``ready``, ``cooling`` (after a 429), ``open`` (breaker), ``half_open`` (the
    breaker's trial call is in flight), ``out`` (key rejected, quota spent), ``failed``
    (its actor kept crashing) or ``unchecked`` (its check found it in trouble: out of
    rotation until a background check passes)."""
    for_s: float | None = None
    """Seconds until it may be tried again (``unchecked``: until its next check), when
    that is known."""
    reason: str = ""


class ProviderTable:
    """Slots to actors and health, for the current routing and the ones tasks still use."""

    def __init__(
        self, routing: Routing, refs: Mapping[str, Any], health: Mapping[str, Health]
    ) -> None:
        self.routing = routing
        self._refs: dict[str, Any] = dict(refs)
        self._health: dict[str, Health] = dict(health)
        self._retired: set[str] = set()

    def ref(self, slot: str) -> Any:
        """Return the actor serving ``slot`` (``None``: none runs)."""
        return self._refs.get(slot)

    def health_of(self, routing: Routing, chain: Iterable[str]) -> dict[str, Health]:
        """Return the health of each provider of ``chain``, as ``routing`` casts them."""
        slots = routing.slots
        return {pid: self._health.get(slots[pid], READY) for pid in chain}

    def standing(self, now: float) -> dict[str, ProviderHealth]:
        """Return how each provider of the current routing stands, by provider id."""
        health = {}
        for pid, slot in self.routing.slots.items():
            state = self._health.get(slot, READY)
            if state.state is Availability.UNCHECKED:
                left = round(max(0.0, state.until - now), 3)
                health[pid] = ProviderHealth(state.state.value, left, state.reason)
            elif not state.usable:
                health[pid] = ProviderHealth(state.state.value, None, state.reason)
            elif state.ready_at() > now:
                left = state.ready_at() - now
                known = round(left, 3) if left != math.inf else None
                health[pid] = ProviderHealth(state.state.value, known, state.reason)
            else:
                health[pid] = ProviderHealth("ready")
        return health

    def set_health(self, slot: str, health: Health) -> Health:
        """Take the health a provider actor reported; return the one it replaces."""
        before = self._health.get(slot, READY)
        self._health[slot] = health
        return before

    def dispatching(self, slot: str, now: float) -> None:
        """Note a call sent to ``slot`` now.

        If the provider's breaker is open and cooled, that call is its trial: until the
        provider says how the trial went, it counts as half-open, so the tasks that were
        waiting for the breaker do not all follow the trial (the provider would refuse them).
        """
        health = self._health.get(slot, READY)
        if health.state is Availability.OPEN and health.until <= now:
            self._health[slot] = TRIAL

    def replaced(self, slot: str, ref: Any, health: Health | None) -> None:
        """A restarted actor serves ``slot``: its health starts afresh (or as ``health``)."""
        self._refs[slot] = ref
        self._health.pop(slot, None)
        if health is not None:
            self._health[slot] = health

    def failed(self, slot: str, reason: str) -> None:
        """The actor of ``slot`` will not return: its provider is failed until a reload."""
        self._health[slot] = Health(Availability.FAILED, 0.0, reason)
        self._refs.pop(slot, None)

    def apply(
        self, routing: Routing, refs: Mapping[str, Any], health: Mapping[str, Health]
    ) -> None:
        """Make ``routing`` current (its new slots as ``health`` says); retire unused slots.

        A provider out of rotation comes back with the reload (its actor says so, or
        refuses the first call and says why, if it is still out).
        """
        old = set(self.routing.slots.values())
        self.routing = routing
        self._refs.update(refs)
        self._health.update(health)
        self._retired |= old - set(routing.slots.values())
        for slot in routing.slots.values():
            if self._health.get(slot, READY).state is Availability.OUT:
                del self._health[slot]

    @property
    def retiring(self) -> bool:
        """Whether some slots wait to be retired."""
        return bool(self._retired)

    def retire_idle(self, in_use: Iterable[str]) -> tuple[str, ...]:
        """Forget the retired slots not in ``in_use`` (nor current); return them, sorted."""
        live = set(self.routing.slots.values())
        live.update(in_use)
        idle = self._retired - live
        self._retired -= idle
        for slot in idle:
            self._refs.pop(slot, None)
            self._health.pop(slot, None)
        return tuple(sorted(idle))
