"""Rebuilding the metrics store from the audit log, after a crash or a lost file.

The audit log's ``attempt`` and ``task_finished`` lines carry every field of the store's
rows (`AttemptRow`, `TaskRow`), so reading them back gives the rows the metrics actor
would have written, and the same reports.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runtime._metrics.store import MetricsStore
from runtime._rows import AttemptRow, TaskRow

BATCH = 10_000


@dataclass(slots=True)
class RebuildCount:
    """What a rebuild read and wrote."""

    tasks: int = 0
    attempts: int = 0
    skipped_lines: int = 0


def read_rows(lines: Iterable[str], count: RebuildCount) -> Iterator[TaskRow | AttemptRow]:
    """Yield the rows recorded in audit ``lines``; count lines that cannot be read.

    A line cut short by a crash, or one that is not an audit record, is skipped.
    """
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            event = record.get("event")
            if event == "attempt":
                yield AttemptRow.from_audit(record)
            elif event == "task_finished":
                yield TaskRow.from_audit(record)
        except (ValueError, TypeError, KeyError, AttributeError):
            count.skipped_lines += 1


def rebuild(store: MetricsStore, audit_files: Iterable[Path]) -> RebuildCount:
    """Write every row found in ``audit_files`` to ``store`` (expected empty).

    A task's attempts are written in the same batch as the task, as the metrics actor
    writes them; attempts of tasks that never finished (a crash) are written at the end.
    """
    count = RebuildCount()
    waiting: dict[str, list[AttemptRow]] = {}
    tasks: list[TaskRow] = []
    attempts: list[AttemptRow] = []
    for path in audit_files:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for row in read_rows(lines, count):
                if isinstance(row, AttemptRow):
                    waiting.setdefault(row.task_id, []).append(row)
                    continue
                tasks.append(row)
                attempts.extend(waiting.pop(row.task_id, []))
                if len(tasks) + len(attempts) >= BATCH:
                    _flush(store, tasks, attempts, count)
    attempts.extend(a for rows in waiting.values() for a in rows)
    _flush(store, tasks, attempts, count)
    return count


def _flush(
    store: MetricsStore, tasks: list[TaskRow], attempts: list[AttemptRow], count: RebuildCount
) -> None:
    if not tasks and not attempts:
        return
    store.write(tasks, attempts)
    count.tasks += len(tasks)
    count.attempts += len(attempts)
    tasks.clear()
    attempts.clear()
