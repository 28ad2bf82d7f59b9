"""The plan of one workflow run: which tasks exist, which are ready, how each ended.

Plain code. `WorkflowPlan` tracks one run of a workflow's stages (see
`runtime._config.workflows`): which tasks exist, which are ready, how each ended, and which
can no longer run because something they depend on failed. The executor
(`runtime._workflows.run`) asks it what to start.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from runtime._config.workflows import StageSettings

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
