from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest
from support import attempt_row, task_row

from runtime._config.prices import PriceTable
from runtime._errors import StoreError
from runtime._metrics.report import GroupAccumulator, build_report
from runtime._metrics.store import Filters
from runtime._metrics.store_sqlite import SqliteStore

pytestmark = pytest.mark.timeout(30)

T0 = 1_800_000_000.0 - (1_800_000_000.0 % 3600)
"""A time on a whole hour."""


@pytest.fixture
def store(tmp_path: Path):
    opened = SqliteStore(tmp_path / "metrics.db")
    yield opened
    opened.close()


PRICES = PriceTable()


def calls(n: int, *, provider="gpt", role="coder", start=T0, step=60.0, **values):
    """Build ``n`` one-attempt tasks, ``step`` seconds apart, priced as the router does."""
    tasks, attempts = [], []
    for i in range(n):
        tid = f"{provider}-{role}-{start}-{i}"
        row = attempt_row(task_id=tid, provider=provider, role=role, ts=start + i * step, **values)
        cost = PRICES.cost(row.model, row.input_tokens, row.output_tokens, row.cached_tokens)
        attempts.append(dataclasses.replace(row, cost_usd=cost))
        tasks.append(task_row(task_id=tid, provider=provider, role=role, ts=start + i * step))
    return tasks, attempts


def test_a_report_counts_calls_failures_tokens_and_cost(store):
    """Figures per (provider, role) add up to the rows written."""
    store.write(*calls(8, input_tokens=1000, output_tokens=100, latency_ms=200.0))
    store.write(*calls(2, outcome="server", status=500, start=T0 + 30))
    report = store.report(T0, T0 + 3600)
    (group,) = report.groups
    assert group.key == {"provider": "gpt", "role": "coder"}
    assert (group.calls, group.successes, group.failures) == (10, 8, {"server": 2})
    assert group.success_rate == 0.8
    assert (group.input_tokens, group.output_tokens) == (8000, 800)
    assert group.cost_usd == pytest.approx(8 * (1000 * 2.5 + 100 * 10) / 1e6)
    assert 180 <= group.latency_ms["p50"] <= 220


def test_unknown_prices_are_unknown_never_zero(store):
    """Calls to a model without a price are counted apart from the cost."""
    store.write(*calls(3, model="my-local-model", input_tokens=500))
    (group,) = store.report(T0, T0 + 3600).groups
    assert group.cost_usd is None
    assert group.unpriced_calls == 3
    assert group.cost_per_call is None


def test_whole_hours_from_rollups_match_the_raw_rows(store):
    """A window across many hours, cut mid-hour, gives the same figures as the raw rows."""
    store.write(*calls(500, step=37.0, input_tokens=10, latency_ms=123.0, ttft_ms=40.0))
    store.write(*calls(80, provider="claude", step=211.0, outcome="timeout", model="claude-x"))
    since, until = T0 + 1234.5, T0 + 500 * 37.0 - 777.7
    report = store.report(since, until)
    direct = _raw_report(store, since, until)
    assert [g.to_dict() for g in report.groups] == [g.to_dict() for g in direct.groups]


def _raw_report(store, since, until, by="provider,role"):
    key = by.replace(",", ", ")
    rows = store._db.execute(
        f"SELECT {key}, outcome, fallback, input_tokens, output_tokens, cached_tokens, "  # noqa: S608
        "cost_usd, latency_ms, ttft_ms FROM attempts WHERE ts >= ? AND ts < ?",
        (since, until),
    )
    width = len(by.split(","))
    accumulators: dict[tuple[str, ...], GroupAccumulator] = {}
    for row in rows:
        outcome, fallback, inp, out, cached, cost, latency, ttft = row[width:]
        acc = accumulators.setdefault(tuple(row[:width]), GroupAccumulator())
        acc.add_counts(
            outcome=outcome,
            calls=1,
            fallback_calls=fallback,
            input_tokens=inp,
            output_tokens=out,
            cached_tokens=cached,
            cost_usd=cost or 0.0,
            priced_calls=cost is not None,
        )
        if outcome == "ok":
            acc.latency.add(latency)
            if ttft is not None:
                acc.ttft.add(ttft)
    return build_report(accumulators, since=since, until=until, by=by, filters={})


def test_trend_points_match_the_raw_rows_of_their_period(store):
    """Each hourly and daily point, latency and time to first token included, is its raw rows'.

    Latencies vary so that the histograms have many buckets; claude's answers are not
    streamed, so its points have no time to first token.
    """
    tasks, attempts = calls(300, step=997.0, input_tokens=10)
    attempts = [
        dataclasses.replace(a, latency_ms=100.0 + (i * 37) % 900, ttft_ms=20.0 + (i * 13) % 200)
        for i, a in enumerate(attempts)
    ]
    store.write(tasks, attempts)
    store.write(*calls(40, provider="claude", step=3600.0, latency_ms=700.0, start=T0 + 5))
    for every, period in (("hour", 3600.0), ("day", 86400.0)):
        until = T0 + 300 * 997.0 - (T0 + 300 * 997.0) % period
        trend = store.trend(T0, until, every)
        assert len(trend.starts) >= 3
        for label, points in trend.series.items():
            for start, point in zip(trend.starts, points, strict=True):
                raw = {g.label(): g for g in _raw_report(store, start, start + period).groups}
                if point is None:
                    assert label not in raw
                    continue
                assert point.to_dict() == raw[label].to_dict()
                assert bool(point.ttft_ms) == (label == "gpt/coder")


