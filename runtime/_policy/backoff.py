"""How long to wait before trying a provider again: exponential backoff with jitter."""

from __future__ import annotations

from collections.abc import Callable

from runtime._config.schema import RetrySettings

Random = Callable[[], float]
"""Returns a float in [0, 1); injected so tests are deterministic."""


def backoff_s(policy: RetrySettings, failures: int, random: Random) -> float:
    """Return the wait after the ``failures``-th failure on one provider (1-based).

    The base delay grows as ``initial * multiplier ** (failures - 1)``, capped at
    ``backoff_max_s``. With jitter, the wait is drawn from the upper half of the base
    ("equal jitter"): spread out enough to avoid thundering herds, never near zero.
    """
    if failures < 1:
        return 0.0
    base = policy.backoff_initial_s * policy.backoff_multiplier ** (failures - 1)
    base = min(base, policy.backoff_max_s)
    if not policy.jitter:
        return base
    return base / 2 + random() * base / 2


def retry_wait_s(
    policy: RetrySettings, failures: int, retry_after_s: float | None, random: Random
) -> float:
    """Return the wait before the next try: the backoff, or the provider's ask if longer."""
    wait = backoff_s(policy, failures, random)
    if retry_after_s is not None and retry_after_s > wait:
        return retry_after_s
    return wait
