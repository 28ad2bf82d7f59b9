"""``callboard serve``: the gateway, speaking OpenAI's and Anthropic's APIs over HTTP."""

from __future__ import annotations

import argparse
import sys

from runtime._board.board import Callboard
from runtime._config.load import load_config
from runtime._gateway.server import run

EXIT_OK = 0


def serve_command(args: argparse.Namespace) -> int:
    """Start a board and serve it until SIGTERM or SIGINT; exit once requests have drained."""
    config = load_config(args.config)
    host = args.host or config.gateway.host
    port = config.gateway.port if args.port is None else args.port
    board = Callboard(config)

    def listening(url: str) -> None:
        roles = ", ".join(sorted(config.roles)) or "none"
        print(f"callboard serve: listening on {url} (roles: {roles})", file=sys.stderr, flush=True)

    run(board, host, port, listening)
    return EXIT_OK
