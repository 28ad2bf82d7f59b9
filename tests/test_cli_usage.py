"""The command line as a user drives it: real subprocesses against loopback fakes."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from support import FAST_SECTIONS, KEYS, callboard, config_toml

from runtime.testing import Answer, Fail, StreamError

pytestmark = pytest.mark.timeout(60)

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
SLOW_RECHECK = FAST_SECTIONS + "\n[startup]\nrecheck_initial_s = 30.0\n"


def test_check_warns_of_a_provider_down_and_exits_0_or_2_with_strict(fakes, deployment):
    """A provider in trouble is a warning line (exit 0); with --strict it stops the check (2)."""
    down, fine = fakes("openai"), fakes("anthropic")
    down.down()
    path = deployment.write(
        config_toml(
            deployment,
            {"down": down, "fine": fine},
            {"coder": ["down", "fine"]},
            sections=SLOW_RECHECK,
        )
    )
    done = callboard("check", "--config", str(path))
    assert done.returncode == 0, done.stderr
    (warning,) = [line for line in done.stderr.splitlines() if "warning: down:" in line]
    assert warning.startswith("callboard: warning: down: unreachable")
    assert "checked again in the background" in warning
    assert "provider down: openai, model gpt-4o (unchecked)" in done.stdout
    strict = callboard("check", "--config", str(path), "--strict")
    assert strict.returncode == 2
    assert "down: unreachable" in strict.stderr


def test_check_shows_the_default_provider_as_every_roles_last_resort(fakes, deployment):
    """The casting ends each role with the default provider, marked as the last resort."""
    gpt, claude = fakes("openai"), fakes("anthropic")
    path = deployment.write(
        config_toml(
            deployment,
            {"gpt": gpt, "claude": claude},
            {
                "coder": ["claude"],
                "reviewer": ["claude", "gpt"],
                "tester": {"providers": ["claude"], "fallback_to_default": False},
            },
            default="gpt",
        )
    )
    done = callboard("check", "--config", str(path), "--offline")
    assert done.returncode == 0, done.stderr
    assert "role coder: claude -> gpt (last resort)" in done.stdout
    assert "role reviewer: claude -> gpt; strategy priority\n" in done.stdout
    assert "role tester: claude; strategy priority\n" in done.stdout


def test_check_confirms_the_roles_the_default_workflow_needs(fakes, deployment):
    """`check` says whether `run` can serve every role of its workflows, and warns if not."""
    gpt = fakes("openai")
    roles: dict[str, list[str] | dict[str, object]] = {
        name: ["gpt"] for name in ("clarifier", "planner", "coder", "reviewer")
    }
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, roles))
    done = callboard("check", "--config", str(path), "--offline")
    assert done.returncode == 0, done.stderr
    assert "workflow default: clarifier, planner, coder, reviewer: can be served" in done.stdout
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    lacking = callboard("check", "--config", str(path), "--offline")
    assert lacking.returncode == 0, lacking.stderr
    assert (
        "callboard: warning: workflow default cannot run: no provider serves roles clarifier, "
        "planner, reviewer"
    ) in lacking.stderr
    assert callboard("check", "--config", str(path), "--offline", "--strict").returncode == 2
    path = deployment.write(
        config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}, default="gpt")
    )
    served = callboard("check", "--config", str(path), "--offline")
    assert "workflow default: clarifier, planner, coder, reviewer: can be served" in served.stdout
    assert (
        "callboard: warning: workflow default: roles clarifier, planner, reviewer are not "
        "configured; the default provider gpt serves them"
    ) in served.stderr


def test_ask_checks_only_the_providers_its_role_can_use(fakes, deployment):
    """An unrelated provider down (or with a bad key) does not stop `ask` for another role."""
    coder, down, rejected = fakes("anthropic"), fakes("ollama"), fakes("openai", keys={"x"})
    down.down()
    path = deployment.write(
        config_toml(
            deployment,
            {"claude": coder, "local": down, "gpt": rejected},
            {"coder": ["claude"], "summarizer": ["local", "gpt"]},
        )
    )
    coder.script.append(Answer("fine"))
    done = callboard("ask", "coder", "hi", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "fine\n"
    assert not [r for r in rejected.requests if r.action == "list_models"]
    failed = callboard("ask", "summarizer", "hi", "--config", str(path))
    assert failed.returncode == 2
    assert "gpt: the key was rejected" in failed.stderr


def test_ask_stream_into_a_pipe_prints_only_the_answer(fakes, deployment):
    """A broken stream's void text never reaches stdout; the restart is said on stderr."""
    primary = fakes("anthropic", default=Answer("VOID partial text, cut off. " * 4))
    backup = fakes("openai")
    path = deployment.write(
        config_toml(
            deployment, {"primary": primary, "backup": backup}, {"coder": ["primary", "backup"]}
        )
    )
    primary.script.append(StreamError(after_chunks=2))
    backup.script.append(Answer("the whole answer from the backup"))
    done = callboard("ask", "coder", "hi", "--config", str(path), "--stream")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "the whole answer from the backup\n"
    assert "starting again with backup" in done.stderr
    assert "VOID" not in done.stderr


