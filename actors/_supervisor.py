"""The supervisor: starts the actors, restarts those that crash, re-wires the router.

OTP's one_for_one with restart intensity: a crashed child is restarted after a jittered
exponential backoff, at most ``max_restarts`` times within ``window_s``. Past that a
provider is marked failed (its roles fall back), the metrics actor is given up (calls go
on without live stats), and a router that cannot be kept running closes the board.
Callers and the router address providers by id, never by a long-lived actor reference.

Providers whose check found them in trouble start unchecked; the supervisor keeps how
each such provider last said it stood, so that an actor restarted after a crash starts
unchecked again, and tells every provider which router to keep informed.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors._budgets import OnBudget
from actors._child import DispatchingActor, tell_quietly
from actors._messages import (
    ApplyRouting,
    AwaitChild,
    ChildDied,
    HealthChanged,
    ListChildren,
    MetricsReplaced,
    ProviderDown,
    ProviderReplaced,
    Reconfigure,
    Reloaded,
    RestartChild,
    RetireSlots,
    RouterIs,
)
from actors._metrics import MetricsActor, MetricsActorSettings
from actors._provider import ProviderActor, Rechecks
from actors._router import RouterActor
from runtime._audit import AuditLog
from runtime._config.schema import Config
from runtime._errors import BoardClosedError
from runtime._policy.backoff import recheck_wait_s
from runtime._policy.budget_ledger import BudgetLedger, LocalLedger
from runtime._policy.provider_table import Routing
from runtime._policy.routing import Availability, Health
from runtime._transport.credentials import CheckFailure
from runtime._transport.http import ProviderClient
from runtime._transport.io_loop import IoLoop
from runtime._transport.shared_store import SharedStore

METRICS, ROUTER = "metrics", "router"


@dataclass(slots=True)
class _Child:
    start: Callable[[], pykka.ActorRef[Any]]
    ref: pykka.ActorRef[Any] | None = None
    restarts: deque[float] = field(default_factory=deque)
    failed: bool = False


class Supervisor(DispatchingActor):
    """Owns the actor tree of one board."""

    def __init__(
        self,
        *,
        config: Config,
        io: IoLoop,
        audit: AuditLog,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        unchecked: Mapping[str, CheckFailure] | None = None,
        ledger: BudgetLedger | None = None,
        on_budget: OnBudget | None = None,
        shared: SharedStore | None = None,
        clients: Mapping[str, ProviderClient] | None = None,
    ) -> None:
        """``unchecked`` maps the providers whose check found them in trouble to why.

        ``clients`` are the HTTP clients the start-up check used, by provider: each goes
        to its provider's first actor, so the first call reuses the check's connection.

        ``ledger`` keeps the budgets' spend (every router incarnation gets the same one);
        ``on_budget`` is called with each budget alert; ``shared`` is the fleet's store
        (``None``: limits and health stay local).
        """
        super().__init__()
        self._config = config
        self._unchecked_at_start = dict(unchecked or {})
        self._clients_at_start = dict(clients or {})
        self._unchecked: dict[str, Health] = {}
        """How each unchecked provider last stood, by slot."""
        self._io = io
        self._audit = audit
        self._shared = shared
        self._clock = clock
        self._random = rand
        self._ledger = ledger or LocalLedger(config.budget_rules)
        self._on_budget = on_budget
        self._children: dict[str, _Child] = {}
        self._fingerprints: dict[str, tuple[object, ...]] = {}
        self._slots: dict[str, str] = {}
        self._slot_numbers = itertools.count(1)
        self._waiters: list[AwaitChild] = []
        self.handlers = {
            ChildDied: self._child_died,
            RestartChild: self._restart,
            AwaitChild: self._await_child,
            Reconfigure: self._reconfigure,
            RetireSlots: self._retire,
            ListChildren: self._stop_order,
            HealthChanged: self._provider_health,
        }

    def on_start(self) -> None:
        """Start metrics, then the providers, then the router."""
        self._add(METRICS, self._start_metrics)
        self._slots = self._provider_slots(self._config, self._unchecked_at_start)
        self._add(ROUTER, self._start_router)
        self._introduce_router(self._slots.values())

    def _add(self, child_id: str, start: Callable[[], pykka.ActorRef[Any]]) -> pykka.ActorRef[Any]:
        child = _Child(start)
        child.ref = start()
        self._children[child_id] = child
        return child.ref

    def _start_metrics(self) -> pykka.ActorRef[Any]:
        settings = MetricsActorSettings.of(self._config)
        return MetricsActor.start(self.actor_ref, settings=settings, io=self._io, audit=self._audit)

    def _routing(self) -> Routing:
        return Routing(self._config, dict(self._slots))

    def _start_router(self) -> pykka.ActorRef[Any]:
        router = RouterActor.start(
            routing=self._routing(),
            refs=self._provider_refs(),
            metrics=self._ref(METRICS),
            health=dict(self._unchecked),
            io=self._io,
            audit=self._audit,
            supervisor=self.actor_ref,
            clock=self._clock,
            rand=self._random,
            ledger=self._ledger,
            on_budget=self._on_budget,
        )
        if self._children[METRICS].failed:  # else a missing ref means "restarting"
            tell_quietly(router, MetricsReplaced(None))
        return router

    def _ref(self, child_id: str) -> pykka.ActorRef[Any] | None:
        child = self._children.get(child_id)
        return None if child is None or child.failed else child.ref

    def _provider_refs(self) -> dict[str, pykka.ActorRef[Any]]:
        refs = {}
        for child_id, child in self._children.items():
            if child_id.startswith("provider:") and child.ref is not None and not child.failed:
                refs[child_id.removeprefix("provider:")] = child.ref
        return refs

    def _provider_slots(
        self, config: Config, unchecked: Mapping[str, CheckFailure]
    ) -> dict[str, str]:
        """Give each provider an actor slot, reusing the running one when nothing changed.

        A new slot of a provider in ``unchecked`` starts unchecked, for that reason.
        """
        slots: dict[str, str] = {}
        for pid, settings in config.providers.items():
            fingerprint = (settings, config.breaker, config.timeouts.connect_s)
            slot = self._slots.get(pid)
            if slot is None or self._fingerprints.get(slot) != fingerprint:
                slot = f"{pid}#{next(self._slot_numbers)}"
                self._fingerprints[slot] = fingerprint
                failure = unchecked.get(pid)
                if failure is not None:
                    wait = recheck_wait_s(config.startup, 1, self._random, failure.retry_after_s)
                    when = self._clock() + wait
                    self._unchecked[slot] = Health(Availability.UNCHECKED, when, failure.problem)
                self._add(f"provider:{slot}", self._provider_starter(slot, pid, config))
            slots[pid] = slot
        return slots

    def _introduce_router(self, slots: Iterable[str]) -> None:
        """Tell these slots' provider actors which router to keep informed of their health."""
        router = self._ref(ROUTER)
        if router is None:
            return
        for slot in slots:
            provider = self._ref(f"provider:{slot}")
            if provider is not None:
                tell_quietly(provider, RouterIs(router))

    def _provider_health(self, message: HealthChanged) -> None:
        """Keep how an unchecked provider stands, for a restart of its actor or the router."""
        if message.health.state is Availability.UNCHECKED:
            self._unchecked[message.slot] = message.health
        else:
            self._unchecked.pop(message.slot, None)

    def _provider_starter(
        self, slot: str, pid: str, config: Config
    ) -> Callable[[], pykka.ActorRef[Any]]:
        settings, breaker, connect_s = (
            config.providers[pid],
            config.breaker,
            config.timeouts.connect_s,
        )
        rechecks = Rechecks(config.startup, config.timeouts.validate_s)

        def start() -> pykka.ActorRef[Any]:
            return ProviderActor.start(
                slot=slot,
                provider_id=pid,
                settings=settings,
                breaker=breaker,
                connect_s=connect_s,
                io=self._io,
                audit=self._audit,
                supervisor=self.actor_ref,
                clock=self._clock,
                rechecks=rechecks,
                unchecked=self._unchecked.get(slot),
                rand=self._random,
                shared=self._shared,
                lease_s=self._config.shared.lease_s,
                trial_s=self._config.shared.trial_s,
                client=self._clients_at_start.pop(pid, None),
            )

        return start

    def _await_child(self, message: AwaitChild) -> None:
        self._waiters.append(message)
        self._notify_waiters()

    def _child_died(self, message: ChildDied) -> None:
        child = self._children.get(message.child)
        if child is None or child.failed:
            return
        now = self._clock()
        child.ref = None
        window = self._config.supervision
        while child.restarts and child.restarts[0] < now - window.window_s:
            child.restarts.popleft()
        self._audit.event("actor_died", actor=message.child, reason=message.reason)
        if len(child.restarts) >= window.max_restarts:
            self._give_up(message.child, child, message.reason)
            return
        child.restarts.append(now)
        delay = self._restart_delay(len(child.restarts))
        self._audit.event("actor_restarting", actor=message.child, delay_s=round(delay, 3))
        if message.child.startswith("provider:"):
            down = ProviderDown(
                message.child.removeprefix("provider:"), f"crashed ({message.reason})", failed=False
            )
            self._tell_router(down)
        self._io.call_later(delay, tell_quietly, self.actor_ref, RestartChild(message.child))

    def _restart_delay(self, count: int) -> float:
        policy = self._config.supervision
        base: float = min(policy.backoff_max_s, policy.backoff_initial_s * 2.0 ** (count - 1))
        return base / 2 + self._random() * base / 2

    def _give_up(self, child_id: str, child: _Child, reason: str) -> None:
        child.failed = True
        limit = self._config.supervision
        why = (
            f"crashed more than {limit.max_restarts} times in {limit.window_s:g} s (last: {reason})"
        )
        self._audit.event("actor_failed", actor=child_id, reason=why)
        if child_id.startswith("provider:"):
            self._tell_router(ProviderDown(child_id.removeprefix("provider:"), why, failed=True))
        elif child_id == METRICS:
            self._tell_router(MetricsReplaced(None))
        self._notify_waiters()

    def _restart(self, message: RestartChild) -> None:
        child_id = message.child
        child = self._children.get(child_id)
        if child is None or child.failed or child.ref is not None:
            return
        child.ref = child.start()
        self._audit.event("actor_restarted", actor=child_id, restarts=len(child.restarts))
        if child_id.startswith("provider:"):
            slot = child_id.removeprefix("provider:")
            self._tell_router(ProviderReplaced(slot, child.ref, self._unchecked.get(slot)))
            self._introduce_router([slot])
        elif child_id == METRICS:
            self._tell_router(MetricsReplaced(child.ref))
        elif child_id == ROUTER:
            self._introduce_router(self._slots_running())
        self._notify_waiters()

    def _slots_running(self) -> list[str]:
        return [c.removeprefix("provider:") for c in self._children if c.startswith("provider:")]

    def _notify_waiters(self) -> None:
        waiting = []
        for waiter in self._waiters:
            child = self._children.get(waiter.child)
            if waiter.reply.done():
                continue
            if child is None or child.failed:
                why = "has failed" if child is not None else "does not exist"
                waiter.reply.set_exception(
                    BoardClosedError(f"{waiter.child} {why}; see the audit log")
                )
            elif child.ref is not None and child.ref != waiter.replacing:
                waiter.reply.set_result(child.ref)
            else:
                waiting.append(waiter)
        self._waiters = waiting

    def _reconfigure(self, message: Reconfigure) -> None:
        config = message.config
        self._config = config
        metrics = self._ref(METRICS)
        if metrics is not None:
            tell_quietly(metrics, MetricsActorSettings.of(config))
        running = set(self._slots_running())
        kept = set(self._slots.values())
        self._slots = self._provider_slots(config, message.unchecked)
        for slot in kept & set(self._slots.values()):
            ref = self._ref(f"provider:{slot}")
            if ref is not None:
                tell_quietly(ref, Reloaded())
        new = [slot for slot in self._slots.values() if slot not in running]
        health = {slot: self._unchecked[slot] for slot in new if slot in self._unchecked}
        self._tell_router(ApplyRouting(self._routing(), self._provider_refs(), health))
        self._introduce_router(new)

    def _retire(self, message: RetireSlots) -> None:
        for slot in message.slots:
            child = self._children.pop(f"provider:{slot}", None)
            self._fingerprints.pop(slot, None)
            self._unchecked.pop(slot, None)
            if child is not None and child.ref is not None:
                child.ref.stop(block=False)
                self._audit.event("actor_retired", actor=f"provider:{slot}")

    def _tell_router(self, message: object) -> None:
        ref = self._ref(ROUTER)
        if ref is not None:
            tell_quietly(ref, message)

    def _stop_order(self, _message: ListChildren) -> list[pykka.ActorRef[Any]]:
        """Return the live children in reverse start order: router, providers, metrics."""
        refs = [c.ref for c in self._children.values() if c.ref is not None]
        router = self._ref(ROUTER)
        ordered = [router] if router is not None else []
        ordered += [r for r in reversed(refs) if r is not router]
        return ordered
