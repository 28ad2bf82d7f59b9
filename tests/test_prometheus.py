from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from runtime._errors import CallboardError, PrometheusUnavailableError
from runtime._metrics.prometheus import PrometheusExporter
from runtime._policy.budget_ledger import BudgetStatus
from runtime._rows import AttemptRow, TaskRow

pytestmark = pytest.mark.timeout(20)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def exporters() -> Iterator[Callable[..., PrometheusExporter]]:
    """Start exporters (port 0 unless told); every one is closed after the test."""
    started: list[PrometheusExporter] = []

    def start(port: int = 0, **options: str) -> PrometheusExporter:
        exporter = PrometheusExporter(port, **options)
        started.append(exporter)
        exporter.start()
        return exporter

    yield start
    for exporter in started:
        exporter.close()


def attempt(provider, outcome="ok", *, role="coder", latency_ms=1000.0, ttft_ms=None, tokens=()):
    input_tokens, output_tokens, cached_tokens = (*tokens, 0, 0, 0)[:3]
    return AttemptRow(
        ts=1.0,
        task_id="t",
        workflow_id=None,
        role=role,
        attempt=1,
        provider=provider,
        model="m",
        outcome=outcome,
        status=None if outcome == "ok" else 500,
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached_tokens,
        fallback=False,
    )


def task(role="coder", outcome="ok", *, provider="gpt", fallback=False):
    return TaskRow(
        ts=1.0,
        task_id="t",
        workflow_id=None,
        role=role,
        outcome=outcome,
        provider=provider if outcome == "ok" else None,
        model="m",
        attempts=1,
        input_tokens=0,
        output_tokens=0,
        cached_tokens=0,
        latency_ms=1.0,
        fallback=fallback,
    )


def scrape_text(port: int) -> str:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    response.raise_for_status()
    return response.text


def scrape(exporter: PrometheusExporter) -> Samples:
    """Every sample served, keyed by sample name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(scrape_text(exporter.port))
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_every_metric_is_served_with_its_type_and_help(exporters):
    """All twelve metrics are exposed, typed and documented, before anything is observed."""
    text = scrape_text(exporters().port)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    expected = {
        "callboard_calls": "counter",
        "callboard_call_duration_seconds": "histogram",
        "callboard_time_to_first_token_seconds": "histogram",
        "callboard_tokens": "counter",
        "callboard_cost_usd": "counter",
        "callboard_unpriced_calls": "counter",
        "callboard_tasks": "counter",
        "callboard_fallback_tasks": "counter",
        "callboard_budget_spent_usd": "gauge",
        "callboard_budget_reserved_usd": "gauge",
        "callboard_budget_limit_usd": "gauge",
        "callboard_budget_alert_level": "gauge",
    }
    assert {name: f.type for name, f in families.items()} == expected
    assert all(f.documentation for f in families.values())


def test_budgets_show_as_gauges(exporters):
    """Each budget account's spend, reservations, limit and alert level are gauges."""
    exporter = exporters()
    status = BudgetStatus("daily", "", "{}", "day", "stop", 50.0, 41.5, 2.0, None, None, 0.8)
    exporter.set_budgets([status])
    exporter.set_budgets([dataclasses.replace(status, spent_usd=42.0)])
    samples = scrape(exporter)
    labels = {"budget": "daily", "account": ""}
    assert value(samples, "callboard_budget_spent_usd", **labels) == 42.0
    assert value(samples, "callboard_budget_reserved_usd", **labels) == 2.0
    assert value(samples, "callboard_budget_limit_usd", **labels) == 50.0
    assert value(samples, "callboard_budget_alert_level", **labels) == 0.8


def test_calls_are_counted_per_provider_role_and_outcome(exporters):
    """Each attempt counts once under its provider, role and outcome (ok or the error kind)."""
    exporter = exporters()
    exporter.observe(task(), [attempt("gpt", "server"), attempt("gpt")], [0.0, 0.0])
    exporter.observe(task(), [attempt("gpt")], [0.0])
    exporter.observe(task("reviewer"), [attempt("claude", role="reviewer")], [0.0])
    samples = scrape(exporter)
    calls = "callboard_calls_total"
    assert value(samples, calls, provider="gpt", role="coder", outcome="ok") == 2
    assert value(samples, calls, provider="gpt", role="coder", outcome="server") == 1
    assert value(samples, calls, provider="claude", role="reviewer", outcome="ok") == 1


def test_latency_histograms_count_and_sum_seconds(exporters):
    """Attempt latency is observed in seconds; time to first token only when it was measured."""
    exporter = exporters()
    attempts = [
        attempt("gpt", latency_ms=200.0, ttft_ms=40.0),
        attempt("gpt", latency_ms=3000.0),
        attempt("gpt", latency_ms=90_000.0, ttft_ms=1500.0),
    ]
    exporter.observe(task(), attempts, [None, None, None])
    samples = scrape(exporter)
    pair = {"provider": "gpt", "role": "coder"}
    duration = "callboard_call_duration_seconds"
    assert value(samples, f"{duration}_count", **pair) == 3
    assert value(samples, f"{duration}_sum", **pair) == pytest.approx(93.2)
    assert value(samples, f"{duration}_bucket", **pair, le="0.25") == 1
    assert value(samples, f"{duration}_bucket", **pair, le="5.0") == 2
    assert value(samples, f"{duration}_bucket", **pair, le="120.0") == 3
    ttft = "callboard_time_to_first_token_seconds"
    assert value(samples, f"{ttft}_count", **pair) == 2
    assert value(samples, f"{ttft}_sum", **pair) == pytest.approx(1.54)
    assert value(samples, f"{ttft}_bucket", **pair, le="0.05") == 1