def test_ask_json_prints_an_error_object_on_failure(fakes, deployment):
    """With --json a failed task, an unknown role or a config problem is one JSON object."""
    gpt = fakes("openai")
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    gpt.script.extend([Fail(400), Fail(400)])
    done = callboard("ask", "coder", "x", "--config", str(path), "--json")
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert error["kind"] == "failed"
    assert error["role"] == "coder"
    assert "every provider failed" in error["message"]
    (attempt,) = error["attempts"]
    assert (attempt["provider"], attempt["error_kind"], attempt["status"]) == (
        "gpt",
        "bad_request",
        400,
    )
    unknown = callboard("ask", "tester", "x", "--config", str(path), "--json")
    assert unknown.returncode == 1
    error = json.loads(unknown.stdout)["error"]
    assert (error["kind"], error["attempts"]) == ("unknown_role", [])
    assert "unknown role 'tester'" in error["message"]
    path.write_text(path.read_text() + "\n[retry]\nattempts = 0\n")
    broken = callboard("ask", "coder", "x", "--config", str(path), "--json")
    assert broken.returncode == 2
    error = json.loads(broken.stdout)["error"]
    assert error["kind"] == "config"
    assert error["problems"]


def test_ask_reads_a_large_prompt_from_stdin_or_from_a_file(fakes, deployment, tmp_path):
    """`-` reads the prompt from stdin and `@path` from a file: 5 MB, past any argv limit."""
    gpt = fakes("openai")
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    prompt = "lorem ipsum dolor " * 300_000
    assert len(prompt) > 5_000_000
    piped = callboard("ask", "coder", "-", "--config", str(path), stdin=prompt)
    assert piped.returncode == 0, piped.stderr
    sent = gpt.wait_for_requests(1, chat_only=True)[-1].json
    assert sent["messages"][-1]["content"] == prompt
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text(prompt + "from a file")
    filed = callboard("ask", "coder", f"@{prompt_file}", "--config", str(path))
    assert filed.returncode == 0, filed.stderr
    sent = gpt.wait_for_requests(2, chat_only=True)[-1].json
    assert sent["messages"][-1]["content"] == prompt + "from a file"
    missing = callboard("ask", "coder", f"@{tmp_path / 'nope.txt'}", "--config", str(path))
    assert missing.returncode == 2
    assert "cannot read the prompt" in missing.stderr


def test_an_unconfigured_role_is_served_by_the_default_with_a_warning(fakes, deployment):
    """A role missing from the config (a typo?) is served by the default, and said so."""
    gpt, claude = fakes("openai"), fakes("anthropic")
    path = deployment.write(
        config_toml(
            deployment, {"gpt": gpt, "claude": claude}, {"reviewer": ["claude"]}, default="gpt"
        )
    )
    done = callboard("ask", "reviwer", "hi", "--config", str(path))
    assert done.returncode == 0, done.stderr
    assert (
        "callboard: warning: role 'reviwer' is not configured; the default provider gpt "
        "serves it (configured roles: reviewer)"
    ) in done.stderr
    (record,) = deployment.events("role_unconfigured")
    assert (record["role"], record["provider"]) == ("reviwer", "gpt")


