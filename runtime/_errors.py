"""Every error callboard raises, under one root.

```
CallboardError
├── ConfigError             the config file is unreadable or invalid (every problem listed)
├── StartupError            a provider failed its credential check at start-up
├── UnknownRoleError        a task named a role the config does not define
├── UnknownProviderError    a task pinned a provider the config does not define
├── ProviderError           one attempt at one provider failed (kind, status, Retry-After)
├── TaskFailedError         a task got no answer: every provider tried, with what each said
│   ├── DeadlineExceededError   ...because its deadline ran out first
│   ├── TaskCancelledError      ...because its caller cancelled it
│   ├── BudgetExceededError     ...because a budget could not hold its worst-case cost
│   └── StreamBrokenError       ...because its stream broke after its first text
├── BoardClosedError        the board was closed, or its router could not be kept running
├── StoreError              the metrics store cannot be opened, read or written
├── MissingExtraError       a feature needs an optional extra that is not installed
│   ├── ChartUnavailableError       ...matplotlib (``charts``), for PNG charts
│   └── PrometheusUnavailableError  ...prometheus-client (``prometheus``)
└── UsageError              the command line asked for something unreadable (a bad date)
```

Errors of the layers below (httpx, aiohttp, JSON, pykka) are translated into these at one
boundary each; no caller sees a foreign exception. No message here ever holds a secret.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime._chat import Usage
    from runtime._tools import ToolCall


class ErrorKind(enum.StrEnum):
    """Why one attempt failed: the wire error taxonomy plus two local causes."""

    AUTH = "auth"
    PERMISSION = "permission"
    QUOTA = "quota"
    """The account's quota, credit or spend limit is used up: no call will pass until the
    bill is settled (OpenAI's ``insufficient_quota``, HTTP 402, Anthropic's credit balance)."""
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER = "server"
    TIMEOUT = "timeout"
    NETWORK = "network"
    MALFORMED_RESPONSE = "malformed_response"
    CONTENT_FILTER = "content_filter"
    UNAVAILABLE = "unavailable"
    """The provider could not take the call: breaker open, cooling down, queue full, failed."""
    INTERNAL = "internal"
    """The provider's actor crashed or was replaced while it held the call."""
    CANCELLED = "cancelled"
    """The runtime dropped the attempt: its task was cancelled or had ended, or another
    provider's attempt sent content first (hedging)."""

    @property
    def retryable(self) -> bool:
        """Whether trying the same provider again may succeed."""
        return self in _RETRYABLE

    @property
    def counts_against_health(self) -> bool:
        """Whether this failure says the provider itself is unhealthy (feeds the breaker)."""
        return self in _UNHEALTHY


_RETRYABLE = frozenset(
    {
        ErrorKind.RATE_LIMITED,
        ErrorKind.OVERLOADED,
        ErrorKind.SERVER,
        ErrorKind.TIMEOUT,
        ErrorKind.NETWORK,
        ErrorKind.MALFORMED_RESPONSE,
        ErrorKind.UNAVAILABLE,
        ErrorKind.INTERNAL,
    }
)
_UNHEALTHY = frozenset(
    {
        ErrorKind.OVERLOADED,
        ErrorKind.SERVER,
        ErrorKind.TIMEOUT,
        ErrorKind.NETWORK,
        ErrorKind.MALFORMED_RESPONSE,
    }
)


class CallboardError(Exception):
    """Root of every error callboard raises."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a config file: where it is and what is wrong."""

    location: str
    """Dotted key path, e.g. ``roles.coder.providers[1]`` (empty for the whole file)."""
    message: str
    line: int | None = None
    """1-based line in the file, when it could be found."""

    def __str__(self) -> str:
        place = self.location or "(file)"
        if self.line is not None:
            place = f"line {self.line}: {place}"
        return f"{place}: {self.message}"


