from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import attempt_row, config_toml, primary_and_backup, task_row

from runtime import Usage
from runtime._metrics.audit_rebuild import rebuild
from runtime._metrics.store_sqlite import SqliteStore
from runtime.testing import Answer, Fail

pytestmark = pytest.mark.timeout(30)


def test_the_report_matches_the_calls_made(fakes, deployment):
    """Counts, failures by kind, tokens and cost in the report are those of the calls."""
    primary, backup = fakes("openai"), fakes("anthropic")
    primary_and_backup(deployment, primary, backup)
    primary.script.extend([Fail(500), Answer("a", usage=Usage(1000, 200)), Fail(400)])
    primary.script.extend([Answer("b", usage=Usage(3000, 100, 1000))])
    backup.script.extend([Answer("c", usage=Usage(50, 5)), Answer("d", usage=Usage(70, 7))])
    board = deployment.board()
    replies = [board.ask("coder", f"task {i}") for i in range(4)]
    report = board.metrics(since="1h")
    groups = {g.label(): g for g in report.groups}
    gpt, claude = groups["primary/coder"], groups["backup/coder"]
    assert (gpt.calls, gpt.successes, gpt.failures) == (4, 2, {"bad_request": 1, "server": 1})
    assert (gpt.input_tokens, gpt.output_tokens, gpt.cached_tokens) == (4000, 300, 1000)
    gpt_cost = (1000 * 2.5 + 200 * 10 + 2000 * 2.5 + 1000 * 1.25 + 100 * 10) / 1e6
    assert gpt.cost_usd == pytest.approx(gpt_cost)
    assert (claude.calls, claude.successes, claude.fallback_calls) == (2, 2, 2)
    assert (claude.input_tokens, claude.output_tokens) == (120, 12)
    assert claude.cost_usd == pytest.approx((120 * 3 + 12 * 15) / 1e6)
    assert sum(r.usage.output_tokens for r in replies) == 312
    assert gpt.ttft_ms["p50"] > 0


def test_cache_reads_and_writes_are_priced_as_the_provider_bills_them(fakes, deployment):
    """Anthropic's cache writes (1.25x input) and reads (0.1x) reach the reply and the report."""
    claude, backup = fakes("anthropic"), fakes("openai")
    primary_and_backup(deployment, claude, backup)
    claude.script.append(Answer("cached", usage=Usage(2000, 100, 500, 1000)))
    board = deployment.board()
    reply = board.ask("coder", "long shared prefix")
    assert (reply.usage.input_tokens, reply.usage.cached_tokens) == (2000, 500)
    assert reply.usage.cache_write_tokens == 1000
    expected = (500 * 3.0 + 500 * 0.30 + 1000 * 3.75 + 100 * 15.0) / 1e6
    assert reply.cost_usd == pytest.approx(expected)
    (group,) = board.metrics(since="1h").groups
    assert group.cost_usd == pytest.approx(expected)


def test_a_provider_that_fails_more_is_flagged(fakes, deployment):
    """A provider with a clearly lower success rate in a role is flagged with the figures."""
    good, bad = fakes("anthropic"), fakes("openai")
    deployment.write(
        config_toml(deployment, {"good": good, "bad": bad}, {"tester": ["bad", "good"]})
    )
    pattern = [Fail(503), Answer(), Answer(), Fail(503), Answer()]
    bad.script.extend(pattern * 12)
    board = deployment.board()
    for i in range(60):
        board.ask("tester", f"t{i}")
    report = board.metrics(since="1h", role="tester")
    flags = {(f.provider, f.role): str(f) for f in report.flags}
    assert ("bad", "tester") in flags
    assert "success 60.0% vs good 100.0%" in flags[("bad", "tester")]
    assert "success" not in flags.get(("good", "tester"), "")


def test_rebuilding_from_the_audit_log_gives_the_same_report(fakes, deployment, tmp_path: Path):
    """A store rebuilt from the audit log reports exactly what the live store does."""
    primary, backup = fakes("openai"), fakes("gemini")
    primary_and_backup(deployment, primary, backup)
    primary.script.extend([Fail(500), Answer("x"), Fail(503), Fail(503), Answer("y")])
    board = deployment.board()
    for i in range(6):
        board.ask("coder", f"task {i}", workflow_id="wf-9")
    board.close()
    live = SqliteStore(deployment.metrics_path, readonly=True)
    rebuilt = SqliteStore(tmp_path / "rebuilt.db")
    count = rebuild(rebuilt, [deployment.audit_path])
    assert (count.tasks, count.attempts, count.skipped_lines) == (6, 9, 0)
    window = (0.0, 4e9)
    for by in ("provider,role", "model", "role"):
        assert rebuilt.report(*window, by).to_dict() == live.report(*window, by).to_dict()
    assert rebuilt.counts() == live.counts() == (6, 9)
    rebuilt.close()
    live.close()


