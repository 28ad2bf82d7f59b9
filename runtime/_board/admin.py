"""What a board offers besides tasks: statistics, health, reports, models, reloads.

`BoardAdmin` is a mixin of `Callboard`; every wait here is bounded and happens in the
caller's thread.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import pykka

from actors._messages import GetBudgets, GetExposition, GetHealth, GetStats, Reconfigure, SyncStore
from runtime._audit import AuditLog, Redactor
from runtime._config.load import load_config
from runtime._config.schema import Config
from runtime._errors import (
    BoardClosedError,
    CallboardError,
    ConfigError,
    MissingExtraError,
    StartupError,
    StoreError,
)
from runtime._metrics.report import Every, GroupBy, Report, Trend
from runtime._metrics.stats import Stats
from runtime._metrics.store import Filters, MetricsStore
from runtime._metrics.store_open import StoreAddress, open_store
from runtime._metrics.timespec import span_s
from runtime._policy.budget_ledger import BudgetStatus
from runtime._policy.provider_table import ProviderHealth
from runtime._transport.credentials import CheckFailure, check_credentials, list_models
from runtime._transport.http import ProviderClient
from runtime._transport.io_loop import IoLoop
from runtime._transport.signing import require_signing_extra

CONTROL_TIMEOUT_S = 5.0
"""Bound on every control-plane wait (stats, reload, router hand-over)."""


class BoardAdmin:
    """Statistics, health, metrics reports, model discovery and reloads of a board."""

    _config: Config
    _environ: Mapping[str, str] | None
    _audit: AuditLog
    _redactor: Redactor
    _io: IoLoop
    _supervisor: pykka.ActorRef[Any]

    def _tell_router(self, message: object) -> None:
        raise NotImplementedError

    def models(self, provider: str) -> list[str]:
        """List the models ``provider`` offers (asking the provider now).

        Raises:
            KeyError: no such provider in the config.
            ProviderError: the provider could not be asked, or has no model list.
        """
        settings = self._config.providers[provider]
        timeout_s = self._config.timeouts.validate_s + CONTROL_TIMEOUT_S
        return self._io.run(list_models(settings, self._config.timeouts), timeout_s)

    def stats(self) -> Stats:
        """Return the live aggregates per (provider, role) and per role."""
        reply: concurrent.futures.Future[Stats] = concurrent.futures.Future()
        self._tell_router(GetStats(reply))
        try:
            return reply.result(timeout=CONTROL_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            raise BoardClosedError("the metrics actor did not answer; see the audit log") from None

    def prometheus_exposition(self) -> bytes | None:
        """Return the Prometheus metrics as text, or ``None`` when none are kept.

        They are kept when ``[metrics] prometheus_port`` is set or ``[gateway] metrics``.
        """
        reply: concurrent.futures.Future[bytes | None] = concurrent.futures.Future()
        self._tell_router(GetExposition(reply))
        return _router_answer(reply)

    def health(self) -> dict[str, ProviderHealth]:
        """Return how each provider stands now: ready, cooling, breaker open, out, failed."""
        reply: concurrent.futures.Future[dict[str, ProviderHealth]] = concurrent.futures.Future()
        self._tell_router(GetHealth(reply))
        return _router_answer(reply)

    def budgets(self) -> list[BudgetStatus]:
        """Return every budget as it stands now: spend, reservations, limit, reset, forecast."""
        reply: concurrent.futures.Future[list[BudgetStatus]] = concurrent.futures.Future()
        self._tell_router(GetBudgets(reply))
        return _router_answer(reply)

    def metrics(
        self,
        *,
        since: str | float = "24h",
        until: float | None = None,
        by: GroupBy = "provider,role",
        role: str | None = None,
        provider: str | None = None,
        workflow: str | None = None,
    ) -> Report:
        """Report how each provider does in each role, from the metrics store.

        ``since`` is a span back from ``until`` (``"24h"``, ``"7d"``) or Unix seconds;
        ``until`` defaults to now. Every task answered before the call is counted.

        Raises:
            StoreError: there is no store (``[metrics] path = "off"``) or it cannot be read.
        """
        store, first, last = self._open_store(since, until)
        try:
            return store.report(first, last, by, Filters(role, provider, workflow))
        finally:
            store.close()

    def trend(
        self,
        *,
        every: Every = "hour",
        since: str | float = "7d",
        until: float | None = None,
        by: GroupBy = "provider,role",
        role: str | None = None,
        provider: str | None = None,
        workflow: str | None = None,
    ) -> Trend:
        """Report the same figures as `metrics`, per hour or per day."""
        store, first, last = self._open_store(since, until)
        try:
            return store.trend(first, last, every, by, Filters(role, provider, workflow))
        finally:
            store.close()

    def _open_store(
        self, since: str | float, until: float | None
    ) -> tuple[MetricsStore, float, float]:
        reply: concurrent.futures.Future[StoreAddress | None] = concurrent.futures.Future()
        self._tell_router(SyncStore(reply))
        try:
            path = reply.result(timeout=CONTROL_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            raise BoardClosedError("the metrics actor did not answer; see the audit log") from None
        path = path or self._config.metrics_store()
        if path is None:
            raise StoreError('there is no metrics store: set [metrics] path (it is "off")')
        last = time.time() if until is None else until
        first = last - span_s(since) if isinstance(since, str) else since
        return open_store(path, readonly=True), first, last

    def reload(self, path: str | os.PathLike[str] | None = None) -> Config:
        """Load the config file again; tasks that start afterwards use it.

        Tasks in flight finish as they began. An invalid config (or one whose new or
        changed providers fail the credential check for the user's own mistake) is
        rejected and the old one stays; a new or changed provider in trouble starts
        unchecked, as at start-up.

        Valid or not, a reload first opens the audit file anew at its path if it was
        renamed or deleted since (logrotate); `[audit]` settings apply at the next start.

        Raises:
            ConfigError: the new file has problems (listed).
            StartupError: a new or changed provider failed its credential check.
            MissingExtraError: a provider needs an optional extra that is not installed.
        """
        source = str(path) if path is not None else self._config.source
        self._audit.reopen()
        try:
            config = load_config(source, self._environ)
            require_signing_extra(config)
            changed = [
                pid
                for pid, settings in config.providers.items()
                if self._config.providers.get(pid) != settings
            ]
            unchecked: dict[str, CheckFailure] = {}
            if changed and config.startup.check_credentials:
                unchecked = self._check(config, changed)
        except (ConfigError, StartupError, MissingExtraError) as exc:
            problems = [str(p) for p in getattr(exc, "problems", ())] or [str(exc)]
            self._audit.event("config_rejected", source=source, problems=problems)
            raise
        self._redactor.add(config.secrets())
        reconfigure = Reconfigure(config, unchecked)
        self._supervisor.ask(reconfigure, block=True, timeout=CONTROL_TIMEOUT_S)
        self._config = config
        self._audit.event(
            "config_loaded",
            source=source,
            providers=sorted(config.providers),
            roles=sorted(config.roles),
            reload=True,
        )
        return config

    def reload_on_sighup(
        self, on_reload: Callable[[Config | CallboardError], object] | None = None
    ) -> None:
        """Reload the config whenever the process gets SIGHUP (call from the main thread).

        The reload runs on a short-lived thread; ``on_reload`` (if given) gets the new
        config, or the error that rejected it (also recorded in the audit log).
        """

        def handle(_signum: int, _frame: object) -> None:
            worker = threading.Thread(
                target=self._reload_reporting,
                args=(on_reload,),
                name="callboard-reload",
                daemon=True,
            )
            worker.start()

        signal.signal(signal.SIGHUP, handle)

    def _reload_reporting(
        self, on_reload: Callable[[Config | CallboardError], object] | None
    ) -> None:
        outcome: Config | CallboardError
        try:
            outcome = self.reload()
        except CallboardError as exc:
            outcome = exc
        if on_reload is not None:
            on_reload(outcome)

    def _check(
        self,
        config: Config,
        provider_ids: Iterable[str] | None,
        clients: Mapping[str, ProviderClient] | None = None,
    ) -> dict[str, CheckFailure]:
        """Check credentials of ``provider_ids`` (all by default), through ``clients``.

        Returns the providers in trouble (unreachable, 5xx...), each with its failure:
        they start unchecked.

        Raises:
            StartupError: a provider failed for the user's own mistake, or any failed
                and ``[startup] require_all`` is set; every failure is listed.
        """
        timeout_s = config.timeouts.validate_s + CONTROL_TIMEOUT_S
        failures = self._io.run(check_credentials(config, provider_ids, clients), timeout_s)
        mistaken = any(not failure.trouble for failure in failures)
        if mistaken or (failures and config.startup.require_all):
            problems = [self._redactor.text(str(failure)) for failure in failures]
            self._audit.event("startup_failed", source=config.source, problems=problems)
            raise StartupError(problems)
        return {
            failure.provider: dataclasses.replace(
                failure, problem=self._redactor.text(failure.problem)
            )
            for failure in failures
        }


_T = TypeVar("_T")


def _router_answer(reply: concurrent.futures.Future[_T]) -> _T:
    """Wait for the router's answer to a control question."""
    try:
        return reply.result(timeout=CONTROL_TIMEOUT_S)
    except concurrent.futures.TimeoutError:
        raise BoardClosedError("the router did not answer; see the audit log") from None
