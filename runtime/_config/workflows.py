"""Workflow settings: the stages of each workflow, the built-in default, and their checks.

Plain code. A workflow is validated config (`[workflow.<name>.<stage>]` tables, or the
built-in default: clarify, plan, code, review); `check_workflow` finds every problem of
one, with its place. Running a workflow is `runtime._workflows`.

A stage with ``each = "<stage>"`` runs once per item of that stage: per numbered step of
a single task's answer (a plan), or per task of a stage that is itself fanned out (each
coding task gets its own review, as soon as that task is done).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PLACEHOLDERS = ("goal", "step", "index")
"""Names every prompt may use besides the stages it depends on."""


class StageSettings(BaseModel):
    """``[workflow.<name>.<stage>]``: one stage of a workflow."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    role: Annotated[str, Field(min_length=1)]
    prompt: Annotated[str, Field(min_length=1)]
    """A template: ``{goal}``, ``{<stage>}`` (an earlier stage's answer), and in a
    fanned-out stage ``{step}`` and ``{index}``."""
    system: str | None = None
    after: tuple[str, ...] = ()
    """Stages that must finish first; stages with no path between them run side by side."""
    each: str | None = None
    """Run once per numbered step (or per task) of this stage, which must be in ``after``."""
    tags: tuple[str, ...] = ()
    """Tags its tasks carry, for the roles' routing rules (``when = { tag = "..." }``)."""


DEFAULT_WORKFLOW: dict[str, StageSettings] = {
    "clarify": StageSettings(
        role="clarifier",
        system="You are a careful senior engineer. Be brief.",
        prompt=(
            "Goal: {goal}\n\nBefore any work starts, list the questions that matter for "
            "this goal, and answer each with the most reasonable assumption."
        ),
    ),
    "plan": StageSettings(
        role="planner",
        after=("clarify",),
        system="You are a pragmatic tech lead. Be brief.",
        prompt=(
            "Goal: {goal}\n\nClarifications:\n{clarify}\n\nWrite the implementation plan as a "
            "numbered list of 2 to 5 steps that can be done independently, one line each. "
            "Write only the list."
        ),
    ),
    "code": StageSettings(
        role="coder",
        after=("plan",),
        each="plan",
        system="You write production-quality code. Be terse.",
        prompt=(
            "Goal: {goal}\n\nPlan:\n{plan}\n\nImplement step {index}: {step}\n"
            "Answer with the code and a one-line summary."
        ),
    ),
    "review": StageSettings(
        role="reviewer",
        after=("code",),
        each="code",
        system="You review code for correctness and safety. Be specific.",
        prompt=(
            "Review the change for step {index} ({step}) of this goal: {goal}\n\n{code}\n\n"
            "List concrete problems, most serious first, or say it is ready."
        ),
    ),
}


def check_workflow(name: str, stages: Mapping[str, StageSettings]) -> list[tuple[str, str]]:
    """Return every problem of a workflow as ``(location, message)`` pairs."""
    problems: list[tuple[str, str]] = []
    where = f"workflow.{name}"
    if not stages:
        return [(where, "a workflow needs at least one stage")]
    for stage, settings in stages.items():
        for index, dep in enumerate(settings.after):
            if dep not in stages:
                problems.append((f"{where}.{stage}.after[{index}]", f'unknown stage "{dep}"'))
        if settings.each is not None and settings.each not in settings.after:
            problems.append(
                (f"{where}.{stage}.each", f'"{settings.each}" must also be listed in after')
            )
        problems += _template_problems(f"{where}.{stage}.prompt", stage, settings, stages)
    cycle = _cycle(stages)
    if cycle:
        problems.append((where, "its stages depend on each other in a loop: " + " -> ".join(cycle)))
    return problems


def _template_problems(
    where: str, stage: str, settings: StageSettings, stages: Mapping[str, StageSettings]
) -> list[tuple[str, str]]:
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(settings.prompt) if f}
    except ValueError as exc:
        return [(where, f"not a valid template: {exc}")]
    allowed = set(PLACEHOLDERS) | _ancestors(stage, stages)
    unknown = sorted(n for n in names if n not in allowed)
    if not unknown:
        return []
    known = ", ".join("{" + n + "}" for n in sorted(allowed))
    return [(where, f"unknown placeholder {{{unknown[0]}}}; this stage may use {known}")]


def _ancestors(stage: str, stages: Mapping[str, StageSettings]) -> set[str]:
    seen: set[str] = set()
    todo = list(stages[stage].after)
    while todo:
        dep = todo.pop()
        if dep in stages and dep not in seen:
            seen.add(dep)
            todo += stages[dep].after
    return seen


def _cycle(stages: Mapping[str, StageSettings]) -> list[str]:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(stage: str) -> list[str]:
        state[stage] = 1
        path.append(stage)
        for dep in stages[stage].after:
            if dep not in stages:
                continue
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[stage] = 2
        return []

    for stage in stages:
        if stage not in state and (found := visit(stage)):
            return found
    return []
