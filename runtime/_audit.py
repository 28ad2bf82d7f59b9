"""The audit log: one JSON line per event, through structlog, with secrets redacted.

Each board owns its own log, writing to standard error or to a file; each actor renders
into a buffer of its own. `Redactor` masks every configured secret, secret-bearing header
and key-shaped token in every value of an event (a structlog processor, so a program may
put it in its own structlog chain too); the runtime also runs provider
messages through it before they reach errors or replies. A file is reopened when asked
(`AuditLog.reopen`, after logrotate renamed it), and rotated by size or time when
configured (`Rotation`, through the standard library's rotating handlers).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import structlog  # about 100 ms (it loads rich): with the board's modules, never a board's start

from runtime._rows import iso

MASK = "[REDACTED]"
SECRET_FIELDS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key", "api_key"})
_KEY_SHAPES = re.compile(
    r"sk-[A-Za-z0-9_\-*]{8,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+[A-Za-z0-9._\-*]{8,}"
)
_SHORTEST_SHAPE = 11
_PLAIN = frozenset({int, float, bool, type(None)})
"""Value types that hold no text (exactly these: a subclass may render differently)."""
MIN_SECRET = 4
"""Shorter configured values are not treated as secrets (they would mask common words)."""


class Redactor:
    """Masks secrets in text and in structlog event dictionaries."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._pattern = _KEY_SHAPES
        self._shortest = _SHORTEST_SHAPE
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these values too from now on (a reload may bring new keys).

        The secrets and the key shapes become one pattern, replaced at once so that
        threads reading the old one never see half an update.
        """
        self._secrets = self._secrets | {s for s in secrets if len(s) >= MIN_SECRET}
        longest_first = sorted(self._secrets, key=len, reverse=True)
        alternatives = [re.escape(s) for s in longest_first] + [_KEY_SHAPES.pattern]
        shortest = min([_SHORTEST_SHAPE, *(len(s) for s in self._secrets)])
        self._pattern, self._shortest = re.compile("|".join(alternatives)), shortest

    def text(self, value: str) -> str:
        """Return ``value`` with every secret and key-shaped token masked."""
        if len(value) < self._shortest:
            return value
        return self._pattern.sub(MASK, value)

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
        shortest, pattern, names = self._shortest, self._pattern, _FIELD_NAMES
        for key, item in event.items():
            kind = type(item)
            secret = names.get(key)  # inline: a call per field costs more than the check
            if secret is None:
                secret = _secret_field(key)
            if secret:
                event[key] = MASK
            elif kind is str:
                if len(item) >= shortest:
                    event[key] = pattern.sub(MASK, item)
            elif kind in _PLAIN:
                continue  # most fields: no text to mask, and no slow ABC check for them
            elif isinstance(item, (Mapping, list, tuple)):
                event[key] = self.value(item)
        return event


RotateEvery = Literal["hour", "day", "week"]
_WHEN: dict[RotateEvery, str] = {"hour": "H", "day": "MIDNIGHT", "week": "W0"}
"""`TimedRotatingFileHandler`'s names: an hour after the file began, UTC midnight, Monday."""


@dataclass(frozen=True, slots=True)
class Rotation:
    """When the audit file moves aside for a new one: past ``max_bytes``, or ``every``.

    ``keep`` is how many moved-aside files stay (the oldest beyond it are deleted); with
    neither ``max_bytes`` nor ``every`` the file is never rotated by callboard.
    """

    max_bytes: int = 0
    every: RotateEvery | None = None
    keep: int = 7


class AuditLog:
    """Where audit lines go: standard error or a file, opened once for the board.

    Each actor writes through its own `AuditWriter`, which renders lines into a buffer it
    alone owns and appends them with one write. A file that is not rotated is opened
    ``O_APPEND``, so the batches of different writers never interleave within a line and
    no lock is needed; `reopen` swaps the file under the same descriptor at once
    (``dup2``). A rotated file is written through the standard library's
    `RotatingFileHandler` or `TimedRotatingFileHandler`, whose lock keeps writers and
    rotations apart. Files are created readable by their owner only.
    """

    def __init__(
        self,
        path: Path | None,
        redactor: Redactor,
        *,
        enabled: bool = True,
        rotation: Rotation = Rotation(),
    ) -> None:
        self.redactor = redactor
        self.path = path
        self._fd: int | None = None
        self._handler: logging.FileHandler | None = None
        self._enabled = enabled
        if enabled and path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if rotation.max_bytes or rotation.every:
                self._handler = _rotating_handler(path, rotation)
            else:
                self._fd = _open_private(path)

    @property
    def enabled(self) -> bool:
        """Whether lines are written (``[audit] path = "off"``, or closed: not)."""
        return self._enabled

    def writer(self) -> AuditWriter:
        """Return a new buffered writer, for one thread's use."""
        return AuditWriter(self)

    def append(self, data: bytes) -> None:
        """Append already rendered lines (UTF-8), at once."""
        if not self._enabled or not data:
            return
        if self._fd is not None:
            os.write(self._fd, data)
        elif self._handler is not None:
            self._handler.handle(logging.makeLogRecord({"msg": data.decode()}))
        else:
            sys.stderr.write(data.decode())
            sys.stderr.flush()

    def event(self, name: str, **fields: Any) -> None:
        """Write one event line now, from any thread (for callers off the hot path)."""
        self.writer().event(name, now=True, **fields)

    def reopen(self) -> bool:
        """Open the file at `path` again if it is no longer the one written (logrotate).

        After a rename (or a deletion) lines would go on into the old file; this starts
        a new file at `path`, says so in it (``audit_reopened``), and returns ``True``.
        Lines being written meanwhile land whole in one file or the other.
        """
        if self.path is None or not self._enabled or self._open_file_is_at_path():
            return False
        if self._fd is not None:
            fresh = _open_private(self.path)
            os.dup2(fresh, self._fd, inheritable=False)
            os.close(fresh)
        elif self._handler is not None:
            _open_private_stream(self._handler)
        self.event("audit_reopened", path=str(self.path))
        return True

    def _open_file_is_at_path(self) -> bool:
        assert self.path is not None  # noqa: S101 - reopen checks it first
        if self._fd is not None:
            fd = self._fd
        elif self._handler is not None and self._handler.stream is not None:
            fd = self._handler.stream.fileno()
        else:
            return True
        try:
            return os.path.samestat(os.fstat(fd), self.path.stat())
        except FileNotFoundError:
            return False

    def close(self) -> None:
        """Stop writing and close the file, if the log writes to one."""
        self._enabled = False
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._handler is not None:
            self._handler.close()
            self._handler = None