def test_tokens_are_counted_by_kind(exporters):
    """Input, output and cached tokens add up per provider and role under their own kind."""
    exporter = exporters()
    exporter.observe(task(), [attempt("gpt", tokens=(100, 20, 60))], [0.01])
    exporter.observe(task(), [attempt("gpt", tokens=(10, 5, 0))], [0.01])
    samples = scrape(exporter)
    pair = {"provider": "gpt", "role": "coder"}
    assert value(samples, "callboard_tokens_total", **pair, kind="input") == 110
    assert value(samples, "callboard_tokens_total", **pair, kind="output") == 25
    assert value(samples, "callboard_tokens_total", **pair, kind="cached") == 60


def test_unknown_costs_are_counted_never_added_as_zero(exporters):
    """Known costs add up; an attempt of unknown price counts as unpriced and adds no cost."""
    exporter = exporters()
    exporter.observe(task(), [attempt("gpt"), attempt("gpt")], [0.25, 0.5])
    exporter.observe(task(), [attempt("gpt"), attempt("local")], [None, None])
    samples = scrape(exporter)
    gpt = {"provider": "gpt", "role": "coder"}
    local = {"provider": "local", "role": "coder"}
    assert value(samples, "callboard_cost_usd_total", **gpt) == pytest.approx(0.75)
    assert value(samples, "callboard_unpriced_calls_total", **gpt) == 1
    assert value(samples, "callboard_unpriced_calls_total", **local) == 1
    assert value(samples, "callboard_cost_usd_total", **local) is None


def test_tasks_and_fallback_answers_are_counted_per_role(exporters):
    """Tasks count by role and outcome; only fallback tasks that got an answer count as such."""
    exporter = exporters()
    exporter.observe(task(), [attempt("gpt")], [None])
    exporter.observe(task(fallback=True), [attempt("gpt", "server"), attempt("claude")], [0, 0])
    exporter.observe(task(outcome="failed", fallback=True), [attempt("gpt", "timeout")], [0])
    exporter.observe(task("reviewer", "deadline"), [], [])
    samples = scrape(exporter)
    assert value(samples, "callboard_tasks_total", role="coder", outcome="ok") == 2
    assert value(samples, "callboard_tasks_total", role="coder", outcome="failed") == 1
    assert value(samples, "callboard_tasks_total", role="reviewer", outcome="deadline") == 1
    assert value(samples, "callboard_fallback_tasks_total", role="coder") == 1
    assert value(samples, "callboard_fallback_tasks_total", role="reviewer") is None


def test_mismatched_costs_are_refused(exporters):
    """Attempts and their costs must pair up one to one."""
    exporter = exporters()
    with pytest.raises(ValueError):
        exporter.observe(task(), [attempt("gpt")], [])


def test_two_exporters_in_one_process_do_not_collide(exporters):
    """Each exporter has its own registry: neither sees the other's counts, nor the global one."""
    first, second = exporters(), exporters()
    first.observe(task(), [attempt("gpt")], [0.1])
    calls = {"provider": "gpt", "role": "coder", "outcome": "ok"}
    assert first.port != second.port
    assert value(scrape(first), "callboard_calls_total", **calls) == 1
    assert value(scrape(second), "callboard_calls_total", **calls) is None
    assert REGISTRY.get_sample_value("callboard_calls_total", calls) is None


def test_serves_on_loopback_only_by_default(exporters):
    """Without a host the exposition binds to 127.0.0.1, not to every interface."""
    exporter = exporters()
    assert exporter.port != 0
    assert exporter._serving is not None
    assert exporter._serving[0].socket.getsockname() == ("127.0.0.1", exporter.port)


def test_close_frees_the_port_and_is_idempotent(exporters):
    """After close nothing answers on the port, closing twice is harmless, and it can be reused."""
    PrometheusExporter(0).close()
    exporter = exporters()
    port = exporter.port
    scrape_text(port)
    exporter.close()
    exporter.close()
    with pytest.raises(httpx.ConnectError):
        scrape_text(port)
    again = exporters(port)
    assert again.port == port
    assert "callboard_calls" in scrape_text(port)


def test_missing_prometheus_client_says_how_to_install_it(monkeypatch):
    """Without prometheus-client the exporter cannot be built, and the error says what to do."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(PrometheusUnavailableError, match=r"pip install 'callboard\[prometheus\]'"):
        PrometheusExporter(0)
    assert issubclass(PrometheusUnavailableError, CallboardError)