def test_a_corrupt_store_is_reported_and_the_runtime_keeps_serving(fakes, deployment):
    """An unreadable metrics file never fails a task; the audit log says what is wrong."""
    only = fakes("openai")
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    deployment.metrics_path.write_bytes(b"garbage" * 1000)
    board = deployment.board()
    assert board.ask("coder", "still answered").provider == "only"
    assert board.stats().pair("only", "coder")["attempts"] == 1
    board.close()
    (event,) = deployment.events("metrics_store_unavailable")
    assert "not a usable callboard database" in event["error"]
    assert "rebuild --from-audit" in event["error"]


def test_a_locked_store_holds_rows_until_it_can_write_them(fakes, deployment):
    """While another process locks the store, rows wait in memory and none is lost."""
    only = fakes("openai")
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    board = deployment.board()
    board.ask("coder", "first")
    board.metrics(since="1h")
    locker = sqlite3.connect(deployment.metrics_path, timeout=5)
    locker.execute("BEGIN EXCLUSIVE")
    for i in range(3):
        assert board.ask("coder", f"while locked {i}").provider == "only"
    board.stats()  # the batch reaches the metrics actor, whose write fails
    locker.rollback()
    locker.close()
    (group,) = board.metrics(since="1h").groups
    assert group.calls == 4
    board.close()
    names = [e["event"] for e in deployment.audit() if e["event"].startswith("metrics_")]
    assert names == ["metrics_write_failed", "metrics_store_recovered"]


def test_prometheus_exposes_the_live_aggregates(fakes, deployment):
    """With a prometheus_port the board's calls show up in the exposition on loopback."""
    only = fakes("openai")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    deployment.write(
        config_toml(deployment, {"only": only}, {"coder": ["only"]}).replace(
            "[metrics]\n", f"[metrics]\nprometheus_port = {port}\n"
        )
    )
    only.script.append(Fail(500))
    board = deployment.board()
    for i in range(3):
        board.ask("coder", f"t{i}")
    board.stats()
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    ok = ("callboard_calls_total", (("outcome", "ok"), ("provider", "only"), ("role", "coder")))
    failed = (
        "callboard_calls_total",
        (("outcome", "server"), ("provider", "only"), ("role", "coder")),
    )
    assert samples[ok] == 3
    assert samples[failed] == 1
    assert samples[("callboard_tasks_total", (("outcome", "ok"), ("role", "coder")))] == 3


def test_old_rows_are_pruned_past_retain_days(fakes, deployment):
    """Rows older than [metrics] retain_days are removed when the metrics actor starts."""
    only = fakes("openai")
    text = config_toml(deployment, {"only": only}, {"coder": ["only"]})
    deployment.write(text.replace("[metrics]\n", "[metrics]\nretain_days = 2\n"))
    old = SqliteStore(deployment.metrics_path)
    now = time.time()
    old.write(
        [task_row(task_id="old", ts=now - 5 * 86400), task_row(task_id="recent", ts=now - 86400)],
        [
            attempt_row(task_id="old", provider="only", ts=now - 5 * 86400),
            attempt_row(task_id="recent", provider="only", ts=now - 86400),
        ],
    )
    old.close()
    board = deployment.board()
    board.ask("coder", "new")
    (group,) = board.metrics(since="30d").groups
    assert group.calls == 2
    board.close()
    with sqlite3.connect(deployment.metrics_path) as db:
        kept = {row[0] for row in db.execute("SELECT task_id FROM tasks")}
    assert "old" not in kept
    assert "recent" in kept


def test_reloaded_prices_apply_to_later_calls(fakes, deployment):
    """A price changed in the config and reloaded costs the calls made afterwards."""
    only = fakes("openai")
    text = config_toml(deployment, {"only": only}, {"coder": ["only"]})
    deployment.write(text)
    only.script.extend(
        [Answer("a", usage=Usage(1_000_000, 0)), Answer("b", usage=Usage(1_000_000, 0))]
    )
    board = deployment.board()
    board.ask("coder", "at list price")
    deployment.write(text + '\n[prices."gpt-4o"]\ninput = 1.0\noutput = 1.0\n')
    board.reload()
    board.ask("coder", "at the new price")
    (group,) = board.metrics(since="1h").groups
    assert group.cost_usd == pytest.approx(2.50 + 1.0)
