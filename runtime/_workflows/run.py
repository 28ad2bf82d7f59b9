"""Running a workflow on a board: stages by role, fan-out in parallel, results on disk.

`run_workflow` drives a `WorkflowPlan` with ``board.aask``: every task that is ready
starts at once (coding tasks of a plan run side by side), each task's progress reaches
the `WorkflowListener` as it happens, and each answer is written to its own Markdown
file as soon as it arrives, so a failed or interrupted run keeps everything that
finished. Cancelling the run cancels the calls in flight; the runtime closes their
records.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from runtime._chat import Progress, Reply
from runtime._config.workflows import StageSettings
from runtime._errors import CallboardError, TaskFailedError
from runtime._workflows.plan import TaskNode, WorkflowPlan, render

if TYPE_CHECKING:
    from runtime._board.board import Callboard


@dataclass(slots=True)
class TaskView:
    """What a display shows of one task, kept up to date as progress arrives."""

    key: str
    stage: str
    role: str
    state: str = "waiting"
    """``waiting``, ``running``, ``attempt failed``, ``retrying``, ``fell back``,
    ``backing off``, ``done``, ``failed``, ``skipped`` or ``cancelled``."""
    provider: str | None = None
    model: str | None = None
    detail: str = ""
    attempt: int = 0
    started: float | None = None
    ended: float | None = None
    reply: Reply | None = None
    error: str = ""
    path: Path | None = None

    def elapsed_s(self, now: float) -> float | None:
        """Seconds since the task started (to its end, once it ended)."""
        if self.started is None:
            return None
        return (self.ended if self.ended is not None else now) - self.started

    def take(self, progress: Progress) -> None:
        """Fold one step of the runtime's progress into the view."""
        self.attempt = max(self.attempt, progress.attempt)
        if progress.provider is not None:
            self.provider = progress.provider
        self.model = progress.model or self.model
        self.detail = progress.detail
        self.state = _STATES.get(progress.state, self.state)


_STATES = {
    "running": "running",
    "retrying": "retrying",
    "fallback": "fell back",
    "hedging": "hedging",
    "attempt_failed": "attempt failed",
    "waiting": "backing off",
}


class WorkflowListener(Protocol):
    """Hears what a workflow run does; the display implements it."""

    def started(self, workflow_id: str, goal: str, views: Sequence[TaskView]) -> None:
        """The run began."""

    def changed(self, view: TaskView) -> None:
        """A task's view changed (new tasks appear through this too)."""

    def answered(self, view: TaskView) -> None:
        """A task finished with an answer (``view.reply``), written to ``view.path``."""

    def finished(self, result: WorkflowResult) -> None:
        """The run ended (all done, stopped by a failure, or cancelled)."""


@dataclass(slots=True)
class WorkflowResult:
    """How a workflow run ended."""

    workflow_id: str
    goal: str
    out_dir: Path
    views: list[TaskView] = field(default_factory=list)
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """Whether every task answered."""
        return not self.cancelled and all(v.state == "done" for v in self.views)

    def failures(self) -> list[TaskView]:
        """Return the tasks that failed (not those skipped because of them)."""
        return [v for v in self.views if v.state == "failed"]


def new_workflow_id() -> str:
    """Return a fresh workflow id, e.g. ``wf-3f2a9c1d``."""
    return f"wf-{uuid.uuid4().hex[:8]}"


async def run_workflow(
    board: Callboard,
    goal: str,
    *,
    stages: dict[str, StageSettings],
    out_dir: Path,
    listener: WorkflowListener,
    workflow_id: str | None = None,
    tenant: str | None = None,
) -> WorkflowResult:
    """Run ``stages`` for ``goal`` on ``board``; return how every task ended.

    With ``tenant``, every task is that tenant's (its chains and budgets apply).

    Raises:
        asyncio.CancelledError: the run was cancelled (after the calls in flight were
            cancelled and the listener heard the result).
    """
    runner = _Runner(board, goal, stages, out_dir, listener, workflow_id or new_workflow_id())
    runner.tenant = tenant
    return await runner.run()


