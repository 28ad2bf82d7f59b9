"""What the gateway answers when a request fails: the HTTP status and a message, pure.

Each API writes the `Failure` in its own error shape (see ``apis``). A task that failed
answers 429 when every attempt was rate limited, 400 when every provider refused the
request itself, 504 when its deadline ran out and 502 otherwise, with the trail of
attempts in the message so the caller sees what each provider said.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime._chat import AttemptRecord
from runtime._errors import (
    BoardClosedError,
    DeadlineExceededError,
    TaskFailedError,
    UnknownRoleError,
)
from runtime.protocols._serving import RequestError

_ALL_SAY = (
    (frozenset({"rate_limited", "quota"}), 429, "rate_limit_exceeded"),
    (frozenset({"bad_request"}), 400, "invalid_request"),
    (frozenset({"unavailable"}), 503, "unavailable"),
)


@dataclass(frozen=True, slots=True)
class Failure:
    """An error answer: HTTP ``status``, ``message``, the bad ``param``, a ``code``."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    retry_after_s: float | None = None


def failure_of(exc: BaseException) -> Failure | None:
    """The answer for ``exc``, or ``None`` when it is not a failure the gateway knows."""
    if isinstance(exc, RequestError):
        return Failure(400, exc.message, exc.param, "invalid_request")
    if isinstance(exc, UnknownRoleError):
        known = ", ".join(exc.known) or "none"
        return Failure(
            404, f"the model {exc.role!r} names no role of this gateway; roles: {known}",
            "model", "model_not_found",
        )  # fmt: skip
    if isinstance(exc, DeadlineExceededError):
        return Failure(504, str(exc), code="deadline_exceeded")
    if isinstance(exc, TaskFailedError):
        return _task_failure(exc)
    if isinstance(exc, BoardClosedError):
        return Failure(503, f"the gateway is shutting down: {exc}", code="unavailable")
    if isinstance(exc, TypeError | ValueError):
        return Failure(400, str(exc), code="invalid_request")
    return None


def _task_failure(exc: TaskFailedError) -> Failure:
    outcomes = {a.outcome for a in exc.attempts if isinstance(a, AttemptRecord)}
    for kinds, status, code in _ALL_SAY:
        if outcomes and outcomes <= kinds:
            return Failure(status, str(exc), code=code, retry_after_s=1.0 if status == 429 else None)  # noqa: PLR2004
    return Failure(502, str(exc), code="upstream_failed")


def busy(limit: int) -> Failure:
    """The answer when ``limit`` requests are in flight already."""
    return Failure(503, f"the gateway is serving {limit} requests already; try again shortly",
                   code="overloaded", retry_after_s=1.0)  # fmt: skip


def draining() -> Failure:
    """The answer to a request that arrives while the gateway drains for exit."""
    return Failure(503, "the gateway is shutting down", code="unavailable", retry_after_s=1.0)