class ConfigError(CallboardError):
    """The config file could not be used; ``problems`` lists every reason at once."""

    def __init__(self, source: str, problems: Sequence[ConfigProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{source}: {count} {noun}:\n{lines}")


class StartupError(CallboardError):
    """One or more providers failed the start-up check; one line per provider."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"start-up check failed:\n{lines}")


class UnknownRoleError(CallboardError):
    """A task named a role that the config does not define, and there is no default."""

    def __init__(self, role: str, known: Sequence[str]) -> None:
        self.role = role
        self.known = tuple(known)
        roles = ", ".join(self.known) or "none"
        super().__init__(
            f"unknown role {role!r}: configured roles are {roles}; add [roles.{role}] "
            'to the config or set default_provider = "..."'
        )


class UnknownProviderError(CallboardError):
    """A task pinned a provider (``provider=``) that the config does not define."""

    def __init__(self, provider: str, known: Sequence[str]) -> None:
        self.provider = provider
        self.known = tuple(known)
        providers = ", ".join(self.known) or "none"
        super().__init__(
            f"unknown provider {provider!r}: configured providers are {providers}; "
            f"add [providers.{provider}] to the config or pin one of those"
        )


class ProviderError(CallboardError):
    """One attempt at one provider failed.

    Carries the error ``kind`` (see `ErrorKind`), the HTTP ``status`` when there was one,
    the wait the provider asked for (``retry_after_s``, from a Retry-After header or
    Gemini's ``RetryInfo``) and the provider's own error ``code`` when it sent one.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retry_after_s: float | None = None,
        code: str | None = None,
    ) -> None:
        self.kind = kind
        self.message = message
        self.provider = provider
        self.status = status
        self.retry_after_s = retry_after_s
        self.code = code
        self.partial_text = ""
        """The text a stream had delivered before it broke (``""``: none)."""
        self.partial_usage: Usage | None = None
        """The tokens the provider had reported when the attempt ended early (a broken or
        cancelled stream's, as far as its events told; ``None``: none reported)."""
        self.partial_tool_calls: tuple[ToolCall, ...] = ()
        """The tool calls a broken stream had delivered whole before it broke."""
        self.delivered = False
        """Whether content (text, or pieces of tool calls) had reached a streaming caller
        before the attempt ended: its stream broke, rather than failed to start."""
        super().__init__(self._describe())

    @property
    def retryable(self) -> bool:
        """Whether trying the same provider again may succeed."""
        return self.kind.retryable

    def for_provider(self, provider: str) -> ProviderError:
        """Return this error attributed to ``provider``."""
        error = ProviderError(
            self.kind,
            self.message,
            provider=provider,
            status=self.status,
            retry_after_s=self.retry_after_s,
            code=self.code,
        )
        error.partial_text = self.partial_text
        error.partial_usage = self.partial_usage
        error.partial_tool_calls = self.partial_tool_calls
        error.delivered = self.delivered
        return error

    def _describe(self) -> str:
        head = f"{self.provider}: " if self.provider else ""
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{head}{self.kind}{status}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"ProviderError(kind={self.kind.value!r}, provider={self.provider!r}, "
            f"status={self.status!r}, message={self.message!r})"
        )


class TaskFailedError(CallboardError):
    """A task got no answer.

    ``attempts`` lists every attempt made, in order (provider, outcome, status, message);
    ``advice`` says what to do about it, one line per provider that needs attention.
    """

    def __init__(
        self,
        *,
        task_id: str,
        role: str,
        reason: str,
        attempts: Sequence[object] = (),
        advice: Sequence[str] = (),
    ) -> None:
        self.task_id = task_id
        self.role = role
        self.reason = reason
        self.attempts = tuple(attempts)
        self.advice = tuple(advice)
        lines = [f"task {task_id} for role {role!r} failed: {reason}"]
        lines.extend(f"  tried {a}" for a in self.attempts)
        lines.extend(f"  what to do: {a}" for a in self.advice)
        super().__init__("\n".join(lines))


class DeadlineExceededError(TaskFailedError):
    """A task's deadline ran out before any provider answered."""


class TaskCancelledError(TaskFailedError):
    """A task was cancelled by its caller."""


class BudgetExceededError(TaskFailedError):
    """A budget refused the task before any request left: it could not hold the call's cost.

    ``budget`` names it; ``spent_usd``, ``reserved_usd`` and ``limit_usd`` say where it
    stood; ``resets_at`` is the Unix time its period ends (``None``: a ``total`` budget).
    """

    def __init__(
        self,
        *,
        task_id: str,
        role: str,
        reason: str,
        budget: str,
        spent_usd: float,
        reserved_usd: float,
        limit_usd: float,
        resets_at: float | None,
        attempts: Sequence[object] = (),
    ) -> None:
        self.budget = budget
        self.spent_usd = spent_usd
        self.reserved_usd = reserved_usd
        self.limit_usd = limit_usd
        self.resets_at = resets_at
        super().__init__(task_id=task_id, role=role, reason=reason, attempts=attempts)


class StreamBrokenError(TaskFailedError):
    """A streamed answer broke after text had reached the caller; ``partial_text`` is it.

    ``tool_calls`` are the tool calls that had arrived whole before it broke (a call cut
    short is never among them). Raised when the call asked for ``on_broken="raise"`` (the
    default); with ``"restart"`` the task starts again on the next provider instead.
    """

    def __init__(
        self, *, partial_text: str, tool_calls: tuple[ToolCall, ...] = (), **fields: Any
    ) -> None:
        self.partial_text = partial_text
        self.tool_calls = tool_calls
        super().__init__(**fields)


class BoardClosedError(CallboardError):
    """The board is closed, or its router failed more often than supervision allows."""


class StoreError(CallboardError):
    """The metrics store cannot be opened, read or written; the message says what to do."""


class MissingExtraError(CallboardError):
    """A feature needs an optional extra of callboard that is not installed."""


class ChartUnavailableError(MissingExtraError):
    """A PNG chart was asked for, but matplotlib (the ``charts`` extra) is not installed."""


class PrometheusUnavailableError(MissingExtraError):
    """The Prometheus exposition was asked for, but ``prometheus-client`` is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "the Prometheus exposition needs the prometheus-client package: "
            "pip install 'callboard[prometheus]'"
        )


class UsageError(CallboardError):
    """The command line asked for something that cannot be read (a bad date or span)."""
