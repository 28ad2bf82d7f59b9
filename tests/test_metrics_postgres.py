"""The PostgreSQL metrics store: the same rows, rollups and reports as the SQLite one.

Runs against a real server (tests/_postgres_server.py), each test in its own schema.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import random
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support import attempt_row, callboard, config_toml, primary_and_backup, task_row

from runtime import ConfigError, parse_config
from runtime._config.prices import PriceTable
from runtime._errors import StoreError
from runtime._metrics.audit_rebuild import rebuild
from runtime._metrics.store import Filters, MetricsStore
from runtime._metrics.store_open import open_store
from runtime._metrics.store_postgres import PostgresStore, safe_url
from runtime._metrics.store_sqlite import SqliteStore
from runtime._rows import AttemptRow, TaskRow
from runtime.testing import Answer, Fail

T0 = 1_800_000_000.0 - 1_800_000_000.0 % 86400 + 1234.5  # mid-hour, early in a day
SPAN_S = 3 * 86400
PROCESSES = 4
BATCH = 97
PRICES = PriceTable()  # its built-in prices: gpt-4o priced, the others unknown


def fleet_rows(seed: int = 7, tasks: int = 1200) -> list[tuple[TaskRow, list[AttemptRow]]]:
    """Tasks over three days: several providers, roles, models, outcomes and fallbacks."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    made = []
    for i in range(tasks):
        ts = T0 + rng.uniform(0, SPAN_S)
        role = rng.choice(("coder", "reviewer", "planner"))
        workflow = rng.choice((None, "wf-1", "wf-2"))
        attempts = []
        for n in range(1, rng.choice((1, 1, 2, 3)) + 1):
            provider, model = rng.choice(
                (("gpt", "gpt-4o"), ("claude", "sonnet"), ("gem", "flash"))
            )
            outcome = rng.choice(("ok", "ok", "ok", "server", "rate_limited", "timeout"))
            row = attempt_row(
                task_id=f"task-{i}", attempt=n, ts=ts + n, workflow_id=workflow, role=role,
                provider=provider, model=model, outcome=outcome, fallback=n > 1,
                latency_ms=rng.lognormvariate(6, 0.8),
                ttft_ms=rng.lognormvariate(5, 0.5) if rng.random() < 0.7 else None,
                input_tokens=rng.randrange(5000), output_tokens=rng.randrange(800),
                cached_tokens=rng.randrange(100),
            )  # fmt: skip
            cost = PRICES.cost(model, row.input_tokens, row.output_tokens, row.cached_tokens)
            attempts.append(dataclasses.replace(row, cost_usd=cost))
        task = task_row(task_id=f"task-{i}", ts=ts, workflow_id=workflow, role=role)
        made.append((task, attempts))
    return made


def write_share(url: str, share: int) -> None:
    """One process of the fleet: write every PROCESSES-th task, in batches (one twice)."""
    store = open_store(url)
    mine = fleet_rows()[share::PROCESSES]
    for start in range(0, len(mine), BATCH):
        _write(store, mine[start : start + BATCH])
    _write(store, mine[:BATCH])  # a batch sent again after a restart counts once
    store.close()


def _write(store: MetricsStore, rows: list[tuple[TaskRow, list[AttemptRow]]]) -> None:
    store.write([t for t, _ in rows], [a for _, attempts in rows for a in attempts])


def alike(one: Any, other: Any) -> bool:
    """Compare reports as dicts; costs may differ in their last (6th) decimal.

    Floating-point sums depend on the order of their terms, and each process adds its own
    batches to the rollups, so a cost summed in PostgreSQL can round one millionth away
    from the same cost summed in SQLite.
    """
    if isinstance(one, dict) and isinstance(other, dict):
        return one.keys() == other.keys() and all(alike(one[k], other[k]) for k in one)
    if isinstance(one, list) and isinstance(other, list):
        return len(one) == len(other) and all(map(alike, one, other))
    if isinstance(one, float) and isinstance(other, float):
        return math.isclose(one, other, rel_tol=1e-9, abs_tol=2e-6)
    return bool(one == other)


