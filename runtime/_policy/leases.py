"""What one process may admit of a provider's fleet-wide limits: leases from the shared store.

Plain code with the time passed in. The fleet's limit is kept in the shared store (Redis):
a process asks it for a short lease of requests and tokens (`LeaseAsk`, one atomic script),
spends the lease locally with no round trip per call, and asks again before it runs out.
A lease may be spent for `lease_s` after it was asked for; what is left then goes back with
the next ask, as do token corrections (estimate against real usage), each to the slot it was
granted in. The store counts a grant for a minute plus a lease's life, so no rolling minute
at the provider can hold more than the limit, however the fleet spends its leases.

Lease sizes follow the process's own rate (a decayed count of its calls), so a busy
process asks for more and a quiet one holds little. When the store cannot be reached the
ledger falls back to a local share: the limit divided by the processes it last saw, kept by
a plain `RateLimiter`; what it admits then is counted back into the store on rejoining.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from runtime._policy.rate_limits import BURST_S, WINDOW_S, RateLimiter

RETRY_S = 1.0
"""How often a process that lost the store tries it again."""
LEASE_CAP_S = BURST_S
"""The most one lease holds: this many seconds of the whole fleet's limit."""
_UNLIMITED = math.inf


@dataclass(frozen=True, slots=True)
class LeaseAsk:
    """One ask of the store: what to lease now, and what goes back or is counted again."""

    requests: int
    tokens: int
    min_tokens: int
    """No lease unless at least this many tokens come with it (what the next call needs)."""
    returns: tuple[tuple[int, int, int], ...]
    """``(slot, requests, tokens)`` to stop counting (negative: count more) in each slot."""
    backfill: tuple[int, int]
    """Requests and tokens admitted while the store was away, to count now."""


@dataclass(frozen=True, slots=True)
class Grant:
    """The store's answer: a lease (possibly empty) and what it saw of the fleet."""

    requests: int
    tokens: int
    slot: int
    """The store's slot the lease counts in (what goes back later is given back there)."""
    processes: int
    """Processes that asked the store for leases lately (this one included)."""
    retry_s: float = 0.0
    """For an empty lease: when the store's window frees enough."""


@dataclass(slots=True)
class Spent:
    """What one call took from a lease, to correct or give back later."""

    slot: int | None
    """The lease's slot; ``None`` when taken from the local share (store away)."""
    tokens: int


@dataclass(slots=True)
class _Lease:
    requests: float
    tokens: float
    slot: int
    expires_at: float


