"""What the gateway answers when a request fails: the HTTP status and a message, pure.

Each API writes the `Failure` in its own error shape (see ``apis``). A task that failed
answers 429 when every attempt was rate limited, 400 when every provider refused the
request itself, 504 when its deadline ran out and 502 otherwise, with the trail of
attempts in the message so the caller sees what each provider said.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime._chat import AttemptRecord
from runtime._errors import (
    BoardClosedError,
    DeadlineExceededError,
    TaskFailedError,
    UnknownProviderError,
    UnknownRoleError,
)
from runtime.protocols._serving import RequestError

_ALL_SAY = (
    (frozenset({"rate_limited", "quota"}), 429, "rate_limit_exceeded", 1.0),
    (frozenset({"bad_request"}), 400, "invalid_request", None),
    (frozenset({"unavailable"}), 503, "unavailable", 1.0),
)
"""When every attempt of a failed task ended one of these ways: the status to answer."""


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
    for kind, answer in _ANSWERS:
        if isinstance(exc, kind):
            return answer(exc)
    return None


def _unknown_role(exc: UnknownRoleError) -> Failure:
    known = ", ".join(exc.known) or "none"
    message = f"the model {exc.role!r} names no role of this gateway; roles: {known}"
    return Failure(404, message, "model", "model_not_found")


def _unknown_provider(exc: UnknownProviderError) -> Failure:
    known = ", ".join(exc.known) or "none"
    message = f"the provider {exc.provider!r} is not one of this gateway's; providers: {known}"
    return Failure(404, message, "model", "model_not_found")


def _task_failure(exc: TaskFailedError) -> Failure:
    outcomes = {a.outcome for a in exc.attempts if isinstance(a, AttemptRecord)}
    for kinds, status, code, retry_after_s in _ALL_SAY:
        if outcomes and outcomes <= kinds:
            return Failure(status, str(exc), code=code, retry_after_s=retry_after_s)
    return Failure(502, str(exc), code="upstream_failed")


_ANSWERS: tuple[tuple[type[BaseException], Callable[[Any], Failure]], ...] = (
    (RequestError, lambda exc: Failure(400, exc.message, exc.param, "invalid_request")),
    (UnknownRoleError, _unknown_role),
    (UnknownProviderError, _unknown_provider),
    (DeadlineExceededError, lambda exc: Failure(504, str(exc), code="deadline_exceeded")),
    (TaskFailedError, _task_failure),
    (
        BoardClosedError,
        lambda exc: Failure(503, f"the gateway is closing: {exc}", code="unavailable"),
    ),
    (TypeError, lambda exc: Failure(400, str(exc), code="invalid_request")),
    (ValueError, lambda exc: Failure(400, str(exc), code="invalid_request")),
)
"""The first row whose class the error is says the answer (subclasses before their bases)."""


def busy(limit: int) -> Failure:
    """The answer when ``limit`` requests are in flight already."""
    return Failure(503, f"the gateway is serving {limit} requests already; try again shortly",
                   code="overloaded", retry_after_s=1.0)  # fmt: skip


def draining() -> Failure:
    """The answer to a request that arrives while the gateway drains for exit."""
    return Failure(503, "the gateway is shutting down", code="unavailable", retry_after_s=1.0)
