"""How much the command line says on standard error: ``-q``, ``-v``, or ``CALLBOARD_LOG``.

``error`` (``-q``): errors only; ``warning`` (the default): warnings too; ``info`` (``-v``):
what a command is doing as well. Standard output carries only a command's answer (text or
``--json``); the audit log stays the JSON record of every call.
"""

from __future__ import annotations

import os
import sys

LEVELS = ("error", "warning", "info")
_level = ["warning"]


def set_level(verbose: int, quiet: int, environ: dict[str, str] | None = None) -> str | None:
    """Set the level from the flags, else ``CALLBOARD_LOG``; return a problem, if any."""
    given = (environ if environ is not None else os.environ).get("CALLBOARD_LOG", "").lower()
    if verbose or quiet:
        _level[0] = "info" if verbose > quiet else "error" if quiet > verbose else "warning"
        return None
    if given and given not in LEVELS:
        return f"CALLBOARD_LOG={given} is not a level; one of {', '.join(LEVELS)}"
    _level[0] = given or "warning"
    return None


def shows(level: str) -> bool:
    """Whether messages of ``level`` go to standard error."""
    return LEVELS.index(level) <= LEVELS.index(_level[0])


def warn(text: str) -> None:
    """Print one warning line on standard error (unless ``-q``)."""
    if shows("warning"):
        print(f"callboard: warning: {text}", file=sys.stderr)


def info(text: str) -> None:
    """Print one line of what is going on, on standard error (with ``-v``)."""
    if shows("info"):
        print(f"callboard: {text}", file=sys.stderr)
