"""Reading report windows from the command line: ``24h``, ``7d``, ``2026-11-20``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def span_s(text: str) -> float:
    """Parse a span such as ``90s``, ``30m``, ``24h``, ``7d`` or ``2w`` into seconds.

    Raises:
        ValueError: the text is not a span.
    """
    match = _SPAN.match(text)
    if not match:
        msg = f"{text!r} is not a span: write a number and a unit, like 30m, 24h, 7d or 2w"
        raise ValueError(msg)
    return float(match.group(1)) * _UNITS[match.group(2)]


def moment(text: str) -> float:
    """Parse an ISO date or date-time (UTC unless it says otherwise) into Unix seconds.

    Raises:
        ValueError: the text is not an ISO date or date-time.
    """
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"{text!r} is not a date: write it as 2026-11-20 or 2026-11-20T14:00"
        raise ValueError(msg) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def window(
    now: float, *, since: str | None = None, start: str | None = None, end: str | None = None
) -> tuple[float, float]:
    """Return ``(since, until)`` Unix seconds from ``--since`` or ``--from``/``--to``.

    ``--since`` counts back from ``now``; ``--from`` defaults to 24 hours before the end,
    and ``--to`` to ``now``.

    Raises:
        ValueError: a value cannot be read, or the window ends before it starts.
    """
    until = moment(end) if end is not None else now
    if since is not None:
        first = until - span_s(since)
    elif start is not None:
        first = moment(start)
    else:
        first = until - 86400
    if first >= until:
        msg = "the window ends before it starts"
        raise ValueError(msg)
    return first, until
