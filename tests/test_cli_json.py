"""The command line's machine-readable output (``--json``) and its stderr level."""

from __future__ import annotations

import json

import pytest
from support import callboard, config_toml

from runtime.testing import Answer

pytestmark = pytest.mark.timeout(60)

WORKFLOW_ROLES = ("clarifier", "planner", "coder", "reviewer")


def test_check_json_is_one_object_with_providers_roles_and_warnings(fakes, deployment):
    """`check --json` prints the summary as one JSON object, warnings inside it."""
    gpt, claude = fakes("openai"), fakes("anthropic")
    path = deployment.write(
        config_toml(deployment, {"gpt": gpt, "claude": claude}, {"coder": ["claude", "gpt"]})
    )
    done = callboard("check", "--config", str(path), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] is True
    assert [(p["id"], p["type"]) for p in summary["providers"]] == [
        ("claude", "anthropic"),
        ("gpt", "openai"),
    ]
    assert summary["roles"]["coder"]["chain"] == ["claude", "gpt"]
    assert summary["credentials"] == "checked"
    (default,) = summary["workflows"]
    assert default["name"] == "default"
    assert "clarifier" in default["unserved"]
    assert summary["warnings"]
    assert done.stderr == ""


def test_models_json_lists_a_providers_models(fakes, deployment):
    """`models --json` prints the provider and its models."""
    gpt = fakes("openai")
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    done = callboard("models", "gpt", "--config", str(path), "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["provider"] == "gpt"
    assert "gpt-4o" in answer["models"]


def test_run_json_ends_with_a_summary_object(fakes, deployment, tmp_path):
    """`run --json`: stdout is one JSON summary; the progress goes to stderr."""
    gpt = fakes("openai")
    for _ in WORKFLOW_ROLES:
        gpt.script.append(Answer("done"))
    roles = {role: ["gpt"] for role in WORKFLOW_ROLES}
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, roles))
    out = tmp_path / "answers"
    done = callboard("run", "Add a health endpoint", "--config", str(path), "--json",
                     "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] is True
    assert summary["workflow_id"].startswith("wf-")
    assert summary["out_dir"] == str(out)
    assert {t["role"] for t in summary["tasks"]} == set(WORKFLOW_ROLES)
    assert all(t["state"] == "done" and t["provider"] == "gpt" for t in summary["tasks"])
    assert all(t["output_tokens"] > 0 for t in summary["tasks"])
    assert done.stderr


def test_quiet_and_callboard_log_silence_warnings(fakes, deployment):
    """-q (or CALLBOARD_LOG=error) keeps warnings off stderr; a bad level is refused."""
    gpt = fakes("openai")
    path = deployment.write(
        config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}, default="gpt")
    )
    for _ in range(3):
        gpt.script.append(Answer("hi"))
    loud = callboard("ask", "typo-role", "hi", "--config", str(path))
    assert "warning" in loud.stderr
    quiet = callboard("-q", "ask", "typo-role", "hi", "--config", str(path))
    assert quiet.returncode == 0, quiet.stderr
    assert "warning" not in quiet.stderr
    by_env = callboard(
        "ask", "typo-role", "hi", "--config", str(path), env={"CALLBOARD_LOG": "error"}
    )
    assert "warning" not in by_env.stderr
    bad = callboard("check", "--config", str(path), env={"CALLBOARD_LOG": "loud"})
    assert bad.returncode == 2
    assert "CALLBOARD_LOG=loud" in bad.stderr


def test_verbose_says_where_a_run_writes(fakes, deployment, tmp_path):
    """-v adds what a command is doing to stderr."""
    gpt = fakes("openai")
    roles = {role: ["gpt"] for role in WORKFLOW_ROLES}
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, roles))
    out = tmp_path / "answers"
    done = callboard("-v", "run", "goal", "--config", str(path), "--json", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"writing to {out}" in done.stderr
    json.loads(done.stdout)
