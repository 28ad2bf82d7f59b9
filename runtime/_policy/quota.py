"""Quota-aware admission: which providers said, in their rate-limit headers, that little is left.

Providers report their remaining requests and tokens with every answer
(``x-ratelimit-remaining-*``, ``anthropic-ratelimit-*``, Azure's). The router passes each
report here; a provider whose remaining share of a limit is under the reserve is short
until that budget resets, and the routing orders it last, so the 429 never comes.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime._chat import RateLimitInfo

UNKNOWN_RESET_S = 60.0
"""How long a provider counts as short when it did not say when its budget resets."""


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """The limits to measure a remaining count against when the headers give none."""

    requests: int | None = None
    tokens: int | None = None


def short_for_s(info: RateLimitInfo, limits: QuotaLimits, reserve: float) -> float | None:
    """Return how long a provider stays short after this report (``None``: it is not).

    A budget is short when what remains is under ``reserve`` of its limit (the header's
    limit, else ``limits``), or when nothing remains.
    """
    waits = []
    budgets = (
        (info.remaining_requests, info.limit_requests or limits.requests, info.reset_requests_s),
        (info.remaining_tokens, info.limit_tokens or limits.tokens, info.reset_tokens_s),
    )
    for remaining, limit, reset_s in budgets:
        if remaining is None:
            continue
        spent = remaining <= 0
        if spent or (limit and remaining < reserve * limit):
            waits.append(UNKNOWN_RESET_S if reset_s is None else reset_s)
    return max(waits) if waits else None


class QuotaBook:
    """Until when each provider is short of quota, as its last answer said."""

    def __init__(self) -> None:
        self._short_until: dict[str, float] = {}

    def report(
        self, provider: str, info: RateLimitInfo, limits: QuotaLimits, reserve: float, now: float
    ) -> None:
        """Take the rate-limit headers of an answer ``provider`` sent at ``now``."""
        wait = short_for_s(info, limits, reserve)
        if wait is None:
            self._short_until.pop(provider, None)
        else:
            self._short_until[provider] = now + wait

    def short(self, provider: str, now: float) -> bool:
        """Whether ``provider`` is short of quota now."""
        until = self._short_until.get(provider)
        if until is None:
            return False
        if until <= now:
            del self._short_until[provider]
            return False
        return True

    def __bool__(self) -> bool:
        """Whether any provider may be short (none has said so since its last reset)."""
        return bool(self._short_until)

    def forget(self, keep: set[str]) -> None:
        """Drop every provider not in ``keep``."""
        for pid in [p for p in self._short_until if p not in keep]:
            del self._short_until[pid]
