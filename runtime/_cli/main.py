"""The ``callboard`` command line: check a config, ask a role."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from runtime._board.board import Callboard
from runtime._chat import Reply, StreamDelta, StreamRestart
from runtime._cli.metrics import add_metrics_commands
from runtime._cli.run import add_run_commands
from runtime._config.load import load_config
from runtime._config.schema import Config
from runtime._errors import (
    BoardClosedError,
    ConfigError,
    MissingExtraError,
    ProviderError,
    StartupError,
    StoreError,
    TaskFailedError,
    UnknownRoleError,
    UsageError,
)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except (ConfigError, StartupError, UsageError) as exc:
        print(f"callboard: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (StoreError, MissingExtraError, OSError) as exc:
        print(f"callboard: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callboard",
        description="Route LLM calls across providers by role.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check", help="validate the config and every provider's credentials"
    )
    _add_config(check)
    check.add_argument("--offline", action="store_true", help="validate the file only")
    check.set_defaults(run=_check)
    ask = commands.add_parser("ask", help="ask a role one question and print the answer")
    ask.add_argument("role")
    ask.add_argument("prompt")
    _add_config(ask)
    ask.add_argument("--system", help="system prompt")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--temperature", type=float)
    ask.add_argument("--max-tokens", type=int)
    ask.add_argument("--deadline", type=float, metavar="S", help="seconds for the whole task")
    ask.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    models = commands.add_parser("models", help="list the models a provider offers")
    models.add_argument("provider")
    _add_config(models)
    models.set_defaults(run=_models)
    ask.set_defaults(run=_ask)
    add_metrics_commands(commands)
    add_run_commands(commands)
    return parser


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default="config.toml", metavar="PATH", help="config file (default: config.toml)"
    )


def _check(args: argparse.Namespace) -> int:
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


def _ask(args: argparse.Namespace) -> int:
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
        else:
            print()
            return event.reply
    raise BoardClosedError("the stream ended without its reply")


def _models(args: argparse.Namespace) -> int:
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
