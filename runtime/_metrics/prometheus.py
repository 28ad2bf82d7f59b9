"""Prometheus exposition of callboard's live aggregates (optional: ``callboard[prometheus]``).

`PrometheusExporter` keeps its own ``CollectorRegistry``, so any number of boards can run
in one process, and serves it over HTTP on loopback unless told otherwise. The metrics
actor owns one and feeds it every finished task with its attempts (`observe`):

```
callboard_calls_total{provider,role,outcome}            one per attempt: "ok" or the error kind
callboard_call_duration_seconds{provider,role}          histogram of attempt latency
callboard_time_to_first_token_seconds{provider,role}    histogram, streamed attempts only
callboard_tokens_total{provider,role,kind}              kind "input", "output" or "cached"
callboard_cost_usd_total{provider,role}                 cost of calls whose price is known
callboard_unpriced_calls_total{provider,role}           calls whose cost is unknown
callboard_tasks_total{role,outcome}
callboard_fallback_tasks_total{role}                    tasks answered by a fallback provider
callboard_budget_spent_usd{budget,account}              spend this period (account: a run's id)
callboard_budget_reserved_usd{budget,account}           held by calls in flight
callboard_budget_limit_usd{budget,account}
callboard_budget_alert_level{budget,account}            highest alert_at threshold crossed
```

``prometheus-client`` is imported only when an exporter is built, so ``import runtime``
never needs it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from runtime._errors import PrometheusUnavailableError
from runtime._policy.budget_ledger import BudgetStatus
from runtime._rows import AttemptRow, TaskRow

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
"""Histogram bucket bounds in seconds, from a fast first token to a long generation."""

_TOKEN_KINDS = ("input", "output", "cached")

EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The content type of `PrometheusExporter.exposition` (Prometheus's text format 0.0.4)."""


class PrometheusExporter:
    """Callboard's metrics in a registry of their own, served for Prometheus to scrape.

    Build it with the ``port`` to listen on (0 picks a free one, see `port`; ``None``:
    none, another server serves `exposition`) and the ``host`` to bind (loopback by
    default); `start` serves ``/metrics``, `close` stops.
    Raises `PrometheusUnavailableError` when ``prometheus-client`` is not installed.
    """

    def __init__(self, port: int | None, host: str = "127.0.0.1") -> None:
        try:
            import prometheus_client as prom  # noqa: PLC0415  # optional: only when asked for
        except ImportError as error:
            raise PrometheusUnavailableError from error
        self._host = host
        self._port = port
        self._serve = prom.start_http_server
        self._latest = prom.generate_latest
        self._serving: tuple[WSGIServer, threading.Thread] | None = None
        self._registry = registry = prom.CollectorRegistry()
        pair = ("provider", "role")
        self._calls = prom.Counter(
            "callboard_calls",
            "Attempts at providers, by outcome (ok or the error kind).",
            [*pair, "outcome"],
            registry=registry,
        )
        self._duration = prom.Histogram(
            "callboard_call_duration_seconds",
            "Latency of attempts at providers.",
            pair,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._ttft = prom.Histogram(
            "callboard_time_to_first_token_seconds",
            "Time to the first text of streamed answers.",
            pair,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._tokens = prom.Counter(
            "callboard_tokens",
            "Tokens used by attempts, by kind (input, output, cached).",
            [*pair, "kind"],
            registry=registry,
        )
        self._cost = prom.Counter(
            "callboard_cost_usd",
            "Cost in US dollars of attempts whose model has a known price.",
            pair,
            registry=registry,
        )
        self._unpriced = prom.Counter(
            "callboard_unpriced_calls",
            "Attempts whose cost is unknown because their model has no known price.",
            pair,
            registry=registry,
        )
        self._tasks = prom.Counter(
            "callboard_tasks",
            "Finished tasks, by outcome (ok, failed, deadline, cancelled, budget).",
            ["role", "outcome"],
            registry=registry,
        )
        self._fallback_tasks = prom.Counter(
            "callboard_fallback_tasks",
            "Tasks answered by a provider other than the role's first choice.",
            ["role"],
            registry=registry,
        )

        budget = ("budget", "account")
        self._budget_spent = prom.Gauge(
            "callboard_budget_spent_usd", "Spend this period.", budget, registry=registry
        )
        self._budget_reserved = prom.Gauge(
            "callboard_budget_reserved_usd",
            "Reserved by calls in flight.",
            budget,
            registry=registry,
        )
        self._budget_limit = prom.Gauge(
            "callboard_budget_limit_usd", "The budget's limit.", budget, registry=registry
        )
        self._budget_alert = prom.Gauge(
            "callboard_budget_alert_level",
            "The highest alert_at threshold crossed this period (0: none).",
            budget,
            registry=registry,
        )

    @property
    def port(self) -> int | None:
        """The port being served: the bound one once started, else the one asked for."""
        if self._serving is not None:
            return self._serving[0].server_port
        return self._port

    def start(self) -> None:
        """Serve the exposition on ``host:port`` from a daemon thread (no-op when serving).

        Raises ``OSError`` when the address cannot be bound.
        """
        if self._serving is None and self._port is not None:
            self._serving = self._serve(self._port, self._host, self._registry)

    def exposition(self) -> bytes:
        """The registry in Prometheus's text format (`EXPOSITION_TYPE`), for another server."""
        text: bytes = self._latest(self._registry)
        return text

    def close(self) -> None:
        """Stop serving and release the port; closing again does nothing."""
        serving, self._serving = self._serving, None
        if serving is not None:
            server, thread = serving
            server.shutdown()
            server.server_close()
            thread.join()

    def set_budgets(self, statuses: Sequence[BudgetStatus]) -> None:
        """Show each budget account as it stands."""
        for status in statuses:
            labels = (status.name, status.account)
            self._budget_spent.labels(*labels).set(status.spent_usd)
            self._budget_reserved.labels(*labels).set(status.reserved_usd)
            self._budget_limit.labels(*labels).set(status.limit_usd)
            self._budget_alert.labels(*labels).set(status.alerted)

    def observe(
        self, task: TaskRow, attempts: Sequence[AttemptRow], costs: Sequence[float | None]
    ) -> None:
        """Count one finished task and its attempts.

        ``costs[i]`` is the cost in USD of ``attempts[i]``, or ``None`` when its model has no
        known price: such attempts are counted as unpriced, never as free.
        """
        for attempt, cost in zip(attempts, costs, strict=True):
            self._observe_attempt(attempt, cost)
        self._tasks.labels(task.role, task.outcome).inc()
        if task.fallback and task.outcome == "ok":
            self._fallback_tasks.labels(task.role).inc()

    def _observe_attempt(self, attempt: AttemptRow, cost: float | None) -> None:
        pair = (attempt.provider, attempt.role)
        self._calls.labels(*pair, attempt.outcome).inc()
        self._duration.labels(*pair).observe(attempt.latency_ms / 1000)
        if attempt.ttft_ms is not None:
            self._ttft.labels(*pair).observe(attempt.ttft_ms / 1000)
        counts = (attempt.input_tokens, attempt.output_tokens, attempt.cached_tokens)
        for kind, count in zip(_TOKEN_KINDS, counts, strict=True):
            self._tokens.labels(*pair, kind).inc(count)
        if cost is None:
            self._unpriced.labels(*pair).inc()
        else:
            self._cost.labels(*pair).inc(cost)
