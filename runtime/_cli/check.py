"""``callboard check``: the config, every provider's credentials, and what can be served."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from runtime._board.board import Callboard
from runtime._cli.casting import role_lines, workflow_roles
from runtime._cli.stderr_level import warn
from runtime._config.load import load_config
from runtime._config.schema import Config, SharedSettings
from runtime._errors import MissingExtraError, StoreError
from runtime._metrics.store_postgres import probe, safe_url
from runtime._transport.io_loop import IoLoop
from runtime._transport.shared_store import RedisStore, SharedStoreUnavailableError

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
    store_line, store_warning = _metrics_store(config, reach=not args.offline)
    warnings += store_warning
    shared_line = None
    if config.shared.redis_url() is not None and not args.offline:
        shared_line, shared_problem = shared_store_line(config.shared)
        warnings += [shared_problem] if shared_problem else []
    if args.json:
        summary = _summary_object(config, checked=not args.offline, unchecked=sorted(unchecked))
        summary["metrics_store"] = store_line.strip().removeprefix("metrics store: ")
        summary["shared_store"] = shared_line.strip() if shared_line else None
        summary["warnings"] = warnings
        print(orjson.dumps(summary).decode())
    else:
        print(_summary(config, checked=not args.offline, unchecked=sorted(unchecked)))
        print(store_line)
        if shared_line:
            print(shared_line)
        for text in warnings:
            warn(text)
    return EXIT_CONFIG if args.strict and warnings else EXIT_OK


def shared_store_line(shared: SharedSettings) -> tuple[str, str | None]:
    """Return the summary line for ``[shared]`` and, if Redis is unreachable, the warning."""
    io = IoLoop("callboard-check")
    store = RedisStore(shared, io)
    try:
        status = store.status()
    except SharedStoreUnavailableError as error:
        line = f"  shared store: {shared.shown_url()} unreachable"
        problem = (
            f"[shared] {shared.shown_url()}: {error}; each process keeps a local share of "
            "every limit until it answers (start Redis, or check url)"
        )
        return line, problem
    finally:
        store.close()
        io.close()
    line = (
        f"  shared store: {shared.shown_url()} reachable, Redis {status.version}, "
        f"{status.latency_ms:.1f} ms, namespace {shared.namespace}"
    )
    return line, None


def _unchecked_providers(config: Config) -> dict[str, str]:
    """Start a board (which checks every provider); return those left unchecked, and why."""
    with Callboard(config, check=True) as board:
        standing = board.health()
    return {pid: h.reason for pid, h in standing.items() if h.state == "unchecked"}


def _metrics_store(config: Config, *, reach: bool) -> tuple[str, list[str]]:
    """Say where the metrics store is; reach a PostgreSQL one (its version, a round trip).

    An unreachable database is a warning: tasks still run, their rows wait in memory and
    the audit log keeps them all.
    """
    url = config.metrics.url
    if url is None:
        path = config.metrics_path()
        return f"  metrics store: {path or 'off (live statistics only)'}", []
    if not reach:
        return f"  metrics store: {safe_url(url)} (not reached: --offline)", []
    try:
        found = probe(url)
    except (StoreError, MissingExtraError) as exc:
        line = f"  metrics store: {safe_url(url)} (unreachable)"
        return line, [f"{exc}; tasks still run, and their rows wait in memory meanwhile"]
    line = (
        f"  metrics store: {safe_url(url)} (PostgreSQL {found.version}, reachable, "
        f"round trip {found.latency_ms:.1f} ms)"
    )
    return line, []


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
