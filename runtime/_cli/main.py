"""The ``callboard`` command line: parse, import the command's module, run it, map errors.

Each command's module is imported only when it runs (see `runtime._cli.parser`).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from runtime._cli.parser import build_parser
from runtime._cli.stderr_level import set_level
from runtime._errors import (
    ConfigError,
    MissingExtraError,
    StartupError,
    StoreError,
    UsageError,
)

EXIT_FAILED, EXIT_CONFIG = 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    problem = set_level(args.verbose, args.quiet)
    if problem is not None:
        print(f"callboard: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    module, _, name = str(args.run).partition(":")
    command = getattr(importlib.import_module(module), name)
    try:
        status: int = command(args)
    except (ConfigError, StartupError, UsageError) as exc:
        print(f"callboard: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (StoreError, MissingExtraError, OSError) as exc:
        print(f"callboard: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    return status
