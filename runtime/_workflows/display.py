"""What a person sees while a workflow runs: live progress, each answer, a summary.

On a terminal, `WorkflowDisplay` keeps a live table (rich) of every task: its role,
the provider serving it, its state (waiting, running, retrying, fell back, backing off,
done, failed) and elapsed time, with the providers' health under it. Anywhere else
(a pipe, a CI log) it prints one line per change instead. A ``label`` (``SIMULATED``)
starts every line it prints.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from runtime._policy.provider_table import ProviderHealth
from runtime._workflows.run import TaskView, WorkflowResult

Health = Callable[[], dict[str, ProviderHealth]]

_STYLES = {
    "done": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "cancelled": "yellow",
    "fell back": "magenta",
    "retrying": "magenta",
    "backing off": "magenta",
    "running": "cyan",
    "attempt failed": "red",
}


class WorkflowDisplay:
    """Shows a workflow run on a console; implements `WorkflowListener`."""

    def __init__(
        self,
        *,
        out: TextIO,
        live: bool,
        health: Health | None = None,
        label: str = "",
        width: int = 110,
    ) -> None:
        self._out = out
        self._label = label
        self._health = health
        self._width = width
        self._console = Console(file=out, width=width, force_terminal=live, highlight=False)
        self._live: Live | None = None
        self._views: dict[str, TaskView] = {}
        self._shown: dict[str, tuple[str, str | None, str]] = {}
        self._started = time.monotonic()
        self._title = ""
        self._live_wanted = live
        self._lock = threading.Lock()
        self._last_health = ""

    # -- WorkflowListener ----------------------------------------------------------------

    def started(self, workflow_id: str, goal: str, views: Sequence[TaskView]) -> None:
        """Print the run's header and start the live table."""
        self._title = f"workflow {workflow_id}: {goal}"
        for view in views:
            self._views[view.key] = view
        self.say(self._title)
        if self._live_wanted:
            self._live = Live(
                get_renderable=self._render_live,
                console=self._console,
                refresh_per_second=8,
                transient=True,
            )
            self._live.start()

    def changed(self, view: TaskView) -> None:
        """Record a change; in line mode, print it."""
        self._views[view.key] = view
        if self._live is None:
            self._print_change(view)

    def answered(self, view: TaskView) -> None:
        """Print the answer of a task that finished."""
        reply = view.reply
        if reply is None:
            return
        head = f"── {view.key} ({view.role}, {reply.provider} {reply.model}) → {view.path}"
        self.say(f"{head}\n{reply.text.rstrip()}\n")

    def finished(self, result: WorkflowResult) -> None:
        """Stop the live table and print the summary and what to do next."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        for view in result.views:
            self._views[view.key] = view
        self.say(self._render_text(self._summary(result)))
        for line in self._closing(result):
            self.say(line)

    # -- output ------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """Print text, every line starting with the label (above the live table)."""
        prefix = f"[{self._label}] " if self._label else ""
        lines = [f"{prefix}{line}".rstrip() for line in text.splitlines() or [""]]
        with self._lock:
            if self._live is not None:
                self._live.console.print(Text("\n".join(lines)), soft_wrap=True)
            else:
                self._out.write("\n".join(lines) + "\n")
                self._out.flush()

    def _print_change(self, view: TaskView) -> None:
        shown = (view.state, view.provider, view.detail)
        if self._shown.get(view.key) == shown or (view.state == "running" and not view.provider):
            return
        self._shown[view.key] = shown
        elapsed = time.monotonic() - self._started
        provider = f" {view.provider}" if view.provider else ""
        detail = f" ({view.detail})" if view.detail and view.state != "done" else ""
        self.say(
            f"{elapsed:6.1f}s  {view.key:<10} {view.role:<10}{provider:<9} {view.state}{detail}"
        )
        health = self._health_line()
        states = re.sub(r" \d+s", "", health)
        if health and states != self._last_health:
            self._last_health = states
            self.say(f"{elapsed:6.1f}s  {health}")

    def _render_live(self) -> Any:
        now = time.monotonic()
        table = Table(title=self._title, title_justify="left", expand=False)
        for column in ("task", "role", "provider", "state", "elapsed"):
            table.add_column(column)
        for view in list(self._views.values()):
            table.add_row(
                view.key,
                view.role,
                _provider(view),
                Text(_state(view), style=_STYLES.get(view.state, "")),
                _seconds(view.elapsed_s(now)),
            )
        parts: list[Any] = [table]
        health = self._health_line()
        if health:
            parts.append(Text(health))
        if self._label:
            parts.insert(0, Text(f"[{self._label}]", style="bold yellow"))
        return Group(*parts)

    def _health_line(self) -> str:
        if self._health is None:
            return ""
        try:
            health = self._health()
        except Exception:  # noqa: BLE001 - a closing board must not break the display
            return ""
        parts = []
        for pid, state in sorted(health.items()):
            text = f"{pid} {state.state}"
            if state.for_s:
                text += f" {state.for_s:.0f}s"
            parts.append(text)
        return "providers: " + ", ".join(parts)

    def _summary(self, result: WorkflowResult) -> Table:
        table = Table(title=f"workflow {result.workflow_id}", title_justify="left")
        for column in (
            "task",
            "role",
            "provider",
            "model",
            "attempts",
            "tokens in/out",
            "latency",
            "cost",
            "state",
        ):
            table.add_column(
                column, justify="right" if column in ("attempts", "latency", "cost") else "left"
            )
        for view in result.views:
            reply = view.reply
            tokens = f"{reply.usage.input_tokens}/{reply.usage.output_tokens}" if reply else "-"
            latency = f"{reply.latency_ms / 1000:.2f} s" if reply else "-"
            cost = "-"
            if reply is not None:
                cost = f"${reply.cost_usd:.4f}" if reply.cost_usd is not None else "unknown"
            table.add_row(
                view.key, view.role, view.provider or "-", view.model or "-",
                str(view.attempt or "-"), tokens, latency, cost, view.state,
            )  # fmt: skip
        return table

    def _closing(self, result: WorkflowResult) -> list[str]:
        lines = [f"{view.key} failed: {view.error}" for view in result.failures()]
        skipped = [v.key for v in result.views if v.state == "skipped"]
        if skipped:
            lines.append(f"not run, because what they need failed: {', '.join(skipped)}")
        if result.cancelled:
            lines.append("cancelled: calls in flight were cancelled; finished answers are kept")
        lines.append(f"answers: {result.out_dir}")
        lines.append(
            f"workflow id {result.workflow_id}: "
            f"`callboard metrics --workflow {result.workflow_id}` reports on this run alone"
        )
        return lines

    def _render_text(self, renderable: Any) -> str:
        buffer = io.StringIO()
        Console(file=buffer, width=self._width, color_system=None, highlight=False).print(
            renderable
        )
        return buffer.getvalue().rstrip("\n")


def _provider(view: TaskView) -> str:
    return view.provider or "-"


def _state(view: TaskView) -> str:
    if view.state in ("fell back", "retrying") and view.provider:
        return f"{view.state} to {view.provider}" if view.state == "fell back" else view.state
    if view.state == "backing off" and view.detail:
        return f"backing off {view.detail}"
    return view.state


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"
