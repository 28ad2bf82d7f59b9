"""``callboard run`` (a workflow on the configured providers) and ``callboard demo``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from runtime._board.board import Callboard
from runtime._cli.demo import GOAL, SimulatedProviders, start_simulated, write_config
from runtime._config.load import load_config
from runtime._config.schema import Config
from runtime._config.workflows import StageSettings
from runtime._errors import UsageError
from runtime._metrics.report_text import render_report
from runtime._workflows.display import WorkflowDisplay
from runtime._workflows.run import TaskView, WorkflowResult, new_workflow_id, run_workflow

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def add_run_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run`` and ``demo`` to the command line."""
    run = commands.add_parser(
        "run",
        help="run a workflow (clarify, plan, code, review) for a goal",
        description="Run a workflow whose stages each name a role; each stage's answer is "
        "printed and written to --out.",
    )
    run.add_argument("goal")
    run.add_argument("--config", default="config.toml", metavar="PATH")
    run.add_argument("--out", type=Path, metavar="DIR", help="default: callboard-runs/<id>")
    run.add_argument("--workflow", default="default", metavar="NAME")
    run.add_argument("--plain", action="store_true", help="one line per change, no live table")
    run.set_defaults(run=run_command)
    demo = commands.add_parser(
        "demo",
        help="run the default workflow on simulated providers (no keys needed)",
    )
    demo.add_argument("--dir", type=Path, default=Path("callboard-demo"), metavar="DIR")
    demo.add_argument("--plain", action="store_true", help="one line per change, no live table")
    demo.set_defaults(run=demo_command)


def run_command(args: argparse.Namespace) -> int:
    """Run a workflow on the configured providers."""
    config = load_config(args.config)
    stages = config.workflow_stages(args.workflow)
    if stages is None:
        names = ", ".join(["default", *sorted(config.workflow)])
        raise UsageError(f'no workflow "{args.workflow}" in {config.source}; there are: {names}')
    workflow_id = new_workflow_id()
    out_dir = args.out or Path("callboard-runs") / workflow_id
    with Callboard(config) as board:
        display = _display(board, args.plain, label="")
        result = _run(board, args.goal, stages, out_dir, display, workflow_id)
    return _status(result)


def demo_command(args: argparse.Namespace) -> int:
    """Run the default workflow on simulated providers, with an outage part-way."""
    providers = start_simulated()
    try:
        config_path = write_config(args.dir, providers)
        config = load_config(config_path)
        stages = config.workflow_stages("default")
        assert stages is not None  # noqa: S101 - the default workflow is built in
        with Callboard(config) as board:
            display = _display(board, args.plain, label="SIMULATED")
            _introduce(display, providers, config_path)
            scenario = _Scenario(display, providers)
            workflow_id = new_workflow_id()
            result = _run(
                board, GOAL, stages, args.dir / "answers" / workflow_id, scenario, workflow_id
            )
            display.say(render_report(board.metrics(since="1h", workflow=workflow_id)))
        _conclude(display, config)
    finally:
        providers.stop()
    return _status(result)


def _display(board: Callboard, plain: bool, *, label: str) -> WorkflowDisplay:
    live = sys.stdout.isatty() and not plain
    return WorkflowDisplay(out=sys.stdout, live=live, health=board.health, label=label)


def _run(  # noqa: PLR0917 - private; the run's six inputs
    board: Callboard,
    goal: str,
    stages: dict[str, StageSettings],
    out_dir: Path,
    listener: WorkflowDisplay | _Scenario,
    workflow_id: str,
) -> WorkflowResult:
    async def main() -> WorkflowResult:
        return await run_workflow(
            board, goal, stages=stages, out_dir=out_dir, listener=listener, workflow_id=workflow_id
        )

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        print("interrupted: calls in flight were cancelled", file=sys.stderr)
        raise


def _status(result: WorkflowResult) -> int:
    if result.cancelled:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_FAILED


class _Scenario:
    """The demo's listener: the display, plus trouble once the plan is known."""

    def __init__(self, display: WorkflowDisplay, providers: SimulatedProviders) -> None:
        self._display = display
        self._providers = providers
        self._troubled = False

    def started(self, workflow_id: str, goal: str, views: Sequence[TaskView]) -> None:
        self._display.started(workflow_id, goal, views)

    def changed(self, view: TaskView) -> None:
        self._display.changed(view)

    def answered(self, view: TaskView) -> None:
        self._display.answered(view)
        if view.stage == "plan" and not self._troubled:
            self._troubled = True
            self._providers.trouble()
            self._display.say(
                "!! the simulated Anthropic provider (claude) goes down, and the simulated "
                "Gemini one starts answering 429 with Retry-After"
            )

    def finished(self, result: WorkflowResult) -> None:
        self._display.finished(result)


def _introduce(display: WorkflowDisplay, providers: SimulatedProviders, config: Path) -> None:
    lines = [
        "callboard demo: every provider below is SIMULATED on this machine (no keys, no network)",
        f"  claude  Anthropic Messages API    {providers.claude.base_url}",
        f"  gpt     OpenAI chat completions   {providers.gpt.base_url}",
        f"  gemini  Google Gemini API         {providers.gemini.base_url}",
        f"config: {config} (roles: clarifier, planner, coder, reviewer)",
        f"goal: {GOAL}",
        time.strftime("started %H:%M:%S"),
    ]
    for line in lines:
        display.say(line)


def _conclude(display: WorkflowDisplay, config: Config) -> None:
    lines = [
        f"audit log: {config.audit_path()}",
        (
            f"metrics store: {config.metrics_path()}  (try: callboard metrics --config "
            f"{config.source} --since 1h)"
        ),
        "to use real providers: export OPENAI_API_KEY, ANTHROPIC_API_KEY and GEMINI_API_KEY,",
        (
            'then run `callboard check` and `callboard run "your goal"` with the shipped '
            "config.toml (its keys are ${VAR} references to those variables)"
        ),
    ]
    for line in lines:
        display.say(line)
