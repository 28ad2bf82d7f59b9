"""Workflows: stages that each name a role, run in dependency order, some fanned out.

Plain code. A `Workflow` is validated config (`[workflow.<name>.<stage>]` tables, or the
built-in default: clarify, plan, code, review). `WorkflowPlan` tracks one run: which
tasks exist, which are ready, how each ended, and which can no longer run because
something they depend on failed. The executor (`_workflow_run`) asks it what to start.

A stage with ``each = "<stage>"`` runs once per item of that stage: per numbered step of
a single task's answer (a plan), or per task of a stage that is itself fanned out (each
coding task gets its own review, as soon as that task is done).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


_STEP = re.compile(r"^[\s*_#>-]*(?:step\s*)?(\d+)[*_]*\s*[.):\-]+[*_]*\s+(.+?)\s*$", re.IGNORECASE)


def numbered_steps(text: str) -> list[str]:
    """Return the numbered items of a plan (``1. ...``, ``2) ...``, ``Step 3: ...``).

    A plan without a numbered list is one step: the whole text.
    """
    steps = [m.group(2).strip("*_ ") for m in map(_STEP.match, text.splitlines()) if m]
    return steps or [text.strip()]


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill a prompt template (placeholders were checked when the config loaded)."""
    return template.format_map(dict(values))


@dataclass(slots=True)
class TaskNode:
    """One task of a run: a stage, or one item of a fanned-out stage."""

    key: str
    """``plan``, or ``code#2`` for the second item of a fanned-out stage."""
    stage: str
    index: int | None = None
    step: str | None = None
    depends: tuple[str, ...] = ()
    state: str = "waiting"
    """``waiting``, ``running``, ``done``, ``failed``, ``skipped`` or ``cancelled``."""
    output: str | None = None
    reason: str = ""


@dataclass(slots=True)
class WorkflowPlan:
    """The tasks of one run and how far each has got."""

    stages: Mapping[str, StageSettings]
    tasks: dict[str, TaskNode] = field(default_factory=dict)
    expanded: set[str] = field(default_factory=set)

    def ready(self) -> list[TaskNode]:
        """Expand stages whose inputs are known, then return the tasks that can start."""
        self._settle()
        return [
            t
            for t in self.tasks.values()
            if t.state == "waiting" and all(self.tasks[d].state == "done" for d in t.depends)
        ]

    def finished(self) -> bool:
        """Whether nothing more can start or is running."""
        self._settle()
        settled = all(t.state not in ("waiting", "running") for t in self.tasks.values())
        return settled and self.expanded == set(self.stages)

    def _settle(self) -> None:
        """Make the tasks that can be made and skip the blocked ones, until neither moves."""
        while True:
            before = (len(self.tasks), sum(t.state == "skipped" for t in self.tasks.values()))
            self._expand()
            self._skip_blocked()
            if before == (len(self.tasks), sum(t.state == "skipped" for t in self.tasks.values())):
                return

    def _expand(self) -> None:
        progress = True
        while progress:
            progress = False
            for name in self.stages:
                if name not in self.expanded and self._inputs_known(name):
                    self._add_tasks(name)
                    self.expanded.add(name)
                    progress = True

    def _inputs_known(self, name: str) -> bool:
        """Whether a stage's tasks can be made now.

        Every stage it depends on must have its tasks, and the single task it fans out
        over (a plan) must have ended, so that its steps are known.
        """
        settings = self.stages[name]
        if any(dep not in self.expanded for dep in settings.after):
            return False
        if settings.each is None:
            return True
        source = self.stage_tasks(settings.each)
        if len(source) == 1 and source[0].index is None:
            return source[0].state in ("done", "failed", "skipped", "cancelled")
        return True

    def _add_tasks(self, name: str) -> None:
        settings = self.stages[name]
        whole = tuple(t.key for dep in settings.after for t in self.stage_tasks(dep))
        if settings.each is None:
            self.tasks[name] = TaskNode(name, name, depends=whole)
            return
        source = self.stage_tasks(settings.each)
        if len(source) == 1 and source[0].index is None:
            if source[0].state != "done":
                self.tasks[name] = TaskNode(name, name, depends=whole)
                return
            for i, step in enumerate(numbered_steps(source[0].output or ""), start=1):
                self.tasks[f"{name}#{i}"] = TaskNode(f"{name}#{i}", name, i, step, whole)
            return
        others = tuple(
            t.key for dep in settings.after if dep != settings.each for t in self.stage_tasks(dep)
        )
        for item in source:
            key = f"{name}#{item.index}"
            self.tasks[key] = TaskNode(key, name, item.index, item.step, (*others, item.key))

    def _skip_blocked(self) -> None:
        changed = True
        while changed:
            changed = False
            for task in self.tasks.values():
                if task.state != "waiting":
                    continue
                blocked = [d for d in task.depends if self.tasks[d].state in _DEAD]
                if blocked:
                    task.state = "skipped"
                    task.reason = f"{blocked[0]} did not finish"
                    changed = True

    def stage_tasks(self, stage: str) -> list[TaskNode]:
        """Return the tasks of a stage, in order."""
        return [t for t in self.tasks.values() if t.stage == stage]

    def values_for(self, task: TaskNode) -> dict[str, str]:
        """Return the placeholder values of ``task``'s prompt."""
        values: dict[str, str] = {"step": task.step or "", "index": str(task.index or "")}
        for dep in self.stages[task.stage].after:
            outputs = [t for t in self.stage_tasks(dep) if t.state == "done"]
            mine = [t for t in outputs if t.index is not None and t.index == task.index]
            chosen = mine if self.stages[task.stage].each == dep and mine else outputs
            values[dep] = "\n\n".join(_labelled(t) for t in chosen)
        return values

    def tasks_in_order(self) -> Iterable[TaskNode]:
        """Yield the tasks stage by stage, in the order the stages are defined."""
        for stage in self.stages:
            yield from self.stage_tasks(stage)


_DEAD = ("failed", "skipped", "cancelled")


def _labelled(task: TaskNode) -> str:
    if task.index is None or task.output is None:
        return task.output or ""
    return f"Step {task.index}: {task.step}\n{task.output}" if task.step else task.output