class _Runner:
    def __init__(  # noqa: PLR0917 - private; mirrors run_workflow
        self,
        board: Callboard,
        goal: str,
        stages: dict[str, StageSettings],
        out_dir: Path,
        listener: WorkflowListener,
        workflow_id: str,
    ) -> None:
        self.board = board
        self.goal = goal
        self.plan = WorkflowPlan(stages)
        self.out_dir = out_dir
        self.listener = listener
        self.result = WorkflowResult(workflow_id, goal, out_dir)
        self.views: dict[str, TaskView] = {}
        self.order = {name: n for n, name in enumerate(stages, start=1)}
        self.running: dict[asyncio.Task[Reply], TaskNode] = {}
        self.tenant: str | None = None

    async def run(self) -> WorkflowResult:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._sync_views()
        self.listener.started(self.result.workflow_id, self.goal, list(self.views.values()))
        try:
            while True:
                for node in self.plan.ready():
                    self._start(node)
                self._sync_views()
                if not self.running:
                    break
                done, _ = await asyncio.wait(self.running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    self._finish(self.running.pop(task), task)
        except asyncio.CancelledError:
            await self._cancel()
            raise
        finally:
            self._sync_views()
            self.result.views = [self.views[t.key] for t in self.plan.tasks_in_order()]
            self.listener.finished(self.result)
        return self.result

    def _start(self, node: TaskNode) -> None:
        settings = self.plan.stages[node.stage]
        prompt = render(settings.prompt, {"goal": self.goal, **self.plan.values_for(node)})
        view = self._view(node)
        view.state, view.started = "running", time.monotonic()
        loop = asyncio.get_running_loop()

        def on_progress(progress: Progress) -> None:
            loop.call_soon_threadsafe(self._progress, view, progress)

        node.state = "running"
        call = self.board.aask(
            settings.role,
            prompt,
            system=settings.system,
            tags=settings.tags,
            workflow_id=self.result.workflow_id,
            tenant=self.tenant,
            on_progress=on_progress,
        )
        self.running[asyncio.ensure_future(call)] = node
        self.listener.changed(view)

    def _progress(self, view: TaskView, progress: Progress) -> None:
        if view.ended is None:
            view.take(progress)
            self.listener.changed(view)

    def _finish(self, node: TaskNode, task: asyncio.Task[Reply]) -> None:
        view = self._view(node)
        view.ended = time.monotonic()
        try:
            reply = task.result()
        except TaskFailedError as exc:
            node.state, node.reason = "failed", exc.reason
            view.state, view.error = "failed", str(exc)
            view.attempt = len(exc.attempts)
        except CallboardError as exc:
            node.state, node.reason = "failed", str(exc)
            view.state, view.error = "failed", str(exc)
        else:
            node.state, node.output = "done", reply.text
            view.state, view.reply = "done", reply
            view.provider, view.model, view.attempt = (
                reply.provider,
                reply.model,
                len(reply.attempts),
            )
            view.path = self._write(node, view, reply)
            self.listener.answered(view)
        self.listener.changed(view)

    async def _cancel(self) -> None:
        for task in self.running:
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)
        now = time.monotonic()
        for node in self.running.values():
            node.state = "cancelled"
            view = self._view(node)
            view.state, view.ended = "cancelled", now
        self.running.clear()
        for node in self.plan.tasks.values():
            if node.state == "waiting":
                node.state = "cancelled"
        self.result.cancelled = True

    def _view(self, node: TaskNode) -> TaskView:
        view = self.views.get(node.key)
        if view is None:
            role = self.plan.stages[node.stage].role
            view = self.views[node.key] = TaskView(node.key, node.stage, role)
        return view

    def _sync_views(self) -> None:
        """Make a view for every task the plan knows, and mirror skipped ones."""
        for node in self.plan.tasks_in_order():
            view = self._view(node)
            if node.state in ("skipped", "cancelled") and view.state != node.state:
                view.state, view.error = node.state, node.reason
                self.listener.changed(view)

    def _write(self, node: TaskNode, view: TaskView, reply: Reply) -> Path:
        suffix = f"-{node.index}" if node.index is not None else ""
        path = self.out_dir / f"{self.order[node.stage]:02d}-{node.stage}{suffix}.md"
        usage = reply.usage
        cost = f"${reply.cost_usd:.4f}" if reply.cost_usd is not None else "unknown"
        lines = [
            f"# {node.key}" + (f": {node.step}" if node.step else ""),
            "",
            f"- workflow: {self.result.workflow_id}",
            f"- role: {view.role}",
            f"- provider: {reply.provider} ({reply.model})",
            f"- attempts: {len(reply.attempts)}",
            (
                f"- tokens: {usage.input_tokens} in, {usage.output_tokens} out, "
                f"{usage.cached_tokens} cached"
            ),
            f"- latency: {reply.latency_ms:.0f} ms",
            f"- cost: {cost}",
            f"- task: {reply.task_id}",
            "",
            reply.text,
            "",
        ]
        path.write_text("\n".join(lines), encoding="utf-8")
        return path