def test_groupings_and_filters(store):
    """Reports group by provider, role or model, and filter by role, provider and workflow."""
    store.write(*calls(4, provider="gpt", role="coder"))
    store.write(*calls(6, provider="claude", role="coder", model="claude-sonnet-4-5"))
    store.write(*calls(5, provider="claude", role="reviewer", workflow_id="wf-1"))
    window = (T0, T0 + 3600)
    by_provider = {g.label(): g.calls for g in store.report(*window, by="provider").groups}
    assert by_provider == {"claude": 11, "gpt": 4}
    by_role = {g.label(): g.calls for g in store.report(*window, by="role").groups}
    assert by_role == {"coder": 10, "reviewer": 5}
    by_model = {g.label(): g.calls for g in store.report(*window, by="model").groups}
    assert by_model == {"claude-sonnet-4-5": 6, "gpt-4o": 9}
    coder = store.report(*window, filters=Filters(role="coder", provider="claude"))
    assert [g.label() for g in coder.groups] == ["claude/coder"]
    workflow = store.report(*window, filters=Filters(workflow="wf-1"))
    assert [(g.label(), g.calls) for g in workflow.groups] == [("claude/reviewer", 5)]


def test_fallback_share_counts_calls_that_reached_a_provider_by_fallback(store):
    """The share of a pair's calls made only because the first provider failed."""
    store.write(*calls(3, provider="claude", fallback=True))
    store.write(*calls(1, provider="claude", start=T0 + 1))
    (group,) = store.report(T0, T0 + 3600).groups
    assert group.fallback_share == 0.75


def test_a_provider_that_does_clearly_worse_is_flagged(store):
    """Lower success, slower p95 or dearer calls than another provider of the role are flagged."""
    store.write(
        *calls(40, provider="claude", model="claude-haiku-4-5", latency_ms=500.0, output_tokens=100)
    )
    store.write(*calls(30, provider="gpt", start=T0 + 1, latency_ms=2000.0, output_tokens=100))
    store.write(*calls(10, provider="gpt", start=T0 + 2, outcome="server"))
    report = store.report(T0, T0 + 3600)
    (flag,) = report.flags
    assert (flag.provider, flag.role) == ("gpt", "coder")
    text = str(flag)
    assert "success 75.0% vs claude 100.0%" in text
    assert "p95 latency" in text
    assert "cost per call $0.0008 vs claude $0.0005" in text


def test_a_trend_has_one_point_per_period(store):
    """Trends group the same figures per hour (or day); silent periods are empty."""
    store.write(*calls(3, start=T0 + 10, step=1))
    store.write(*calls(2, start=T0 + 2 * 3600 + 5, step=1))
    trend = store.trend(T0, T0 + 3 * 3600, "hour")
    assert trend.starts == (T0, T0 + 3600, T0 + 7200)
    points = trend.series["gpt/coder"]
    assert [p.calls if p else 0 for p in points] == [3, 0, 2]
    daily = store.trend(T0, T0 + 3 * 3600, "day")
    assert sum(p.calls for p in daily.series["gpt/coder"] if p) == 5


def test_prune_drops_old_rows_and_rollups(store):
    """Rows and rollups older than the cutoff go; newer ones stay."""
    store.write(*calls(3, start=T0))
    store.write(*calls(2, start=T0 + 7200))
    store.prune(T0 + 3600)
    assert store.counts() == (2, 2)
    assert store.report(T0, T0 + 3 * 3600).groups[0].calls == 2


def test_a_failed_batch_leaves_nothing_behind(store):
    """A batch is one transaction: a failing row keeps the whole batch out, to retry whole."""
    tasks, attempts = calls(3)
    store.write(tasks[:1], attempts[:1])
    broken = [*tasks[:2], dataclasses.replace(tasks[2], role=None)]  # NOT NULL
    with pytest.raises(StoreError, match="NOT NULL"):
        store.write(broken, attempts)
    assert store.counts() == (1, 1)
    assert store.report(T0, T0 + 3600).groups[0].calls == 1


def test_a_corrupt_file_gives_a_clear_error(tmp_path: Path):
    """A file that is not a database names itself and says how to rebuild."""
    path = tmp_path / "metrics.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"not a usable callboard database.*rebuild --from-audit"):
        SqliteStore(path)


