"""``callboard run``: a workflow on the configured providers, shown as it goes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from runtime._board.board import Callboard
from runtime._cli.casting import unconfigured_role, warn, workflow_roles
from runtime._config.load import load_config
from runtime._config.workflows import StageSettings
from runtime._errors import UsageError
from runtime._workflows.display import WorkflowDisplay
from runtime._workflows.run import (
    WorkflowListener,
    WorkflowResult,
    new_workflow_id,
    run_workflow,
)

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def run_command(args: argparse.Namespace) -> int:
    """Run a workflow on the configured providers."""
    config = load_config(args.config)
    stages = config.workflow_stages(args.workflow)
    if stages is None:
        names = ", ".join(["default", *sorted(config.workflow)])
        raise UsageError(f'no workflow "{args.workflow}" in {config.source}; there are: {names}')
    (roles,) = workflow_roles(config, [args.workflow])
    if roles.unserved:
        raise UsageError(roles.problems(config)[0])
    for role in roles.by_default:
        message = unconfigured_role(config, role)
        if message is not None:
            warn(message)
    workflow_id = new_workflow_id()
    out_dir = args.out or Path("callboard-runs") / workflow_id
    with Callboard(config) as board:
        display = display_for(board, args.plain, label="")
        result = run_stages(
            board, args.goal, stages, out_dir, display, workflow_id, tenant=args.tenant
        )
    return status_of(result)


def display_for(board: Callboard, plain: bool, *, label: str) -> WorkflowDisplay:
    live = sys.stdout.isatty() and not plain
    return WorkflowDisplay(out=sys.stdout, live=live, health=board.health, label=label)


def run_stages(  # noqa: PLR0917 - private; the run's six inputs
    board: Callboard,
    goal: str,
    stages: dict[str, StageSettings],
    out_dir: Path,
    listener: WorkflowListener,
    workflow_id: str,
    *,
    tenant: str | None = None,
) -> WorkflowResult:
    async def main() -> WorkflowResult:
        return await run_workflow(
            board,
            goal,
            stages=stages,
            out_dir=out_dir,
            listener=listener,
            workflow_id=workflow_id,
            tenant=tenant,
        )

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        print("interrupted: calls in flight were cancelled", file=sys.stderr)
        raise


def status_of(result: WorkflowResult) -> int:
    if result.cancelled:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_FAILED