def test_the_board_records_an_unconfigured_role_once(fakes, deployment):
    """Each unconfigured role served by the default gets one audit record per board."""
    gpt = fakes("openai")
    deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}, default="gpt"))
    board = deployment.board()
    for _ in range(3):
        assert board.ask("reviwer", "hi").provider == "gpt"
    board.ask("coder", "hi")
    board.ask("planer", "hi")
    records = deployment.events("role_unconfigured")
    assert [(r["role"], r["provider"], r["roles"]) for r in records] == [
        ("reviwer", "gpt", ["coder"]),
        ("planer", "gpt", ["coder"]),
    ]


def test_metrics_json_and_csv_give_iso_8601_times(fakes, deployment):
    """Report and trend windows, and trend periods, are ISO 8601 UTC times in JSON and CSV."""
    gpt = fakes("openai")
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    board = deployment.board()
    board.ask("coder", "one")
    board.close()
    report = json.loads(callboard("metrics", "--config", str(path), "--json").stdout)
    assert ISO_UTC.match(report["since"])
    assert ISO_UTC.match(report["until"])
    assert datetime.fromisoformat(report["until"]) > datetime.fromisoformat(report["since"])
    trend = json.loads(callboard("metrics", "trend", "--config", str(path), "--json").stdout)
    assert ISO_UTC.match(trend["since"])
    assert all(ISO_UTC.match(start) for start in trend["starts"])
    rows = list(csv.DictReader(io.StringIO(callboard(
        "metrics", "trend", "--config", str(path), "--csv"
    ).stdout)))  # fmt: skip
    assert rows
    assert all(ISO_UTC.match(row["period_start"]) for row in rows)


def minimal_config(readme: str) -> str:
    """Return the TOML of the README's "A minimal config for real providers"."""
    section = readme.split("## A minimal config for real providers", 1)[1]
    return section.split("```toml\n", 1)[1].split("```", 1)[0]


def test_the_readme_minimal_config_runs_the_default_workflow(fakes, deployment, tmp_path):
    """`callboard run` works with the README's minimal config, pointed at fakes."""
    claude, gpt = fakes("anthropic"), fakes("openai")
    text = minimal_config((Path(__file__).parents[1] / "README.md").read_text())
    for pid, fake in (("claude", claude), ("gpt", gpt)):
        text = text.replace(
            f"[providers.{pid}]\n", f'[providers.{pid}]\nbase_url = "{fake.base_url}"\n'
        )
    text += f'\n[audit]\npath = "{deployment.audit_path}"\n'
    text += f'\n[metrics]\npath = "{deployment.metrics_path}"\n'
    path = deployment.write(text)
    env = {"ANTHROPIC_API_KEY": KEYS["anthropic"], "OPENAI_API_KEY": KEYS["openai"]}
    out = tmp_path / "answers"
    done = callboard("run", "Add a health endpoint", "--config", str(path), "--plain",
                     "--out", str(out), env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stderr
    finished = deployment.events("task_finished")
    assert {r["role"] for r in finished} == {"clarifier", "planner", "coder", "reviewer"}
    assert all(r["outcome"] == "ok" for r in finished)
    stages = {answer.stem.split("-")[1] for answer in out.iterdir()}
    assert stages == {"clarify", "plan", "code", "review"}


def test_ask_with_a_schema_prints_the_validated_json(fakes, deployment, tmp_path):
    """--schema FILE checks the answer against the JSON Schema and prints its JSON."""
    gpt = fakes("openai", script=[Answer('{"steps": ["plan", "code"]}')])
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"planner": ["gpt"]}))
    schema = tmp_path / "plan.json"
    schema.write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {"steps": {"type": "array", "items": {"type": "string"}}},
                "required": ["steps"],
            }
        )
    )
    done = callboard("ask", "planner", "Plan", "--config", str(path), "--schema", str(schema))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"steps": ["plan", "code"]}
    sent = next(r for r in gpt.requests if r.is_chat).json
    assert sent["response_format"]["json_schema"]["name"] == "plan"


def test_ask_with_an_unreadable_schema_is_a_usage_error(fakes, deployment, tmp_path):
    """A schema file that is not JSON stops before any request, exit 2."""
    gpt = fakes("openai")
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"planner": ["gpt"]}))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    done = callboard("ask", "planner", "Plan", "--config", str(path), "--schema", str(bad))
    assert done.returncode == 2
    assert "is not JSON" in done.stderr
    assert not [r for r in gpt.requests if r.is_chat]
