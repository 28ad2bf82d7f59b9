from __future__ import annotations

from pathlib import Path

import pytest

from runtime import ConfigError, parse_config
from runtime._config.workflows import DEFAULT_WORKFLOW, StageSettings, check_workflow
from runtime._workflows.plan import WorkflowPlan, numbered_steps

pytestmark = pytest.mark.timeout(5)

BASE = """
[providers.gpt]
type = "openai"
model = "gpt-4o"
api_key = "sk-test"
[roles.coder]
providers = ["gpt"]
[roles.reviewer]
providers = ["gpt"]
"""


def stage(role="coder", prompt="{goal}", **values):
    return StageSettings(role=role, prompt=prompt, **values)


def test_plans_are_read_as_numbered_steps():
    """Numbered lines in the usual styles become steps; anything else is one step."""
    plan = (
        "Here is the plan:\n1. Add a limiter\n2) Wire it in\n**Step 3:** test it\nStep 4 - Docs\n"
    )
    assert numbered_steps(plan) == ["Add a limiter", "Wire it in", "test it", "Docs"]
    assert numbered_steps("just do it") == ["just do it"]


def test_the_default_workflow_is_valid():
    """The built-in clarify, plan, code, review workflow passes its own checks."""
    assert check_workflow("default", DEFAULT_WORKFLOW) == []


def test_workflow_problems_are_named_with_their_place():
    """Unknown stages, loops, a fan-out not in after, and bad placeholders are reported."""
    stages = {
        "a": stage(after=("b",)),
        "b": stage(after=("a",)),
        "c": stage(after=("zz",), each="a", prompt="{goal} {nope}"),
    }
    problems = dict(check_workflow("w", stages))
    assert problems["workflow.w.c.after[0]"] == 'unknown stage "zz"'
    assert problems["workflow.w.c.each"] == '"a" must also be listed in after'
    assert problems["workflow.w.c.prompt"].startswith("unknown placeholder {nope}")
    assert problems["workflow.w"].startswith(
        "its stages depend on each other in a loop: a -> b -> a"
    )


def test_a_config_with_a_bad_workflow_lists_its_problems():
    """Workflow mistakes are config errors with the line they are on."""
    text = BASE + (
        '[workflow.ship.code]\nrole = "coder"\nprompt = "{goal} {plan}"\n'
        '[workflow.ship.check]\nrole = "tester"\nprompt = "x"\nafter = ["code"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})
    messages = [str(p) for p in caught.value.problems]
    assert any("workflow.ship.code.prompt: unknown placeholder {plan}" in m for m in messages)
    assert any('workflow.ship.check.role: unknown role "tester"' in m for m in messages)


def test_a_config_can_define_its_own_workflow():
    """[workflow.<name>.<stage>] tables define a workflow; the default stays built in."""
    text = BASE + '[workflow.quick.code]\nrole = "coder"\nprompt = "Do {goal}"\n'
    config = parse_config(text, environ={})
    assert list(config.workflow_stages("quick")) == ["code"]
    assert list(config.workflow_stages("default") or {}) == ["clarify", "plan", "code", "review"]
    assert config.workflow_stages("missing") is None


def finish(plan: WorkflowPlan, key: str, output: str = "ok", state: str = "done") -> None:
    plan.tasks[key].state = state
    plan.tasks[key].output = output


def test_a_plan_fans_out_into_one_task_per_step_each_reviewed():
    """Code runs once per plan step; each review waits only for its own coding task."""
    plan = WorkflowPlan(DEFAULT_WORKFLOW)
    assert [t.key for t in plan.ready()] == ["clarify"]
    finish(plan, "clarify")
    assert [t.key for t in plan.ready()] == ["plan"]
    finish(plan, "plan", "1. limiter\n2. wiring\n3. tests")
    ready = plan.ready()
    assert [t.key for t in ready] == ["code#1", "code#2", "code#3"]
    assert [t.step for t in ready] == ["limiter", "wiring", "tests"]
    for task in ready:
        task.state = "running"
    finish(plan, "code#2", "def wire(): ...")
    assert [t.key for t in plan.ready()] == ["review#2"]
    values = plan.values_for(plan.tasks["review#2"])
    assert values["code"] == "Step 2: wiring\ndef wire(): ..."
    assert (values["step"], values["index"]) == ("wiring", "2")


def test_a_failed_task_skips_what_depends_on_it_and_nothing_else():
    """A failed coding task skips its review; the other steps go on."""
    plan = WorkflowPlan(DEFAULT_WORKFLOW)
    plan.ready()
    finish(plan, "clarify")
    plan.ready()
    finish(plan, "plan", "1. a\n2. b")
    plan.ready()
    finish(plan, "code#1", state="failed")
    finish(plan, "code#2")
    assert [t.key for t in plan.ready()] == ["review#2"]
    assert plan.tasks["review#1"].state == "skipped"
    assert plan.tasks["review#1"].reason == "code#1 did not finish"
    finish(plan, "review#2")
    assert plan.finished()


def test_a_failed_plan_stops_everything_after_it():
    """When the stage a fan-out depends on fails, the stages after it are skipped."""
    plan = WorkflowPlan(DEFAULT_WORKFLOW)
    plan.ready()
    finish(plan, "clarify")
    plan.ready()
    finish(plan, "plan", state="failed")
    assert plan.ready() == []
    assert plan.finished()
    assert {t.key: t.state for t in plan.tasks.values()} == {
        "clarify": "done",
        "plan": "failed",
        "code": "skipped",
        "review": "skipped",
    }


def test_independent_stages_are_ready_together():
    """Stages with no dependency between them may run side by side."""
    stages = {
        "lint": stage(),
        "docs": stage(),
        "merge": stage(after=("lint", "docs"), prompt="{lint} {docs}"),
    }
    plan = WorkflowPlan(stages)
    assert [t.key for t in plan.ready()] == ["lint", "docs"]
    finish(plan, "lint")
    assert plan.ready() == [plan.tasks["docs"]]


def test_the_readme_workflow_example_is_a_valid_config():
    """The [workflow.ship...] example in the README loads as written."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("[workflow.ship.code]", 1)[1].split("```", 1)[0]
    text = BASE + '[roles.planner]\nproviders = ["gpt"]\n[workflow.ship.code]' + block
    config = parse_config(text, environ={})
    stages = config.workflow_stages("ship")
    assert stages is not None
    assert list(stages) == ["code", "docs", "review"]
    plan = WorkflowPlan(stages)
    assert [t.key for t in plan.ready()] == ["code", "docs"]