def test_reading_a_missing_store_says_so(tmp_path: Path):
    """A read-only open of a store that does not exist explains why it may be missing."""
    with pytest.raises(StoreError, match="nothing has been recorded yet"):
        SqliteStore(tmp_path / "none.db", readonly=True)


def test_a_locked_store_fails_the_write_and_the_retry_succeeds(store):
    """While another process holds the write lock a batch fails whole; after, it goes in."""
    other = sqlite3.connect(store.path, timeout=0.1)
    other.execute("BEGIN EXCLUSIVE")
    tasks, attempts = calls(2)
    with pytest.raises(StoreError, match="locked by another process"):
        store.write(tasks, attempts)
    other.rollback()
    other.close()
    store.write(tasks, attempts)
    assert store.counts() == (2, 2)


def test_whole_days_from_daily_rollups_match_the_raw_rows(store):
    """A window over several days, cut mid-hour, reads days, hours and raw edges alike."""
    store.write(*calls(600, step=600.0, input_tokens=7, latency_ms=900.0, ttft_ms=300.0))
    store.write(*calls(90, provider="claude", step=3600.0, outcome="server", start=T0 + 5))
    since, until = T0 + 3 * 3600 + 1234.5, T0 + 600 * 600.0 - 2 * 3600 - 777.7
    for by in ("provider,role", "model"):
        report = store.report(since, until, by)
        assert [g.to_dict() for g in report.groups] == [
            g.to_dict() for g in _raw_report(store, since, until, by).groups
        ]
    daily = store.trend(since, until, "day")
    assert sum(p.calls for p in daily.series["gpt/coder"] if p) == sum(
        g.calls for g in store.report(since, until).groups if g.key["provider"] == "gpt"
    )


def test_batches_of_every_size_share_a_few_lookup_statements(store):
    """Batches of 1 to 300 tasks prepare 7 lookups, not one each (each stays in memory)."""
    lookups: set[str] = set()
    store._db.set_trace_callback(lambda sql: lookups.add(sql) if "IN (" in sql else None)
    for size in range(1, 301):
        store.write(*calls(size, start=T0 + size * 1e5))
    store._db.set_trace_callback(None)
    assert store.counts() == (300 * 301 // 2, 300 * 301 // 2)
    assert len({sql.count(",") for sql in lookups}) <= 7


def test_a_padded_lookup_still_finds_every_row_a_batch_repeats(store):
    """A batch that repeats stored rows among new ones stores and counts only the new ones."""
    tasks, attempts = calls(700)
    store.write(tasks[:37], attempts[:37])
    store.write(tasks[:600], attempts[:600])
    store.write(tasks, attempts)
    assert store.counts() == (700, 700)
    assert store.report(T0 - 1, T0 + 700 * 60).groups[0].calls == 700


def test_reports_by_tenant_read_the_raw_rows(store):
    """Grouped by tenant, over whole hours too, calls count under their tenant or ``-``."""
    store.write(*calls(3, provider="gpt", tenant="acme"))
    store.write(*calls(2, provider="gpt", tenant="zeta", start=T0 + 1))
    store.write(*calls(4, provider="claude", start=T0 + 2))
    report = store.report(T0 - 7200, T0 + 7200, by="tenant")
    assert {g.label(): g.calls for g in report.groups} == {"-": 4, "acme": 3, "zeta": 2}
    trend = store.trend(T0 - 7200, T0 + 7200, "hour", by="tenant")
    assert set(trend.series) == {"-", "acme", "zeta"}


def test_spend_since_groups_the_known_costs(store):
    """Budgets read back spend per role, provider, tenant and run, since a time."""
    store.write(*calls(3, provider="gpt", tenant="acme", input_tokens=1000))
    store.write(*calls(2, provider="gpt", start=T0 - 7200, input_tokens=1000))
    ((role, provider, tenant, run, cost),) = store.spend_since(T0)
    assert (role, provider, tenant, run) == ("coder", "gpt", "acme", None)
    assert cost == pytest.approx(3 * 1000 * 2.5 / 1_000_000)


def test_a_store_from_before_tenants_gains_the_column(tmp_path: Path):
    """A store written before tenants were recorded opens, and is written, as before."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE attempts (task_id TEXT NOT NULL, attempt INTEGER NOT NULL, ts REAL "
        "NOT NULL, workflow_id TEXT, role TEXT NOT NULL, provider TEXT NOT NULL, model TEXT "
        "NOT NULL, outcome TEXT NOT NULL, status INTEGER, latency_ms REAL NOT NULL, ttft_ms "
        "REAL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cached_tokens "
        "INTEGER NOT NULL, cost_usd REAL, fallback INTEGER NOT NULL, PRIMARY KEY (task_id, "
        "attempt));"
    )
    old.close()
    reopened = SqliteStore(path)
    try:
        reopened.write(*calls(2, tenant="acme"))
        assert {g.label() for g in reopened.report(T0, T0 + 3600, by="tenant").groups} == {"acme"}
    finally:
        reopened.close()
