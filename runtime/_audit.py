"""The audit log: one JSON line per event, through structlog, with secrets redacted.

Each board owns its own logger (no global structlog configuration is touched), writing
to standard error or to a file. `Redactor` is a structlog processor that masks every
configured secret, secret-bearing header and key-shaped token in every value; the
runtime also runs provider messages through it before they reach errors or replies.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

MASK = "[REDACTED]"
SECRET_FIELDS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key", "api_key"})
_KEY_SHAPES = re.compile(
    r"(sk-[A-Za-z0-9_\-*]{8,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+[A-Za-z0-9._\-*]{8,})"
)


class Redactor:
    """Masks secrets in text and in structlog event dictionaries."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: frozenset[str] = frozenset()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these values too from now on (a reload may bring new keys)."""
        fresh = {s for s in secrets if len(s) >= 4}  # noqa: PLR2004
        self._secrets = self._secrets | fresh

    def text(self, value: str) -> str:
        """Return ``value`` with every secret and key-shaped token masked."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return _KEY_SHAPES.sub(MASK, value)

    def value(self, value: Any) -> Any:
        """Return ``value`` (any JSON-like structure) with secrets masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                k: MASK if str(k).lower() in SECRET_FIELDS else self.value(v)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value

    def __call__(
        self, _logger: object, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Redact a structlog event dictionary (the processor protocol)."""
        for key, item in event.items():
            if key.lower() in SECRET_FIELDS:
                event[key] = MASK
            elif isinstance(item, (str, Mapping, list, tuple)):
                event[key] = self.value(item)
        return event


def _event_first(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Put ``ts`` and ``event`` first, so each line reads "when, what, details"."""
    return {"ts": event.pop("ts", None), "event": event.pop("event", None), **event}


class AuditLog:
    """Writes audit events as JSON lines to standard error or a file."""

    def __init__(self, path: Path | None, redactor: Redactor, *, enabled: bool = True) -> None:
        self.redactor = redactor
        self.path = path
        self._file: TextIO | None = None
        if enabled and path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8", buffering=1)
        sink = self._file if self._file is not None else sys.stderr
        self._enabled = enabled
        self._logger = structlog.wrap_logger(
            structlog.WriteLogger(sink),
            processors=[
                structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
                redactor,
                _event_first,
                structlog.processors.JSONRenderer(sort_keys=False),
            ],
        )

    def event(self, name: str, **fields: Any) -> None:
        """Write one event line named ``name`` with ``fields``."""
        if self._enabled:
            self._logger.info(name, **fields)

    def close(self) -> None:
        """Close the file, if the log writes to one."""
        self._enabled = False
        if self._file is not None:
            self._file.close()
            self._file = None