def _open_private(path: Path) -> int:
    """Open ``path`` for appending, creating it readable and writable by its owner only."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def _rotating_handler(path: Path, rotation: Rotation) -> logging.FileHandler:
    """Return the standard library's handler for ``rotation``, writing lines as given."""
    import logging.handlers  # noqa: PLC0415 - only boards that rotate their audit file

    os.close(_open_private(path))
    handler: logging.handlers.BaseRotatingHandler
    if rotation.max_bytes:
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=rotation.max_bytes, backupCount=rotation.keep, encoding="utf-8"
        )
    else:
        assert rotation.every is not None  # noqa: S101 - one of the two is set
        handler = logging.handlers.TimedRotatingFileHandler(
            path, when=_WHEN[rotation.every], backupCount=rotation.keep, encoding="utf-8", utc=True
        )
    handler.terminator = ""  # the lines end with their own newlines
    handler.rotator = _rotate_private
    return handler


def _rotate_private(source: str, dest: str) -> None:
    """Move the full file aside and create the next one, private, before the handler opens it."""
    if os.path.exists(source):  # noqa: PTH110 - the handler's own names are strings
        os.rename(source, dest)  # noqa: PTH104
    os.close(_open_private(Path(source)))


def _open_private_stream(handler: logging.FileHandler) -> None:
    """Give ``handler`` a stream on a new file at its path, and close the old stream."""
    path = Path(handler.baseFilename)
    os.close(_open_private(path))
    old = handler.setStream(path.open("a", encoding="utf-8"))
    if old is not None:
        old.close()


class AuditWriter:
    """Renders audit events through a structlog processor chain into a buffer `flush` writes.

    The event dictionary is built with the time and the event's name first, then runs
    through the chain: secrets masked (`Redactor`), then structlog's ``JSONRenderer`` with
    one ``orjson.dumps`` as its serializer. The writer calls the processors itself, as a
    structlog logger would: it binds no context and filters no level, and structlog's
    bound logger around the same chain added about 6 µs a line
    (``bench/bench_audit.py`` on the 2-core machine: 16.3 µs a line through it, 10.4
    without).
    """

    MAX_BUFFERED = 256

    def __init__(self, log: AuditLog) -> None:
        self._log = log
        self.redactor = log.redactor
        self._lines: list[bytes] = []
        self._processors: tuple[_Processor, ...] = (
            log.redactor,
            structlog.processors.JSONRenderer(serializer=_dumps),
        )

    def event(self, name: str, *, now: bool = False, **fields: Any) -> None:
        """Render one event line into the buffer; with ``now``, write the buffer at once.

        The line's ``ts`` is now, unless the event carries its own (rows do). Nothing is
        rendered when the log writes nothing.
        """
        if not self._log.enabled:
            return
        ts = fields.pop("ts") if "ts" in fields else iso(time.time())
        event: Any = {"ts": ts, "event": name, **fields}
        for processor in self._processors:
            event = processor(None, "info", event)
        self._lines.append(event)
        if now or len(self._lines) >= self.MAX_BUFFERED:
            self.flush()

    def flush(self) -> None:
        """Write every buffered line with one append."""
        if self._lines:
            data = b"".join(self._lines)
            self._lines.clear()
            self._log.append(data)


_Processor = Callable[[Any, str, Any], Any]
"""A structlog processor: (logger, method name, event dictionary) to the next value."""


def _dumps(event: Any, **_kw: Any) -> bytes:
    """Structlog's serializer: one orjson call, the line's newline included."""
    return orjson.dumps(event, default=repr, option=_LINE_OPTIONS)


_FIELD_NAMES: dict[str, bool] = {}
"""Whether each event field name seen so far names a secret (event fields are few)."""
_MAX_FIELD_NAMES = 4096


def _secret_field(key: str) -> bool:
    """Whether ``key`` names a secret-bearing field (`SECRET_FIELDS`, in any case)."""
    secret = _FIELD_NAMES.get(key)
    if secret is None:
        secret = key.lower() in SECRET_FIELDS
        if len(_FIELD_NAMES) < _MAX_FIELD_NAMES:
            _FIELD_NAMES[key] = secret
    return secret


_LINE_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
