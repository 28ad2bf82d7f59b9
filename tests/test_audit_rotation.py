"""The audit log of a long-running daemon: reopened after logrotate, rotated when asked.

Every test renames or rotates real files and reads them back line by line.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest
from support import KEYS, config_toml

from runtime import ConfigError, parse_config

pytestmark = pytest.mark.timeout(30)


def records(path: Path) -> list[dict]:
    """Return the audit records in one file (every line must be a whole JSON object)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def finished(path: Path) -> list[str]:
    return [r["task_id"] for r in records(path) if r["event"] == "task_finished"]


def start(fakes, deployment, audit: str = ""):
    only = fakes("openai")
    text = config_toml(deployment, {"only": only}, {"coder": ["only"]})
    deployment.write(text.replace("[audit]\n", f"[audit]\n{audit}"))
    return deployment.board()


def test_a_reload_reopens_an_audit_file_renamed_by_logrotate(fakes, deployment):
    """After a rename and a reload, new lines go to a new file at the configured path."""
    board = start(fakes, deployment)
    first = board.ask("coder", "before the rotation").task_id
    rotated = deployment.audit_path.with_name("audit.jsonl.1")
    deployment.audit_path.rename(rotated)
    board.reload()
    second = board.ask("coder", "after the rotation").task_id
    board.close()
    assert finished(rotated) == [first]
    assert finished(deployment.audit_path) == [second]
    reopened = [r for r in records(deployment.audit_path) if r["event"] == "audit_reopened"]
    assert reopened[0]["path"] == str(deployment.audit_path)
    assert stat.S_IMODE(deployment.audit_path.stat().st_mode) == 0o600


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="SIGHUP is POSIX-only")
def test_sighup_reopens_the_audit_file_even_when_the_new_config_is_rejected(fakes, deployment):
    """The SIGHUP logrotate sends moves the log to the new file, whatever the reload decides."""
    board = start(fakes, deployment)
    outcomes: list[object] = []
    done = threading.Event()
    previous = signal.getsignal(signal.SIGHUP)
    try:
        board.reload_on_sighup(lambda outcome: (outcomes.append(outcome), done.set()))
        deployment.audit_path.rename(deployment.audit_path.with_name("audit.jsonl.1"))
        deployment.path.write_text(deployment.path.read_text() + "\n[retry]\nattempts = 0\n")
        os.kill(os.getpid(), signal.SIGHUP)
        assert done.wait(5)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert isinstance(outcomes[0], ConfigError)
    after = board.ask("coder", "after the rotation").task_id
    board.close()
    events = [r["event"] for r in records(deployment.audit_path)]
    assert events[:2] == ["audit_reopened", "config_rejected"]
    assert finished(deployment.audit_path) == [after]


def test_max_bytes_rotates_the_file_and_keeps_the_newest(fakes, deployment):
    """Past max_bytes the file moves to .1 (then .2...), at most `keep` of them, whole lines."""
    board = start(fakes, deployment, "max_bytes = 3000\nkeep = 2\n")
    asked = [board.ask("coder", f"task {i} with {KEYS['openai']}").task_id for i in range(12)]
    board.close()
    files = sorted(deployment.audit_path.parent.glob("audit.jsonl*"))
    assert [f.name for f in files] == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    kept = [task for path in reversed(files) for task in finished(path)]
    assert kept == asked[-len(kept) :]
    assert len(kept) < len(asked)
    for path in files:
        assert KEYS["openai"] not in path.read_text()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(path.stat().st_size <= 3000 for path in files[1:])


def test_rotate_every_day_moves_yesterdays_file_aside(fakes, deployment):
    """A file last written two days ago is renamed with its date before today's lines."""
    deployment.audit_path.write_text('{"event": "from two days ago"}\n')
    two_days_ago = time.time() - 2 * 86400
    os.utime(deployment.audit_path, (two_days_ago, two_days_ago))
    board = start(fakes, deployment, 'rotate_every = "day"\n')
    today = board.ask("coder", "today").task_id
    board.close()
    (old,) = deployment.audit_path.parent.glob("audit.jsonl.*")
    assert old.name.startswith("audit.jsonl.20")
    assert [r["event"] for r in records(old)] == ["from two days ago"]
    assert finished(deployment.audit_path) == [today]


@pytest.mark.parametrize(
    ("audit", "problem"),
    [
        ('max_bytes = 1000\nrotate_every = "day"\n', "audit.rotate_every: .*not both"),
        ('path = "-"\nmax_bytes = 1000\n', "audit.max_bytes: .*needs an audit file"),
        ('rotate_every = "fortnight"\n', "audit.rotate_every"),
        ("keep = 0\n", "audit.keep"),
    ],
)
def test_rotation_settings_that_cannot_work_are_config_errors(audit, problem):
    """Two kinds of rotation at once, or rotating standard error, are refused at load."""
    text = f'[audit]\n{audit}[providers.x]\ntype = "ollama"\nmodel = "m"\n'
    with pytest.raises(ConfigError, match=problem):
        parse_config(text, environ={})