def same_reports(one: MetricsStore, other: MetricsStore) -> None:
    """Assert that reports and trends of both stores agree over windows cut mid-hour."""
    windows = [(T0, T0 + SPAN_S), (T0 + 4000.5, T0 + 2 * 86400 - 77), (T0 + 10, T0 + 1800)]
    for since, until in windows:
        for by in ("provider,role", "provider", "role", "model"):
            assert alike(
                one.report(since, until, by).to_dict(), other.report(since, until, by).to_dict()
            )
        for filters in (Filters(role="coder"), Filters(provider="gem"), Filters(workflow="wf-1")):
            mine, theirs = (
                one.report(since, until, filters=filters),
                other.report(since, until, filters=filters),
            )
            assert alike(mine.to_dict(), theirs.to_dict())
        for every in ("hour", "day"):
            assert alike(
                one.trend(since, until, every).to_dict(), other.trend(since, until, every).to_dict()
            )
    assert one.counts() == other.counts()


@pytest.mark.timeout(180)
def test_reports_over_rows_from_several_processes_equal_sqlite(postgres_schema_url, tmp_path):
    """Four processes write their share into PostgreSQL at once; SQLite gets all the rows."""
    spawn = multiprocessing.get_context("spawn")
    workers = [
        spawn.Process(target=write_share, args=(postgres_schema_url, i)) for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    sqlite = SqliteStore(tmp_path / "metrics.db")
    rows = fleet_rows()
    for start in range(0, len(rows), BATCH):
        _write(sqlite, rows[start : start + BATCH])
    for worker in workers:
        worker.join(timeout=150)
        assert worker.exitcode == 0
    postgres = open_store(postgres_schema_url, readonly=True)
    assert isinstance(postgres, PostgresStore)
    report = postgres.report(T0, T0 + SPAN_S)
    assert sum(g.calls for g in report.groups) == sum(len(a) for _, a in rows)
    assert report.flags == sqlite.report(T0, T0 + SPAN_S).flags
    same_reports(postgres, sqlite)
    postgres.close()
    sqlite.close()


@pytest.mark.timeout(60)
def test_prune_and_clear_act_alike(postgres_schema_url, tmp_path):
    """Pruning deletes the same rows and rollups from both; clearing empties a store."""
    postgres, sqlite = open_store(postgres_schema_url), SqliteStore(tmp_path / "m.db")
    rows = fleet_rows(seed=3, tasks=300)
    for store in (postgres, sqlite):
        _write(store, rows)
    cutoff = T0 + 86400 + 5000.25
    assert postgres.prune(cutoff) == sqlite.prune(cutoff) > 0
    same_reports(postgres, sqlite)
    postgres.clear()
    assert postgres.counts() == (0, 0)
    assert postgres.report(T0, T0 + SPAN_S).groups == ()
    postgres.close()
    sqlite.close()


@pytest.mark.timeout(60)
def test_a_failed_batch_leaves_nothing_behind(postgres_schema_url):
    """A batch is one transaction in PostgreSQL too: nothing of a failing batch is kept."""
    store = open_store(postgres_schema_url)
    (task, attempts), *rest = fleet_rows(tasks=3)
    store.write([task], attempts)
    broken = [t for t, _ in rest]
    broken[-1] = dataclasses.replace(broken[-1], role=None)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="role"):
        store.write(broken, [a for _, a in rest for a in a])
    assert store.counts() == (1, len(attempts))
    store.close()


@pytest.mark.timeout(60)
def test_unreachable_and_missing_databases_say_what_to_do(postgres_schema_url, postgres_url):
    """A refused connection, an empty schema read before any write, each name the URL."""
    url = "postgresql://callboard:hunter2@127.0.0.1:9/nowhere"
    with pytest.raises(StoreError) as refused:
        PostgresStore(url)
    assert "postgresql://callboard:***@127.0.0.1:9/nowhere" in str(refused.value)
    assert "hunter2" not in str(refused.value)
    assert "check that the server runs" in str(refused.value)
    with pytest.raises(StoreError, match="nothing has been recorded there yet"):
        PostgresStore(postgres_schema_url, readonly=True)
    assert safe_url(postgres_url) == postgres_url  # no password: shown as it is


def _with_url(text: str, url: str) -> str:
    return text.replace("[metrics]\n", f'[metrics]\nurl = "{url}"\n')


