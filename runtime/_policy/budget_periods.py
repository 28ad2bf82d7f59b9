"""A budget's period: when the one holding a moment began and when it ends (UTC boundaries)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runtime._config.budgets import Period


def period_bounds(period: Period, now: float) -> tuple[float, float | None]:
    """Return the Unix start and end of the ``period`` holding ``now`` (``total``: no end).

    Hours, days and months begin on their UTC boundary; weeks on Monday at 00:00 UTC.
    """
    if period == "total":
        return float("-inf"), None
    moment = datetime.fromtimestamp(now, UTC)
    if period == "hour":
        start = moment.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1)
    elif period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
    elif period == "week":
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        year, month = divmod(start.month, 12)
        end = start.replace(year=start.year + year, month=month + 1)
    return start.timestamp(), end.timestamp()
