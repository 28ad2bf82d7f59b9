from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import pytest
from support import KEYS, callboard, config_toml

from runtime import TaskFailedError
from runtime.testing import Answer, Fail

pytestmark = pytest.mark.timeout(60)


def test_check_passes_a_good_config_and_its_credentials(fakes, deployment):
    """`callboard check` exits 0 and summarizes providers and roles."""
    gpt, claude = fakes("openai"), fakes("anthropic")
    path = deployment.write(
        config_toml(deployment, {"gpt": gpt, "claude": claude}, {"coder": ["claude", "gpt"]})
    )
    done = callboard("check", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert "role coder: claude -> gpt" in done.stdout
    assert "credentials: checked" in done.stdout


def test_check_lists_every_problem_and_exits_2(fakes, deployment):
    """A bad config and a rejected key each show up, and the exit status is 2."""
    gpt = fakes("openai", keys={"other"})
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gtp"]}))
    done = callboard("check", "--config", str(path))
    assert done.returncode == 2
    assert 'roles.coder.providers[0]: unknown provider "gtp"; did you mean "gpt"?' in done.stderr
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    done = callboard("check", "--config", str(path))
    assert done.returncode == 2
    assert "gpt: the key was rejected (HTTP 401)" in done.stderr
    assert "OPENAI_KEY" in done.stderr
    assert KEYS["openai"] not in done.stderr


def test_check_refuses_a_file_that_is_not_utf8_without_a_traceback(fakes, deployment):
    """Bytes that are not UTF-8 are a located config problem: exit 2, no traceback."""
    gpt = fakes("openai")
    text = config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}) + "# r\xe9sum\xe9\n"
    deployment.path.write_bytes(text.encode("latin-1"))
    done = callboard("check", "--config", str(deployment.path))
    assert done.returncode == 2
    assert f"line {text.count(chr(10))}: " in done.stderr
    assert "not UTF-8 text: byte 0xe9" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_names_a_missing_environment_variable(fakes, deployment):
    """An unset ${VAR} is named in the error, with its place."""
    gpt = fakes("openai")
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    environ = {k: v for k, v in os.environ.items() if k != "OPENAI_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "runtime._cli", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "providers.gpt.api_key: environment variable OPENAI_KEY is not set" in done.stderr


def test_ask_json_prints_one_object_with_the_whole_story(fakes, deployment):
    """`callboard ask --json` gives text, role, provider, model, usage, attempts and task id."""
    gpt, claude = fakes("openai"), fakes("anthropic")
    path = deployment.write(
        config_toml(deployment, {"gpt": gpt, "claude": claude}, {"coder": ["claude", "gpt"]})
    )
    claude.script.append(Fail(529))
    gpt.script.append(Answer("def parse(): ..."))
    done = callboard("ask", "coder", "Write a parser", "--config", str(path), "--json")
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["text"] == "def parse(): ..."
    assert (reply["role"], reply["provider"], reply["model"]) == ("coder", "gpt", "gpt-4o")
    assert set(reply["usage"]) == {"input_tokens", "output_tokens", "cached_tokens"}
    assert [(a["provider"], a["outcome"], a["error_kind"]) for a in reply["attempts"]] == [
        ("claude", "overloaded", "overloaded"),
        ("gpt", "ok", None),
    ]
    assert len(reply["task_id"]) == 32
    assert reply["latency_ms"] > 0


def test_ask_prints_the_text_and_the_provider_on_stderr(fakes, deployment):
    """Without --json the answer goes to stdout and who answered to stderr."""
    gemini = fakes("gemini")
    path = deployment.write(config_toml(deployment, {"g": gemini}, {"planner": ["g"]}))
    gemini.script.append(Answer("1. think\n2. do"))
    done = callboard("ask", "planner", "Plan", "--config", str(path), "--system", "Be brief.")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1. think\n2. do\n"
    assert "[g (gemini-2.5-flash), 1 attempt," in done.stderr
    sent = gemini.wait_for_requests(2)[-1].json
    assert sent["systemInstruction"]["parts"][0]["text"] == "Be brief."


def test_ask_exits_1_when_the_task_fails(fakes, deployment):
    """A task that no provider answers prints the error and exits 1."""
    gpt = fakes("openai")
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    gpt.script.extend([Fail(400), Fail(400)])
    done = callboard("ask", "coder", "x", "--config", str(path))
    assert done.returncode == 1
    assert "failed: every provider failed" in done.stderr
    assert "bad_request HTTP 400" in done.stderr


def test_metrics_reports_what_the_board_recorded(fakes, deployment):
    """`callboard metrics` prints the table, and --json / --csv the same figures."""
    gpt = fakes("openai")
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    gpt.script.extend([Fail(500), Fail(500)])
    board = deployment.board()
    for i in range(3):
        with contextlib.suppress(TaskFailedError):
            board.ask("coder", f"t{i}")
    board.close()
    table = callboard("metrics", "--config", str(path), "--since", "1h")
    assert table.returncode == 0, table.stderr
    assert "gpt/coder" in table.stdout
    assert "server=2" in table.stdout
    data = json.loads(callboard("metrics", "--config", str(path), "--json").stdout)
    (group,) = data["groups"]
    assert (group["calls"], group["successes"], group["failures"]) == (4, 2, {"server": 2})
    csv_out = callboard("metrics", "--config", str(path), "--csv", "--by", "provider").stdout
    header, row = csv_out.splitlines()
    assert header.startswith("provider,calls,successes,success_rate,failures")
    assert row.startswith("gpt,4,2,0.5,server=2")


def test_metrics_rebuild_restores_the_store_from_the_audit_log(fakes, deployment):
    """`callboard metrics rebuild --from-audit` gives back the store that was lost."""
    gpt = fakes("openai")
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    board = deployment.board()
    for i in range(4):
        board.ask("coder", f"t{i}", workflow_id="wf-1")
    board.close()
    before = callboard("metrics", "--config", str(path), "--json").stdout
    refused = callboard(
        "metrics", "rebuild", "--config", str(path), "--from-audit", str(deployment.audit_path)
    )
    assert refused.returncode == 1
    assert "pass --replace" in refused.stderr
    done = callboard(
        "metrics",
        "rebuild",
        "--replace",
        "--config",
        str(path),
        "--from-audit",
        str(deployment.audit_path),
    )
    assert done.returncode == 0, done.stderr
    assert "4 tasks, 4 attempts" in done.stdout
    after = callboard("metrics", "--config", str(path), "--json").stdout
    assert json.loads(after)["groups"] == json.loads(before)["groups"]
    workflow = callboard("metrics", "--config", str(path), "--workflow", "wf-1", "--json").stdout
    assert json.loads(workflow)["groups"][0]["calls"] == 4


def test_metrics_explains_a_missing_or_broken_store(fakes, deployment):
    """No store yet, or a corrupt one, gives one clear line and exit 1."""
    gpt = fakes("openai")
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    missing = callboard("metrics", "--config", str(path))
    assert missing.returncode == 1
    assert "nothing has been recorded yet" in missing.stderr
    deployment.metrics_path.write_bytes(b"junk" * 500)
    broken = callboard("metrics", "--config", str(path))
    assert broken.returncode == 1
    assert "rebuild --from-audit" in broken.stderr
    bad_window = callboard("metrics", "--config", str(path), "--since", "yesterday")
    assert bad_window.returncode == 2
    assert "like 30m, 24h, 7d or 2w" in bad_window.stderr


def test_metrics_trend_prints_a_chart_and_draws_a_png(fakes, deployment, tmp_path):
    """`callboard metrics trend --chart` prints sparklines and writes a PNG."""
    gpt = fakes("openai")
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    board = deployment.board()
    for i in range(5):
        board.ask("coder", f"t{i}")
    board.close()
    png = tmp_path / "charts" / "trend.png"
    done = callboard(
        "metrics", "trend", "--config", str(path), "--since", "3h", "--chart", str(png)
    )
    assert done.returncode == 0, done.stderr
    assert "gpt/coder: 5 calls, 100.0% ok" in done.stdout
    assert "chart written to" in done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(callboard("metrics", "trend", "--config", str(path), "--json").stdout)
    assert sum(p["calls"] for p in data["series"]["gpt/coder"] if p) == 5
