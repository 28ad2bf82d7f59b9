"""``callboard budgets``: each budget's spend this period, its limit, reset and forecast.

Read from the metrics store, as a board starting now would count them; reservations of
calls in flight live only inside a running board (`Callboard.budgets`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from runtime._board.budgets import restored_ledger
from runtime._config.load import load_config
from runtime._policy.budget_ledger import BudgetStatus
from runtime._rows import iso

EXIT_OK = 0
COLUMNS = ("budget", "scope", "period", "spent", "limit", "used", "resets", "forecast", "on_exceed")


def budgets_command(args: argparse.Namespace) -> int:
    """Print every budget as it stands."""
    config = load_config(args.config)
    now = time.time()
    ledger, unread = restored_ledger(config, now)
    if unread is not None:
        print(f"callboard: the spend so far could not be read: {unread}", file=sys.stderr)
    statuses = sorted(ledger.statuses(now), key=lambda s: (s.name, s.account))
    if args.json:
        print(json.dumps([_as_json(s) for s in statuses], indent=2))
    elif not statuses:
        print("no budgets are configured: add [[budgets]] or a tenant's budget_usd_day")
    else:
        print(render_budgets(statuses), end="")
    return EXIT_OK


def render_budgets(statuses: list[BudgetStatus]) -> str:
    """Return the budgets as an aligned text table."""
    rows = [COLUMNS, *(_cells(s) for s in statuses)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _cells(status: BudgetStatus) -> tuple[str, ...]:
    name = f"{status.name} [{status.account}]" if status.account else status.name
    used = status.spent_usd / status.limit_usd
    forecast = "-" if status.forecast_usd is None else f"${status.forecast_usd:,.2f}"
    return (
        name,
        status.scope,
        status.period,
        f"${status.spent_usd:,.4f}",
        f"${status.limit_usd:,.2f}",
        f"{used:.0%}",
        "never" if status.resets_at is None else iso(status.resets_at, "seconds"),
        forecast,
        status.on_exceed,
    )


def _as_json(status: BudgetStatus) -> dict[str, object]:
    values = dataclasses.asdict(status)
    values["resets_at"] = None if status.resets_at is None else iso(status.resets_at, "seconds")
    return values
