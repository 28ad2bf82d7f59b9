from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from support import ENV, config_toml

from runtime._config.workflows import DEFAULT_WORKFLOW
from runtime._workflows.run import TaskView, WorkflowResult, run_workflow
from runtime.testing import Answer, Fail, Hang

pytestmark = pytest.mark.timeout(60)

PLAN = "1. limiter\n2. wiring\n3. tests"


class Recorder:
    """A workflow listener that keeps what it hears."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str, str | None]] = []
        self.answers: list[str] = []
        self.result: WorkflowResult | None = None

    def started(self, workflow_id, _goal, _views) -> None:
        """Keep the run's id."""
        self.workflow_id = workflow_id

    def changed(self, view: TaskView) -> None:
        """Keep each change."""
        self.changes.append((view.key, view.state, view.provider))

    def answered(self, view: TaskView) -> None:
        """Keep each answered task."""
        self.answers.append(view.key)

    def finished(self, result: WorkflowResult) -> None:
        """Keep the result."""
        self.result = result


def four_roles(fakes, deployment, **coder_options):
    """Each role on its own fake: clarifier gemini, planner gpt, coder claude, reviewer gpt2."""
    gemini, gpt, claude, gpt2 = (
        fakes("gemini"),
        fakes("openai"),
        fakes("anthropic", **coder_options),
        fakes("openai"),
    )
    providers = {"gemini": gemini, "gpt": gpt, "claude": claude, "gpt2": gpt2}
    roles = {
        "clarifier": {"providers": ["gemini"], "temperature": 0.3},
        "planner": {"providers": ["gpt"], "max_tokens": 500},
        "coder": {"providers": ["claude", "gpt"], "temperature": 0.1, "max_tokens": 900},
        "reviewer": {"providers": ["gpt2"], "temperature": 0.0},
    }
    deployment.write(config_toml(deployment, providers, roles))
    gpt.script.append(Answer(PLAN))
    return gemini, gpt, claude, gpt2


def run(board, tmp_path, goal="Add rate limiting"):
    recorder = Recorder()
    result = asyncio.run(
        run_workflow(
            board, goal, stages=dict(DEFAULT_WORKFLOW), out_dir=tmp_path / "out", listener=recorder
        )
    )
    return result, recorder


def test_each_stage_goes_to_its_roles_provider_with_its_tuning(fakes, deployment, tmp_path):
    """Clarify, plan, code and review reach their roles' providers, with each role's tuning."""
    gemini, gpt, claude, gpt2 = four_roles(fakes, deployment)
    board = deployment.board()
    result, recorder = run(board, tmp_path)
    assert result.ok
    assert [v.key for v in result.views] == [
        "clarify", "plan", "code#1", "code#2", "code#3", "review#1", "review#2", "review#3",
    ]  # fmt: skip
    clarify = gemini.wait_for_requests(1, chat_only=True)[0].json
    assert "Add rate limiting" in clarify["contents"][0]["parts"][0]["text"]
    assert clarify["generationConfig"]["temperature"] == 0.3
    plan = next(r.json for r in gpt.requests if r.is_chat)
    assert plan["max_tokens"] == 500
    codes = [r.json for r in claude.requests if r.is_chat]
    assert sorted(c["messages"][0]["content"].split("Implement step ")[1][:1] for c in codes) == [
        "1",
        "2",
        "3",
    ]
    assert {(c["temperature"], c["max_tokens"]) for c in codes} == {(0.1, 900)}
    reviews = [r.json for r in gpt2.requests if r.is_chat]
    assert len(reviews) == 3
    assert all(r["temperature"] == 0.0 for r in reviews)
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [
        "01-clarify.md", "02-plan.md", "03-code-1.md", "03-code-2.md", "03-code-3.md",
        "04-review-1.md", "04-review-2.md", "04-review-3.md",
    ]  # fmt: skip
    assert "role: coder" in (tmp_path / "out" / "03-code-2.md").read_text()
    assert len(recorder.answers) == 8


def test_fanned_out_coding_tasks_run_side_by_side(fakes, deployment, tmp_path):
    """Three 0.6 s coding tasks take about 0.6 s together, not 1.8 s."""
    _gemini, _gpt, claude, _gpt2 = four_roles(fakes, deployment, latency_s=0.6)
    board = deployment.board()
    result, _ = run(board, tmp_path)
    assert result.ok
    codes = [v for v in result.views if v.stage == "code"]
    started = min(v.started for v in codes)
    ended = max(v.ended for v in codes)
    assert ended - started < 1.2
    assert len([r for r in claude.requests if r.is_chat]) == 3


