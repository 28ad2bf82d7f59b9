"""The command line's arguments: every command, with its handler named, not imported.

Building the parser imports nothing but argparse, so ``callboard --help`` and
``callboard --version`` start at once; `runtime._cli.main` imports a command's module
only when that command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime._metrics.report import GROUPINGS
from runtime._version import __version__


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``callboard`` and every command."""
    parser = argparse.ArgumentParser(
        prog="callboard",
        description="Route LLM calls across providers by role.",
    )
    parser.add_argument("--version", action="version", version=f"callboard {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="say more on stderr (CALLBOARD_LOG=info)"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=0,
        help="errors only on stderr (CALLBOARD_LOG=error)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _add_board_commands(commands)
    _add_metrics_commands(commands)
    _add_budgets_command(commands)
    _add_run_commands(commands)
    return parser


Commands = argparse._SubParsersAction  # noqa: SLF001 - argparse names no public type for it


def _add_board_commands(commands: Commands[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check", help="validate the config and every provider's credentials"
    )
    _add_config(check)
    check.add_argument("--offline", action="store_true", help="validate the file only")
    check.add_argument(
        "--strict",
        action="store_true",
        help="exit 2 on any warning: a provider in trouble, a workflow role not served",
    )
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(run="runtime._cli.check:check_command")
    ask = commands.add_parser("ask", help="ask a role one question and print the answer")
    ask.add_argument("role")
    ask.add_argument("prompt", help="the prompt; - reads it from stdin, @FILE from a file")
    _add_config(ask)
    ask.add_argument("--system", help="system prompt")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--temperature", type=float)
    ask.add_argument("--max-tokens", type=int)
    ask.add_argument("--deadline", type=float, metavar="S", help="seconds for the whole task")
    ask.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    ask.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="a tag for routing rules"
    )
    ask.add_argument("--tenant", help="whose task it is, for routing rules")
    ask.add_argument("--session", help="a session key (sticky sessions)")
    ask.add_argument(
        "--schema",
        metavar="FILE",
        help="a JSON Schema the answer must match; prints the validated JSON",
    )
    ask.set_defaults(run="runtime._cli.ask:ask_command")
    serve = commands.add_parser(
        "serve",
        help="serve the OpenAI and Anthropic APIs over HTTP (model = a role)",
        description="An HTTP gateway in front of the board: POST /v1/chat/completions, "
        "/v1/embeddings, /v1/messages, GET /v1/models, /health, /ready.",
    )
    _add_config(serve)
    serve.add_argument("--host", help="address to listen on (default: [gateway] host)")
    serve.add_argument("--port", type=int, help="port (default: [gateway] port, 4000)")
    serve.set_defaults(run="runtime._cli.serve:serve_command")
    models = commands.add_parser("models", help="list the models a provider offers")
    models.add_argument("provider")
    _add_config(models)
    models.add_argument("--json", action="store_true", help="print one JSON object")
    models.set_defaults(run="runtime._cli.ask:models_command")
    prices = commands.add_parser(
        "prices", help="what a model (default: every configured one) costs, and from where"
    )
    prices.add_argument("model", nargs="?")
    prices.add_argument("--type", metavar="TYPE", help="price as served by this provider type")
    prices.add_argument("--json", action="store_true", help="print one JSON array")
    _add_config(prices)
    prices.set_defaults(run="runtime._cli.prices:prices_command")


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default="config.toml", metavar="PATH", help="config file (default: config.toml)"
    )


def _add_metrics_commands(commands: Commands[argparse.ArgumentParser]) -> None:
    metrics = commands.add_parser(
        "metrics",
        help="report how each provider does in each role",
        description="Report calls, success, failures, latency, tokens and cost per provider "
        "and role, from the metrics store.",
    )
    _add_report_options(metrics, default_since="24h")
    metrics.set_defaults(run="runtime._cli.metrics:run_report")
    sub = metrics.add_subparsers(metavar="{trend,rebuild}")
    trend = sub.add_parser("trend", help="the same figures per hour or day, as a chart")
    _add_report_options(trend, default_since="7d")
    trend.add_argument("--every", choices=("hour", "day"), default="hour")
    trend.add_argument("--chart", type=Path, metavar="PNG", help="also draw a PNG chart here")
    trend.set_defaults(run="runtime._cli.metrics:run_trend")
    again = sub.add_parser("rebuild", help="rebuild the metrics store from audit logs")
    again.add_argument("--from-audit", type=Path, nargs="+", required=True, metavar="FILE")
    again.add_argument("--config", default="config.toml", metavar="PATH")
    again.add_argument(
        "--replace",
        action="store_true",
        help="move an existing SQLite store aside; empty a PostgreSQL one",
    )
    again.set_defaults(run="runtime._cli.metrics:run_rebuild")


def _add_budgets_command(commands: Commands[argparse.ArgumentParser]) -> None:
    budgets = commands.add_parser(
        "budgets",
        help="print each budget's spend, limit, reset time and forecast",
        description="Print each budget's spend this period (from the metrics store), its "
        "limit, when it resets and the spend forecast for the period's end.",
    )
    _add_config(budgets)
    budgets.add_argument("--json", action="store_true", help="print JSON")
    budgets.set_defaults(run="runtime._cli.budgets:budgets_command")


def _add_report_options(parser: argparse.ArgumentParser, *, default_since: str) -> None:
    parser.add_argument("--config", default="config.toml", metavar="PATH")
    when = parser.add_argument_group("window (UTC)")
    when.add_argument(
        "--since", metavar="SPAN", help=f"e.g. 30m, 24h, 7d (default {default_since})"
    )
    when.add_argument(
        "--from", dest="start", metavar="DATE", help="e.g. 2026-11-20 or 2026-11-20T14:00"
    )
    when.add_argument("--to", dest="end", metavar="DATE")
    parser.add_argument("--role")
    parser.add_argument("--provider")
    parser.add_argument("--workflow", metavar="ID")
    parser.add_argument("--by", choices=GROUPINGS, default="provider,role")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--csv", action="store_true")
    parser.set_defaults(default_since=default_since)


def _add_run_commands(commands: Commands[argparse.ArgumentParser]) -> None:
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
    run.add_argument("--tenant", metavar="ID", help="run it as this tenant's (chains, budgets)")
    run.add_argument(
        "--json",
        action="store_true",
        help="print a JSON summary at the end (the progress, plain, goes to stderr)",
    )
    run.set_defaults(run="runtime._cli.run:run_command")
    demo = commands.add_parser(
        "demo",
        help="run the default workflow on simulated providers (no keys needed)",
    )
    demo.add_argument("--dir", type=Path, default=Path("callboard-demo"), metavar="DIR")
    demo.add_argument("--plain", action="store_true", help="one line per change, no live table")
    demo.set_defaults(run="runtime._cli.demo:demo_command")
