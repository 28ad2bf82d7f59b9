from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime._audit import MASK, AuditLog, Redactor

pytestmark = pytest.mark.timeout(5)


def test_configured_secrets_are_masked_anywhere_in_text():
    """A key appearing inside any text is replaced by the mask."""
    redactor = Redactor(["supersecretvalue"])
    assert redactor.text("key=supersecretvalue;") == f"key={MASK};"


def test_key_shaped_tokens_are_masked_even_when_unknown():
    """OpenAI-, Google- and bearer-shaped tokens are masked whether configured or not."""
    redactor = Redactor()
    text = "Incorrect API key provided: sk-proj-abc123456789. AIzaSyA1234567890abcdefghij"
    assert "sk-proj" not in redactor.text(text)
    assert "AIza" not in redactor.text(text)
    assert "abc" not in redactor.text("Authorization: Bearer abcdefghijkl")


def test_secret_headers_are_masked_in_events():
    """Authorization, x-api-key and x-goog-api-key never reach a log line."""
    redactor = Redactor()
    event = {
        "headers": {"Authorization": "Bearer x", "x-api-key": "k", "x-goog-api-key": "g", "a": "b"},
        "x-api-key": "top",
    }
    out = redactor(None, "info", event)
    assert out["headers"] == {
        "Authorization": MASK,
        "x-api-key": MASK,
        "x-goog-api-key": MASK,
        "a": "b",
    }
    assert out["x-api-key"] == MASK


def test_the_audit_log_writes_json_lines_without_secrets(tmp_path: Path):
    """Each event is one JSON object on its own line, redacted, with a timestamp."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, Redactor(["hunter2hunter2"]))
    log.event("attempt", provider="gpt", message="bad key hunter2hunter2", n=3)
    log.event("task_finished", outcome="ok")
    log.close()
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == ["attempt", "task_finished"]
    assert records[0]["message"] == f"bad key {MASK}"
    assert records[0]["n"] == 3
    assert "ts" in records[0]
    assert "hunter2hunter2" not in path.read_text()


def test_new_secrets_can_be_added_after_a_reload():
    """Keys from a reloaded config are masked too."""
    redactor = Redactor(["first-secret"])
    redactor.add(["second-secret"])
    assert redactor.text("first-secret second-secret") == f"{MASK} {MASK}"
