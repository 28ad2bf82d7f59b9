"""``callboard metrics``: reports, trends and rebuilds of the metrics store."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from runtime._config.load import load_config
from runtime._config.schema import Config
from runtime._errors import StoreError, UsageError
from runtime._metrics.audit_rebuild import rebuild
from runtime._metrics.report_text import render_report
from runtime._metrics.store import Filters, MetricsStore
from runtime._metrics.store_open import StoreAddress, open_store
from runtime._metrics.timespec import window

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run_report(args: argparse.Namespace) -> int:
    """Print a report."""
    store, since, until = _open(args)
    try:
        report = store.report(since, until, args.by, _filters(args))
    finally:
        store.close()
    print(
        report.to_json() if args.json else report.to_csv() if args.csv else render_report(report),
        end="",
    )
    return EXIT_OK


def run_trend(args: argparse.Namespace) -> int:
    """Print a trend, and draw it when asked."""
    from runtime._metrics.trend_chart import render_trend_png, render_trend_text  # noqa: PLC0415

    store, since, until = _open(args)
    try:
        trend = store.trend(since, until, args.every, args.by, _filters(args))
    finally:
        store.close()
    if args.json:
        print(trend.to_json())
    elif args.csv:
        print(trend.to_csv(), end="")
    else:
        print(render_trend_text(trend, width=shutil.get_terminal_size().columns), end="")
    if args.chart is not None:
        written = render_trend_png(trend, args.chart)
        print(f"chart written to {written}", file=sys.stderr)
    return EXIT_OK


def run_rebuild(args: argparse.Namespace) -> int:
    """Rebuild the store from audit logs."""
    config = load_config(args.config)
    where = _store_address(config)
    missing = [str(f) for f in args.from_audit if not f.is_file()]
    if missing:
        raise StoreError(f"no audit log at {', '.join(missing)}")
    if isinstance(where, str):
        return _rebuild_database(where, args)
    path = where
    if path.exists():
        if not args.replace:
            raise StoreError(
                f"the metrics store {path} already exists; pass --replace to move it aside "
                "and rebuild it from the audit log"
            )
        aside = path.with_name(f"{path.name}.{int(time.time())}.bak")
        for suffix in ("", "-wal", "-shm"):
            old = Path(f"{path}{suffix}")
            if old.exists():
                old.rename(Path(f"{aside}{suffix}"))
        print(f"moved the old store to {aside}", file=sys.stderr)
    return _rebuild_into(open_store(path), str(path), args)


def _rebuild_database(url: str, args: argparse.Namespace) -> int:
    """Rebuild a PostgreSQL store: add the rows it lacks, or (``--replace``) all of them.

    A fleet's store holds rows from many processes, so a rebuild from some of their audit
    logs adds what the store lacks (rows it holds are skipped, never counted twice);
    ``--replace`` empties it first, in one transaction.
    """
    store = open_store(url)
    if args.replace:
        store.clear()
        print(f"emptied {store.label}", file=sys.stderr)
    return _rebuild_into(store, store.label, args)


def _rebuild_into(store: MetricsStore, label: str, args: argparse.Namespace) -> int:
    try:
        count = rebuild(store, args.from_audit)
    finally:
        store.close()
    skipped = f"; {count.skipped_lines} unreadable lines skipped" if count.skipped_lines else ""
    print(f"rebuilt {label}: {count.tasks} tasks, {count.attempts} attempts{skipped}")
    return EXIT_OK


def _open(args: argparse.Namespace) -> tuple[MetricsStore, float, float]:
    config = load_config(args.config)
    try:
        since, until = window(
            time.time(),
            since=args.since or (None if args.start else args.default_since),
            start=args.start,
            end=args.end,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return open_store(_store_address(config), readonly=True), since, until


def _store_address(config: Config) -> StoreAddress:
    path = config.metrics_store()
    if path is None:
        raise StoreError(f'{config.source}: there is no metrics store ([metrics] path = "off")')
    return path


def _filters(args: argparse.Namespace) -> Filters:
    return Filters(args.role, args.provider, args.workflow)