@pytest.mark.timeout(120)
def test_the_board_writes_postgres_and_the_cli_reads_and_rebuilds_it(
    fakes, deployment, postgres_schema_url, postgres_url, tmp_path: Path
):
    """The metrics actor writes PostgreSQL; `callboard metrics` reads it; rebuild refills it."""
    primary, backup = fakes("openai"), fakes("gemini")
    primary_and_backup(deployment, primary, backup)
    deployment.write(_with_url(deployment.path.read_text(), postgres_schema_url))
    primary.script.extend([Fail(500), Answer("x"), Fail(503), Fail(503), Answer("y")])
    board = deployment.board()
    for i in range(6):
        board.ask("coder", f"task {i}", workflow_id="wf-9")
    live = board.metrics(since="1h")
    board.close()
    assert not deployment.metrics_path.exists()
    shown = callboard("metrics", "--config", str(deployment.path), "--since", "1h", "--json")
    assert shown.returncode == 0, shown.stderr
    assert '"calls": ' in shown.stdout
    assert sum(g.calls for g in live.groups) == 9

    sqlite = SqliteStore(tmp_path / "rebuilt.db")
    rebuild(sqlite, [deployment.audit_path])
    done = callboard(
        "metrics", "rebuild", "--from-audit", str(deployment.audit_path),
        "--config", str(deployment.path), "--replace",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"rebuilt {postgres_schema_url}: 6 tasks, 9 attempts" in done.stdout
    postgres = open_store(postgres_schema_url, readonly=True)
    window = (0.0, 4e9)
    for by in ("provider,role", "model", "role"):
        assert alike(postgres.report(*window, by).to_dict(), sqlite.report(*window, by).to_dict())
    assert postgres.counts() == sqlite.counts() == (6, 9)
    again = callboard(
        "metrics", "rebuild", "--from-audit", str(deployment.audit_path),
        "--config", str(deployment.path),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert postgres.counts() == (6, 9)  # rows it holds are skipped, never counted twice
    assert alike(postgres.report(*window).to_dict(), sqlite.report(*window).to_dict())
    postgres.close()
    sqlite.close()


@pytest.mark.timeout(90)
def test_check_reports_the_metrics_database(fakes, deployment, postgres_schema_url):
    """`callboard check` names the database, its version and a round trip; or warns."""
    gpt = fakes("openai")
    text = config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]})
    path = deployment.write(_with_url(text, postgres_schema_url))
    done = callboard("check", "--config", str(path))
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if "metrics store:" in x)
    assert f"metrics store: {postgres_schema_url} (PostgreSQL " in line
    assert "reachable, round trip " in line
    assert line.endswith(" ms)")
    path = deployment.write(_with_url(text, "postgresql://u:secret@127.0.0.1:9/db"))
    offline = callboard("check", "--config", str(path), "--offline")
    assert offline.returncode == 0, offline.stderr
    assert "metrics store: postgresql://u:***@127.0.0.1:9/db (not reached: --offline)" in (
        offline.stdout
    )
    done = callboard("check", "--config", str(path), "--strict")
    assert done.returncode == 2
    assert "metrics store: postgresql://u:***@127.0.0.1:9/db (unreachable)" in done.stdout
    assert "tasks still run" in done.stderr
    assert "credentials: checked" in done.stdout
    assert "secret" not in done.stdout + done.stderr


@pytest.mark.timeout(60)
def test_a_lost_connection_is_noticed_and_a_new_store_writes(postgres_schema_url):
    """A server that drops the connection fails the write; `moved` says so; reopening works."""
    store = open_store(postgres_schema_url)
    (task, attempts), (other, more) = fleet_rows(tasks=2)
    store.write([task], attempts)
    assert store.moved() is None
    with psycopg.connect(postgres_schema_url, autocommit=True) as admin:
        pid = store._db.info.backend_pid
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(StoreError, match="cannot be used"):
        store.write([other], more)
    assert store.moved() == "the connection to the database was lost"
    assert store.let_go()
    fresh = open_store(postgres_schema_url)
    fresh.write([other], more)
    assert fresh.counts() == (2, len(attempts) + len(more))
    fresh.close()


PROVIDER = '[providers.local]\ntype = "ollama"\nmodel = "llama3"\n\n'


@pytest.mark.timeout(30)
def test_a_metrics_url_that_is_not_postgresql_is_a_config_problem():
    """`[metrics] url` names its place and says to use path for a SQLite file."""
    with pytest.raises(ConfigError) as caught:
        parse_config(f'{PROVIDER}[metrics]\nurl = "sqlite:///tmp/m.db"\n', environ={})
    assert "metrics.url: expected a PostgreSQL URL" in str(caught.value)
    assert "for a SQLite file set path instead" in str(caught.value)
    secret = "postgresql://fleet:s3cret@db.internal:5432/metrics"
    config = parse_config(f'{PROVIDER}[metrics]\nurl = "{secret}"\n', environ={})
    assert config.metrics_store() == secret
    assert "s3cret" in config.secrets()
