"""``callboard ask`` and ``models``: the commands that start a board to ask a provider."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runtime._board.board import Callboard
from runtime._chat import AttemptRecord, Reply, StreamDelta, StreamEnd, StreamRestart
from runtime._cli.casting import role_providers, unconfigured_role
from runtime._cli.stderr_level import warn
from runtime._config.load import load_config
from runtime._errors import (
    BoardClosedError,
    CallboardError,
    ConfigError,
    DeadlineExceededError,
    ProviderError,
    StartupError,
    StreamBrokenError,
    TaskCancelledError,
    TaskFailedError,
    UnknownRoleError,
    UsageError,
)
from runtime._structured import Schema

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
_KINDS: tuple[tuple[type[CallboardError], str], ...] = (
    (DeadlineExceededError, "deadline"),
    (TaskCancelledError, "cancelled"),
    (StreamBrokenError, "stream_broken"),
    (TaskFailedError, "failed"),
    (UnknownRoleError, "unknown_role"),
    (ConfigError, "config"),
    (StartupError, "startup"),
    (UsageError, "usage"),
    (BoardClosedError, "board_closed"),
)
"""The ``kind`` of each error in ``ask --json``'s error object (the first match wins)."""


def ask_command(args: argparse.Namespace) -> int:
    """Ask a role one question and print the answer (or, with ``--json``, the error)."""
    try:
        return _ask(args)
    except CallboardError as exc:
        setup = isinstance(exc, ConfigError | StartupError | UsageError)
        if args.json:
            print(json.dumps({"error": error_object(exc)}, ensure_ascii=False))
            return EXIT_CONFIG if setup else EXIT_FAILED
        if not isinstance(exc, TaskFailedError | UnknownRoleError | BoardClosedError):
            raise
        print(f"\ncallboard: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _ask(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    prompt = read_prompt(args.prompt)
    unconfigured = unconfigured_role(config, args.role)
    if unconfigured is not None:
        warn(unconfigured)
    options: dict[str, Any] = {
        "system": args.system,
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
        "deadline_s": args.deadline,
        "tags": args.tag,
        "tenant": args.tenant,
        "session": args.session,
    }
    if args.schema:
        options["output"] = read_schema(args.schema)
    with Callboard(config, check_only=role_providers(config, args.role)) as board:
        if args.stream and not args.json and not args.schema:
            reply = _print_stream(board, args.role, prompt, options, live=sys.stdout.isatty())
        else:
            reply = board.ask(args.role, prompt, **options)
    if args.json:
        print(json.dumps(reply.to_dict(), ensure_ascii=False))
    else:
        if options.get("output") is not None:
            print(json.dumps(reply.parsed, ensure_ascii=False, indent=2))
        elif not args.stream:
            print(reply.text)
        tries = len(reply.attempts)
        print(
            f"[{reply.provider} ({reply.model}), {tries} attempt{'s' * (tries != 1)}, "
            f"{reply.latency_ms:.0f} ms]",
            file=sys.stderr,
        )
    return EXIT_OK


def read_schema(given: str) -> Schema:
    """Return the JSON Schema in the file ``given``.

    Raises:
        UsageError: the file cannot be read, is not JSON, or is not a JSON Schema object.
    """
    path = Path(given).expanduser()
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the schema file {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"the schema file {path} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise UsageError(f"the schema file {path} holds no JSON Schema object")
    return Schema(schema, name=path.stem)


def read_prompt(given: str) -> str:
    """Return the prompt: ``-`` reads standard input, ``@path`` a file, else it is the text.

    Raises:
        UsageError: the file cannot be read, or is not UTF-8 text.
    """
    if given == "-":
        return sys.stdin.read()
    if not given.startswith("@"):
        return given
    path = Path(given[1:]).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the prompt file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read the prompt file {path}: it is not UTF-8 text") from None


def _print_stream(
    board: Callboard, role: str, prompt: str, options: dict[str, Any], *, live: bool
) -> Reply:
    """Print the answer as it arrives on a terminal; into a pipe, only the whole answer.

    A provider that breaks off mid-stream makes the text so far void: a terminal has
    shown it already, so the restart starts a new line; a pipe gets only the answer.
    """
    for event in board.stream(role, prompt, on_broken="restart", **options):
        if isinstance(event, StreamDelta):
            if live:
                sys.stdout.write(event.text)
                sys.stdout.flush()
        elif isinstance(event, StreamRestart):
            lead = "\n" if live else ""
            print(f"{lead}[{event.reason}; starting again with {event.provider}]", file=sys.stderr)
        elif isinstance(event, StreamEnd):
            print("" if live else event.reply.text)
            return event.reply
    raise BoardClosedError("the stream ended without its reply")


def error_object(exc: CallboardError) -> dict[str, Any]:
    """Return what ``ask --json`` prints for an error: its kind, message and attempts."""
    kind = next((name for cls, name in _KINDS if isinstance(exc, cls)), "error")
    body: dict[str, Any] = {"kind": kind, "message": str(exc), "attempts": []}
    if isinstance(exc, TaskFailedError):
        body |= {
            "role": exc.role,
            "task_id": exc.task_id,
            "reason": exc.reason,
            "attempts": [a.to_dict() for a in exc.attempts if isinstance(a, AttemptRecord)],
            "advice": list(exc.advice),
        }
        if isinstance(exc, StreamBrokenError):
            body["partial_text"] = exc.partial_text
    elif isinstance(exc, UnknownRoleError):
        body |= {"role": exc.role, "roles": list(exc.known)}
    elif isinstance(exc, ConfigError | StartupError):
        body["problems"] = [str(problem) for problem in exc.problems]
    return body


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
    if args.json:
        print(json.dumps({"provider": args.provider, "models": sorted(names)}))
    else:
        print("\n".join(sorted(names)))
    return EXIT_OK
