"""Serve one fake provider from the command line, until killed.

``python -m runtime.testing serve --protocol openai --port 0 --latency 0.2 --key sk-test``
prints the API root (``http://127.0.0.1:PORT/v1``) on one line once it is listening, then
serves until it gets SIGINT or SIGTERM. A benchmark or ``callboard demo`` runs it as a
subprocess and reads that line.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from runtime.testing._registry import FAKES


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="python -m runtime.testing")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve one fake provider on 127.0.0.1")
    serve.add_argument("--protocol", choices=sorted(FAKES), required=True)
    serve.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    serve.add_argument("--key", action="append", help="an accepted key (repeatable; none: any)")
    serve.add_argument("--rpm", type=int, help="a requests-per-minute limit to enforce")
    serve.add_argument("--model", action="append", help="a model offered (repeatable)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM; return the exit status."""
    args = parse_args(argv)
    fake = FAKES[args.protocol](
        keys=args.key, models=args.model, latency_s=args.latency, rpm=args.rpm, port=args.port
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with fake:
        sys.stdout.write(fake.base_url + "\n")
        sys.stdout.flush()
        stopping.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
