"""``callboard check``: the config, every provider's credentials, and what can be served."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from runtime._board.board import Callboard
from runtime._cli.casting import role_lines, workflow_roles
from runtime._cli.stderr_level import warn
from runtime._config.load import load_config
from runtime._config.schema import Config

EXIT_OK, EXIT_CONFIG = 0, 2


def check_command(args: argparse.Namespace) -> int:
    """Validate the config and, unless ``--offline``, every provider's credentials.

    A provider in trouble (unreachable, 5xx...) is a warning, as is a workflow whose
    roles cannot all be served; ``--strict`` makes every warning stop the check.
    """
    config = load_config(args.config)
    if args.strict:
        startup = config.startup.model_copy(update={"require_all": True})
        config = config.model_copy(update={"startup": startup})
    unchecked = {} if args.offline else _unchecked_providers(config)
    warnings = [
        f"{pid}: {reason}; started without it, checked again in the background"
        for pid, reason in sorted(unchecked.items())
    ]
    workflows = workflow_roles(config)
    for workflow in workflows:
        warnings += workflow.problems(config)
    if args.json:
        summary = _summary_object(config, checked=not args.offline, unchecked=sorted(unchecked))
        summary["warnings"] = warnings
        print(orjson.dumps(summary).decode())
    else:
        print(_summary(config, checked=not args.offline, unchecked=sorted(unchecked)))
        for text in warnings:
            warn(text)
    return EXIT_CONFIG if args.strict and warnings else EXIT_OK


def _unchecked_providers(config: Config) -> dict[str, str]:
    """Start a board (which checks every provider); return those left unchecked, and why."""
    with Callboard(config, check=True) as board:
        standing = board.health()
    return {pid: h.reason for pid, h in standing.items() if h.state == "unchecked"}


def _summary_object(config: Config, *, checked: bool, unchecked: list[str]) -> dict[str, Any]:
    """The summary as one JSON object (``warnings`` added by the caller)."""
    return {
        "config": config.source,
        "ok": True,
        "providers": [
            {"id": pid, "type": p.type, "model": p.model, "unchecked": pid in unchecked}
            for pid, p in sorted(config.providers.items())
        ],
        "roles": {
            role: {"chain": list(config.chain(role) or ()), "last_resort": config.last_resort(role)}
            for role in sorted(config.roles)
        },
        "default_provider": config.default_provider,
        "workflows": [
            {
                "name": w.name,
                "roles": list(w.roles),
                "unserved": list(w.unserved),
                "by_default": list(w.by_default),
            }
            for w in workflow_roles(config)
        ],
        "credentials": "checked" if checked else "not checked",
        "unchecked": unchecked,
    }


def _summary(config: Config, *, checked: bool, unchecked: list[str]) -> str:
    lines = [f"{config.source}: ok"]
    for pid, settings in sorted(config.providers.items()):
        mark = " (unchecked)" if pid in unchecked else ""
        lines.append(f"  provider {pid}: {settings.type}, model {settings.model}{mark}")
    lines += role_lines(config)
    if config.default_provider:
        lines.append(f"  default provider: {config.default_provider} (every role's last resort)")
    lines += [workflow.summary() for workflow in workflow_roles(config)]
    if not checked:
        lines.append("  credentials: not checked (--offline)")
    elif unchecked:
        names = ", ".join(unchecked)
        lines.append(f"  credentials: checked; unchecked: {names} (see the warnings)")
    else:
        lines.append("  credentials: checked")
    return "\n".join(lines)
