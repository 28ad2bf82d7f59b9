"""The request log of a fake provider: every request it received, secrets masked.

The server thread records; test threads read, or block in `RequestLog.wait_for` until the
requests they expect have arrived (a condition variable with a timeout, never a sleep).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "x-goog-api-key",
        "api-key",
        "proxy-authorization",
        "x-amz-security-token",
    }
)
SECRET_QUERY = frozenset({"key"})
_SHOWN_FROM_LENGTH = 20


def mask_secret(value: str) -> str:
    """Return ``value`` unreadable: its scheme, and for long values a hint of both ends.

    ``"Bearer sk-proj-abcdefghijklmnop1234"`` becomes ``"Bearer sk-...1234"``; a value
    shorter than 20 characters becomes ``"***"`` whole.
    """
    scheme, sep, secret = value.partition(" ")
    if not sep:
        scheme, secret = "", value
    shown = f"{secret[:3]}...{secret[-4:]}" if len(secret) >= _SHOWN_FROM_LENGTH else "***"
    return f"{scheme} {shown}" if scheme else shown


def masked(items: Mapping[str, str], secret_names: frozenset[str]) -> dict[str, str]:
    """Copy ``items`` with lower-cased names, masking the values of ``secret_names``."""
    copy: dict[str, str] = {}
    for name, value in items.items():
        lower = name.lower()
        copy[lower] = mask_secret(value) if lower in secret_names else value
    return copy


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it; header and query secrets are masked."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    """Lower-cased names, the values of `SECRET_HEADERS` masked."""
    json: Any = None
    """The parsed JSON body; ``None`` when there was no body or it was not JSON."""
    action: str = ""
    """What the route does: ``"chat"``, ``"chat_stream"``, ``"list_models"``, ``"get_model"``,
    ``"embed"``, or ``""`` for a path the API does not have."""
    received_at: float = 0.0
    """When the fake received the request (``time.monotonic()``)."""
    peer: tuple[str, int] | None = None
    """The client's address and port: requests sent over one connection share it."""

    @property
    def is_chat(self) -> bool:
        """Whether this was a chat request (streamed or not)."""
        return self.action in ("chat", "chat_stream")


def busiest_window(
    times: Sequence[float], span_s: float = 60.0, weights: Sequence[float] | None = None
) -> float:
    """Return the most that any rolling window ``(t - span_s, t]`` holds.

    ``times`` are sorted moments (say the ``received_at`` of a fake's requests); each
    counts 1, or its weight (its tokens, say). For checking a rate limit from a fake's log::

        times = [r.received_at for r in fake.requests if r.is_chat]
        assert busiest_window(times) <= 60  # rpm = 60
    """
    most = held = 0.0
    start = 0
    for end, moment in enumerate(times):
        held += weights[end] if weights is not None else 1.0
        while times[start] <= moment - span_s:
            held -= weights[start] if weights is not None else 1.0
            start += 1
        most = max(most, held)
    return most


class RequestLog:
    """Every request a fake received, oldest first (the last ``limit`` of them kept)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._entries: deque[RecordedRequest] = deque(maxlen=limit)
        self._changed = threading.Condition()

    def record(self, entry: RecordedRequest) -> None:
        """Add one request and wake the threads waiting for requests."""
        with self._changed:
            self._entries.append(entry)
            self._changed.notify_all()

    def entries(self) -> tuple[RecordedRequest, ...]:
        """A snapshot of the requests recorded so far."""
        with self._changed:
            return tuple(self._entries)

    def clear(self) -> None:
        """Forget every recorded request."""
        with self._changed:
            self._entries.clear()

    def wait_for(
        self,
        count: int,
        *,
        where: Callable[[RecordedRequest], bool] | None = None,
        timeout_s: float = 5.0,
    ) -> tuple[RecordedRequest, ...]:
        """Block until ``count`` requests (matching ``where``, if given) have been recorded.

        Returns:
            The matching requests recorded by then, oldest first.

        Raises:
            TimeoutError: fewer had arrived after ``timeout_s`` seconds.
        """

        def matching() -> tuple[RecordedRequest, ...]:
            return tuple(e for e in self._entries if where is None or where(e))

        with self._changed:
            if self._changed.wait_for(lambda: len(matching()) >= count, timeout_s):
                return matching()
            seen = len(matching())
        raise TimeoutError(f"{seen} of {count} expected requests arrived in {timeout_s} s")