class LeaseLedger:
    """One provider's leases in one process, or its local share while the store is away."""

    def __init__(self, rpm: int | None, tpm: int | None, lease_s: float) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.lease_s = lease_s
        self._leases: deque[_Lease] = deque()
        self._returns: dict[int, list[int]] = {}
        self._asking = False
        self._next_ask_at = 0.0
        self._rate = 0.0
        """Calls per second, decayed over two leases' time."""
        self._rate_at = 0.0
        self._tokens_per_call = 0.0
        self.processes = 1
        self.local: RateLimiter | None = None
        """The local share while the store is away (``None``: leasing)."""
        self._backfill = [0, 0]

    @property
    def asking(self) -> bool:
        """Whether an ask is with the store now."""
        return self._asking

    def wait_s(self, tokens: int, now: float) -> float:
        """Return how long until a call of ``tokens`` may start (``inf``: when a lease comes)."""
        if self.local is not None:
            return self.local.wait_s(tokens, now)
        if self._lease_for(tokens, now) is not None:
            return 0.0
        if self._asking or now >= self._next_ask_at:
            return _UNLIMITED  # an ask is out, or due: `ask` sends it
        return self._next_ask_at - now

    def take(self, tokens: int, now: float) -> Spent:
        """Spend one request and ``tokens`` (call `wait_s` first: it must be 0)."""
        self._note_rate(tokens, now)
        if self.local is not None:
            self.local.take(tokens, now)
            self._backfill[0] += 1
            self._backfill[1] += tokens if self.tpm else 0
            return Spent(None, tokens)
        lease = self._lease_for(tokens, now)
        if lease is None:
            raise RuntimeError("take() without a lease: wait_s() was not 0")
        lease.requests -= 1
        lease.tokens -= self._counted(tokens)
        return Spent(lease.slot, tokens)

    def settle(self, spent: Spent, actual: int | None) -> None:
        """Correct what ``spent`` counted with the call's real usage (``None``: the estimate)."""
        if actual is not None and self.tpm and spent.slot is not None:
            self._give_back(spent.slot, 0, self._counted(spent.tokens) - self._counted(actual))

    def refund(self, spent: Spent) -> None:
        """Give back all a call took: it could not be sent."""
        if spent.slot is not None:
            self._give_back(spent.slot, 1 if self.rpm else 0, self._counted(spent.tokens))

    def ask(self, now: float, queued: int, queued_tokens: int) -> LeaseAsk | None:
        """Return what to ask the store for now, or ``None`` (enough held, or an ask is out)."""
        if self._asking or now < self._next_ask_at:
            return None
        self._expire(now)
        want = self._lease_size(queued)
        held = sum(self._calls_in(lease) for lease in self._leases)
        if self.local is None and not queued and held > want / 2:
            return None
        want = max(want, min(queued, self._cap(self.rpm)))
        per_call = max(self._tokens_per_call, queued_tokens / queued if queued else 0.0)
        min_tokens = self._counted(math.ceil(queued_tokens / queued)) if queued else 0
        tokens = max(min_tokens, math.ceil(want * per_call)) if self.tpm else 0
        self._asking = True
        returns = tuple((slot, r, t) for slot, (r, t) in self._returns.items() if r or t)
        self._returns.clear()
        backfill = (self._backfill[0], self._backfill[1])
        return LeaseAsk(want, min(tokens, self._cap(self.tpm)), min_tokens, returns, backfill)

    def granted(self, grant: Grant, asked_at: float, now: float) -> bool:
        """Hold what the store granted; return whether this ends a fallback to the local share."""
        self._asking = False
        self.processes = max(1, grant.processes)
        rejoined = self.local is not None
        self.local = None
        self._backfill = [0, 0]
        if grant.requests > 0:
            requests = grant.requests if self.rpm else _UNLIMITED
            tokens = grant.tokens if self.tpm else _UNLIMITED
            self._leases.append(_Lease(requests, tokens, grant.slot, asked_at + self.lease_s))
            self._next_ask_at = 0.0
        else:
            # what other processes' leases leave goes back within a lease's life
            self._next_ask_at = now + min(max(grant.retry_s, 0.05), self.lease_s)
        return rejoined

    def failed(self, now: float) -> bool:
        """Fall back to the local share; return whether this starts a fallback."""
        self._asking = False
        self._next_ask_at = now + RETRY_S
        if self.local is not None:
            return False
        self._leases.clear()
        self._returns.clear()
        share = self.processes
        rpm = math.ceil(self.rpm / share) if self.rpm else None
        tpm = math.ceil(self.tpm / share) if self.tpm else None
        self.local = RateLimiter.per_minute(rpm, tpm, now)
        return True

    def _lease_for(self, tokens: int, now: float) -> _Lease | None:
        self._expire(now)
        need = self._counted(tokens)
        for lease in self._leases:
            if lease.requests >= 1 and lease.tokens >= need:
                return lease
        return None

    def _expire(self, now: float) -> None:
        leases = self._leases
        while leases and (leases[0].expires_at <= now or leases[0].requests < 1):
            old = leases.popleft()
            requests = int(old.requests) if self.rpm else 0
            tokens = int(old.tokens) if self.tpm else 0
            self._give_back(old.slot, requests, tokens)

    def _calls_in(self, lease: _Lease) -> float:
        """How many calls of the usual size ``lease`` still covers."""
        if not self.tpm:
            return lease.requests
        return min(lease.requests, lease.tokens / max(1.0, self._tokens_per_call))

    def _give_back(self, slot: int, requests: int, tokens: int) -> None:
        held = self._returns.setdefault(slot, [0, 0])
        held[0] += requests
        held[1] += tokens

    def _counted(self, tokens: int) -> int:
        """Tokens as the limit counts them: capped at the whole limit, like `RateLimiter`."""
        return min(tokens, self.tpm) if self.tpm else 0

    def _note_rate(self, tokens: int, now: float) -> None:
        tau = 2 * self.lease_s
        decay = math.exp(-max(0.0, now - self._rate_at) / tau)
        self._rate = self._rate * decay + 1 / tau
        self._rate_at = now
        per_call = self._counted(tokens)
        self._tokens_per_call = (
            per_call
            if not self._tokens_per_call
            else (0.8 * self._tokens_per_call + 0.2 * per_call)
        )

    def _lease_size(self, queued: int) -> int:
        """Requests to ask for: two leases' worth at this process's rate, at least one."""
        wanted = math.ceil(self._rate * self.lease_s * 2) + queued
        return max(1, min(wanted, self._cap(self.rpm)))

    def _cap(self, limit: int | None) -> int:
        if not limit:
            return 1 << 30
        return max(1, math.ceil(limit * LEASE_CAP_S / WINDOW_S))
