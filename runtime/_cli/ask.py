"""``callboard check``, ``ask`` and ``models``: the commands that start a board."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from runtime._board.board import Callboard
from runtime._chat import Reply, StreamDelta, StreamEnd, StreamRestart
from runtime._config.load import load_config
from runtime._config.schema import Config
from runtime._errors import BoardClosedError, ProviderError, TaskFailedError, UnknownRoleError

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def check_command(args: argparse.Namespace) -> int:
    """Validate the config and, unless ``--offline``, every provider's credentials."""
    config = load_config(args.config)
    if not args.offline:
        Callboard(config, check=True).close()
    print(_summary(config, checked=not args.offline))
    return EXIT_OK


def _summary(config: Config, *, checked: bool) -> str:
    lines = [f"{config.source}: ok"]
    for pid, settings in sorted(config.providers.items()):
        lines.append(f"  provider {pid}: {settings.type}, model {settings.model}")
    for role in sorted(config.roles):
        chain = config.chain(role) or ()
        lines.append(f"  role {role}: {' -> '.join(chain)}")
    if config.default_provider:
        lines.append(f"  default provider: {config.default_provider}")
    lines.append("  credentials: checked" if checked else "  credentials: not checked (--offline)")
    return "\n".join(lines)


def ask_command(args: argparse.Namespace) -> int:
    """Ask a role one question and print the answer."""
    options = {
        "system": args.system,
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
        "deadline_s": args.deadline,
    }
    with Callboard.from_config(args.config) as board:
        try:
            if args.stream and not args.json:
                reply = _print_stream(board, args.role, args.prompt, options)
            else:
                reply = board.ask(args.role, args.prompt, **options)
        except (TaskFailedError, UnknownRoleError, BoardClosedError) as exc:
            print(f"\ncallboard: {exc}", file=sys.stderr)
            return EXIT_FAILED
    if args.json:
        print(json.dumps(reply.to_dict(), ensure_ascii=False))
    else:
        if not args.stream:
            print(reply.text)
        tries = len(reply.attempts)
        print(
            f"[{reply.provider} ({reply.model}), {tries} attempt{'s' * (tries != 1)}, "
            f"{reply.latency_ms:.0f} ms]",
            file=sys.stderr,
        )
    return EXIT_OK


def _print_stream(board: Callboard, role: str, prompt: str, options: dict[str, Any]) -> Reply:
    """Print the answer as it arrives (restarting the line if a provider breaks off)."""
    for event in board.stream(role, prompt, on_broken="restart", **options):
        if isinstance(event, StreamDelta):
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, StreamRestart):
            print(f"\n[{event.reason}; starting again with {event.provider}]", file=sys.stderr)
        elif isinstance(event, StreamEnd):
            print()
            return event.reply
    raise BoardClosedError("the stream ended without its reply")


def models_command(args: argparse.Namespace) -> int:
    """Print the models a provider offers."""
    config = load_config(args.config)
    if args.provider not in config.providers:
        known = ", ".join(sorted(config.providers))
        print(f"callboard: no provider {args.provider!r}; configured: {known}", file=sys.stderr)
        return EXIT_CONFIG
    with Callboard(config, check=False) as board:
        try:
            names = board.models(args.provider)
        except ProviderError as exc:
            print(f"callboard: {args.provider}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    print("\n".join(sorted(names)))
    return EXIT_OK