def test_an_outage_mid_run_is_survived_by_fallback(fakes, deployment, tmp_path):
    """When the coder's first provider goes down mid-run, its tasks fall back and finish."""
    _gemini, gpt, claude, _gpt2 = four_roles(fakes, deployment)
    board = deployment.board()

    class Outage(Recorder):
        def answered(self, view):
            super().answered(view)
            if view.key == "plan":
                claude.down()

    outage = Outage()
    result = asyncio.run(
        run_workflow(
            board, "goal", stages=dict(DEFAULT_WORKFLOW), out_dir=tmp_path / "o", listener=outage
        )
    )
    assert result.ok
    codes = [v for v in result.views if v.stage == "code"]
    assert {v.provider for v in codes} == {"gpt"}
    assert ("code#1", "fell back", "gpt") in outage.changes
    assert len([r for r in gpt.requests if r.is_chat]) == 4


def test_a_stage_that_fails_everywhere_stops_what_depends_on_it(fakes, deployment, tmp_path):
    """A plan that no provider answers skips coding and review, and keeps the clarification."""
    _gemini, gpt, _claude, _gpt2 = four_roles(fakes, deployment)
    gpt.script.clear()
    gpt.script.extend([Fail(400), Fail(400)])
    board = deployment.board()
    result, _ = run(board, tmp_path)
    assert not result.ok
    states = {v.key: v.state for v in result.views}
    assert states == {"clarify": "done", "plan": "failed", "code": "skipped", "review": "skipped"}
    (failure,) = result.failures()
    assert "every provider failed" in failure.error
    assert "bad_request" in failure.error
    assert (tmp_path / "out" / "01-clarify.md").exists()
    assert not (tmp_path / "out" / "02-plan.md").exists()


def test_cancelling_a_run_cancels_calls_in_flight_and_closes_every_record(
    fakes, deployment, tmp_path
):
    """A cancelled run keeps its finished answers, and every task started has its record."""
    _gemini, _gpt, claude, _gpt2 = four_roles(fakes, deployment)
    claude.script.extend([Hang(), Hang(), Hang()])
    board = deployment.board()
    recorder = Recorder()

    async def main() -> None:
        task = asyncio.ensure_future(
            run_workflow(
                board,
                "goal",
                stages=dict(DEFAULT_WORKFLOW),
                out_dir=tmp_path / "c",
                listener=recorder,
            )
        )
        await asyncio.to_thread(claude.wait_for_requests, 3, chat_only=True)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    result = recorder.result
    assert result is not None
    assert result.cancelled
    states = {v.key: v.state for v in result.views}
    assert states["plan"] == "done"
    assert {states[f"code#{i}"] for i in (1, 2, 3)} == {"cancelled"}
    assert (tmp_path / "c" / "02-plan.md").exists()
    board.stats()
    started = {e["task_id"] for e in deployment.events("task_started")}
    finished = {e["task_id"]: e["outcome"] for e in deployment.events("task_finished")}
    assert set(finished) == started
    assert sorted(finished.values()).count("cancelled") == 3


def test_callboard_run_prints_each_answer_and_writes_it(fakes, deployment, tmp_path):
    """`callboard run` prints every stage's answer, a summary, and exits 0."""
    four_roles(fakes, deployment)
    out = tmp_path / "answers"
    command = ["run", "Add rate limiting", "--config", str(deployment.path), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "runtime._cli", *command],
        capture_output=True, text=True, env={**os.environ, **ENV}, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "── plan (planner, gpt gpt-4o)" in done.stdout
    assert "1. limiter" in done.stdout
    assert "callboard metrics --workflow wf-" in done.stdout
    assert len(list(out.iterdir())) == 8


def test_callboard_demo_runs_to_completion(tmp_path):
    """`callboard demo` runs the workflow on simulated providers, through an outage, and exits 0."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "runtime._cli", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120, check=False,
        env={k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert all(line.startswith("[SIMULATED]") for line in lines)
    text = done.stdout
    assert "fell back" in text
    assert "claude open" in text
    assert "gemini cooling" in text
    assert "rate_limited" in text
    assert "callboard metrics" in text
    assert (tmp_path / "demo" / "audit.jsonl").exists()
    assert (tmp_path / "demo" / "metrics.db").exists()
    assert time.monotonic() - started < 60


def test_ctrl_c_stops_callboard_run_cleanly(fakes, deployment, tmp_path):
    """SIGINT cancels the calls in flight, keeps finished answers, closes every record."""
    _gemini, _gpt, claude, _gpt2 = four_roles(fakes, deployment)
    claude.script.extend([Hang(), Hang(), Hang()])
    out = tmp_path / "answers"
    command = ["run", "goal", "--config", str(deployment.path), "--out", str(out), "--plain"]
    child = subprocess.Popen(
        [sys.executable, "-m", "runtime._cli", *command],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV},
    )  # fmt: skip
    claude.wait_for_requests(3, chat_only=True, timeout_s=30)
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=30)
    assert child.returncode == 130, stderr
    assert "cancelled: calls in flight were cancelled" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["01-clarify.md", "02-plan.md"]
    started = {e["task_id"] for e in deployment.events("task_started")}
    finished = {e["task_id"]: e["outcome"] for e in deployment.events("task_finished")}
    assert set(finished) == started
    assert list(finished.values()).count("cancelled") == 3
