"""How long to wait before trying a provider again: exponential backoff with jitter."""

from __future__ import annotations

from collections.abc import Callable

from runtime._config.schema import RetrySettings, StartupSettings

Random = Callable[[], float]
"""Returns a float in [0, 1); injected so tests are deterministic."""


def backoff_s(policy: RetrySettings, failures: int, random: Random) -> float:
    """Return the wait after the ``failures``-th failure on one provider (1-based).

    The base delay grows as ``initial * multiplier ** (failures - 1)``, capped at
    ``backoff_max_s``. With jitter, the wait is drawn from the upper half of the base
    ("equal jitter"): spread out enough to avoid thundering herds, never near zero.
    """
    return exponential_s(
        failures,
        policy.backoff_initial_s,
        policy.backoff_max_s,
        random,
        multiplier=policy.backoff_multiplier,
        jitter=policy.jitter,
    )


def exponential_s(
    count: int,
    initial_s: float,
    max_s: float,
    random: Random,
    *,
    multiplier: float = 2.0,
    jitter: bool = True,
) -> float:
    """Return the ``count``-th wait (1-based) of a capped exponential schedule.

    ``initial_s * multiplier ** (count - 1)``, capped at ``max_s``; with jitter, drawn
    from the upper half of that ("equal jitter"). Zero before the first.
    """
    if count < 1:
        return 0.0
    base = min(initial_s * multiplier ** (count - 1), max_s)
    if not jitter:
        return base
    return base / 2 + random() * base / 2


def recheck_wait_s(
    startup: StartupSettings,
    failed_checks: int,
    random: Random,
    retry_after_s: float | None = None,
) -> float:
    """Return the wait before checking an unchecked provider again, after ``failed_checks``.

    A wait the provider asked for (a 429's Retry-After) is honoured when it is longer.
    """
    wait = exponential_s(failed_checks, startup.recheck_initial_s, startup.recheck_max_s, random)
    return max(wait, retry_after_s or 0.0)


def retry_wait_s(
    policy: RetrySettings, failures: int, retry_after_s: float | None, random: Random
) -> float:
    """Return the wait before the next try: the backoff, or the provider's ask if longer."""
    wait = backoff_s(policy, failures, random)
    if retry_after_s is not None and retry_after_s > wait:
        return retry_after_s
    return wait
