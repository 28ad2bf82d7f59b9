"""State shared by every process of a fleet: the port, and its Redis implementation.

A provider actor asks its store for leases of the provider's fleet-wide limits
(`SharedStore.lease`) and publishes what it learns of the provider's health
(`SharedStore.publish`: a 429's cooldown, an open breaker, a revoked key); the store tells it
what other processes published (`SharedStore.watch`). All of it runs on the I/O loop and
answers with futures whose done-callbacks send messages, like HTTP; no actor ever waits.

Each note is also kept (``<namespace>:health:<provider>``, expiring with what it says) so
a process that starts later reads it (`SharedStore.last`); after a shared rest one process
takes the trial token (`SharedStore.claim_trial`) and sends the fleet's one trial call.
Budgets lease dollars the same way as limits lease requests (`RedisStore.budget`, see
`shared_budgets`).

Without ``[shared] url`` there is no store: each process keeps its own limits and health,
as it always did. `RedisStore` is the one implementation: one atomic script per lease (see
`lease_script`), one ``PUBLISH`` per health note, and one subscription per process. Every
Redis failure is translated here, once, into `SharedStoreUnavailableError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from runtime._errors import MissingExtraError
from runtime._policy.leased_ledger import BudgetAsk, BudgetGrant
from runtime._policy.leases import Grant, LeaseAsk
from runtime._policy.rate_limits import WINDOW_S
from runtime._transport.lease_script import BUDGET_SCRIPT, LEASE_SCRIPT

if TYPE_CHECKING:
    from runtime._config.schema import Config, SharedSettings
    from runtime._transport.io_loop import IoLoop

SHARED_EXTRA = "pip install 'callboard[redis]'"
SLOT_S = 0.5
"""The resolution of the store's windows."""
LIVE_S = 10.0
"""A process counts as live this long after its last lease."""
RECONNECT_S = 0.5
"""The pause before the health subscription tries Redis again."""
OUT_KEPT_S = 86400.0
"""How long the last ``out`` note is kept for processes that start later."""
RUN_KEPT_S = 7 * 86400.0
"""How long a workflow run's account of a ``total`` budget is kept after its last ask."""


class SharedStoreUnavailableError(Exception):
    """The shared store could not be reached or did not answer in time (the message says how)."""


@dataclass(frozen=True, slots=True)
class HealthNote:
    """What one process learned of a provider's health, for every other process."""

    provider: str
    kind: str
    """``cooling`` (a 429), ``open`` (its breaker opened), ``out`` (key revoked, quota spent)
    or ``ok`` (the fleet's one trial call after a rest succeeded)."""
    for_s: float
    """How long it lasts from ``sent_at`` (``out``: until a reload)."""
    reason: str
    origin: str
    """The process that saw it."""
    sent_at: float
    """When it was published (``time.time()``): its receivers measure the propagation."""

    def to_json(self) -> str:
        """Return the note as the JSON published."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> HealthNote:
        """Read a published note."""
        fields: dict[str, Any] = json.loads(text)
        return cls(**fields)


HealthWatcher = Callable[[HealthNote, float], None]
"""Called on the I/O loop with another process's note and when it arrived (``time.time()``)."""


class SharedStore(Protocol):
    """What a provider actor needs of the fleet's shared state."""

    origin: str

    def lease(
        self, provider: str, rpm: int | None, tpm: int | None, ask: LeaseAsk, lease_s: float
    ) -> concurrent.futures.Future[Grant]:
        """Ask for a lease; the future fails with `SharedStoreUnavailableError`."""
        ...

    def publish(self, note: HealthNote) -> None:
        """Tell every other process (best effort: a lost store loses the note)."""
        ...

    def watch(self, provider: str, watcher: HealthWatcher) -> None:
        """Call ``watcher`` with every other process's note about ``provider``."""
        ...

    def last(self, provider: str) -> concurrent.futures.Future[HealthNote | None]:
        """The last note published about ``provider`` that still holds (for a new process)."""
        ...

    def claim_trial(self, provider: str, for_s: float) -> concurrent.futures.Future[bool]:
        """Take ``provider``'s trial token for ``for_s`` (``False``: another process has it)."""
        ...

    def release_trial(self, provider: str) -> None:
        """Give the trial token back (best effort: it expires anyway)."""
        ...

    def unwatch(self, provider: str, watcher: HealthWatcher) -> None:
        """Stop calling ``watcher``."""
        ...


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What `RedisStore.status` found: the server's version and one round trip's time."""

    version: str
    latency_ms: float


class RedisStore:
    """The shared store on Redis (redis-py's asyncio client, on the I/O loop)."""

    def __init__(self, settings: SharedSettings, io: IoLoop) -> None:
        try:
            import redis.asyncio as aioredis  # noqa: PLC0415 - an optional extra
            from redis.asyncio.retry import Retry  # noqa: PLC0415
            from redis.backoff import NoBackoff  # noqa: PLC0415
        except ImportError:
            raise MissingExtraError(
                f"[shared] url needs the Redis client: {SHARED_EXTRA}"
            ) from None
        url = settings.redis_url() or ""
        timeout = settings.timeout_s
        self._io = io
        self._timeout_s = timeout
        self._ns = settings.namespace
        self.origin = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        no_retry = Retry(NoBackoff(), 0)
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=no_retry
        )
        self._listener = aioredis.Redis.from_url(
            url, socket_connect_timeout=timeout, retry=no_retry
        )
        self._script = self._client.register_script(LEASE_SCRIPT)
        self._budget_script = self._client.register_script(BUDGET_SCRIPT)
        self._watchers: dict[str, list[HealthWatcher]] = {}
        self._listening: concurrent.futures.Future[None] | None = None
        self.subscribed = threading.Event()
        """Set while the health subscription is live."""
        self._errors = (aioredis.RedisError, OSError, TimeoutError)

    @property
    def channel(self) -> str:
        """The channel health notes go on."""
        return f"{self._ns}:health"

    def start(self, wait_s: float) -> None:
        """Subscribe to health notes; wait up to ``wait_s`` for the subscription."""
        self._listening = self._io.submit(self._listen())
        self.subscribed.wait(wait_s)

    def lease(
        self, provider: str, rpm: int | None, tpm: int | None, ask: LeaseAsk, lease_s: float
    ) -> concurrent.futures.Future[Grant]:
        """Ask for a lease of ``provider``'s limits (see `lease_script`)."""
        keys = [f"{self._ns}:rate:{provider}:rpm", f"{self._ns}:rate:{provider}:tpm"]
        keys.append(f"{self._ns}:processes")
        span = int((WINDOW_S + lease_s) / SLOT_S) + 3
        args: list[int | str] = [int(SLOT_S * 1000), span, self.origin, int(LIVE_S * 1000)]
        args += [rpm or 0, tpm or 0, ask.requests, ask.tokens, ask.min_tokens, *ask.backfill]
        for returned in ask.returns:
            args += returned
        return self._io.submit(self._lease(keys, args))

    async def _lease(self, keys: list[str], args: list[int | str]) -> Grant:
        reply = await self._guarded(self._script(keys=keys, args=args))
        requests, tokens, slot, processes, retry_ms = (int(x) for x in reply)
        return Grant(requests, tokens, slot, processes, retry_ms / 1000)

    def budget(self, ask: BudgetAsk) -> concurrent.futures.Future[BudgetGrant]:
        """Report spend and ask for a lease of a budget account (see `BUDGET_SCRIPT`)."""
        name, account = ask.key
        key = f"{self._ns}:budget:{name}:{account}:{int(ask.period_start)}"
        if ask.period_end is not None:
            ttl_ms = int((ask.period_end - time.time() + 86400) * 1000)
        else:  # a total budget's account lasts; a run's (its workflow id) not forever
            ttl_ms = int(RUN_KEPT_S * 1000) if account else 0
        args: list[float | int | str] = [ask.limit_usd, ask.report_usd, ask.give_back_usd]
        args += [ask.want_usd, ask.min_usd, ask.restored_usd, max(ttl_ms, 0), ask.backfill_usd]
        args += [self.origin, int(LIVE_S * 1000)]
        keys = [key, f"{self._ns}:processes"]
        return self._io.submit(self._budget(keys, args))

    async def _budget(self, keys: list[str], args: list[float | int | str]) -> BudgetGrant:
        reply = await self._guarded(self._budget_script(keys=keys, args=args))
        granted, spent, leased = (float(x) for x in reply[:3])
        return BudgetGrant(granted, spent, leased, int(reply[3]))

    async def _guarded(self, work: Any) -> Any:
        """Await one Redis command, translating every failure (the one boundary)."""
        try:
            return await asyncio.wait_for(work, self._timeout_s)
        except self._errors as error:
            why = str(error) or type(error).__name__
            raise SharedStoreUnavailableError(f"Redis did not answer: {why}") from None

    def publish(self, note: HealthNote) -> None:
        """Publish ``note`` on the health channel."""
        self._io.submit(self._publish(note))

    async def _publish(self, note: HealthNote) -> None:
        text = note.to_json()
        # the last note stays as long as it holds, for processes that start later
        keep_s = note.for_s if note.kind in {"cooling", "open"} else OUT_KEPT_S
        keep_ms = max(1, int(keep_s * 1000))
        try:
            if note.kind == "ok":
                await self._guarded(self._client.delete(self._last_key(note.provider)))
            else:
                await self._guarded(
                    self._client.set(self._last_key(note.provider), text, px=keep_ms)
                )
            await self._guarded(self._client.publish(self.channel, text))
        except SharedStoreUnavailableError:
            return  # the process rests by itself; the others learn on their own

    def _last_key(self, provider: str) -> str:
        return f"{self._ns}:health:{provider}"

    def last(self, provider: str) -> concurrent.futures.Future[HealthNote | None]:
        """Read the last note published about ``provider`` that still holds."""
        return self._io.submit(self._last(provider))

    async def _last(self, provider: str) -> HealthNote | None:
        text = await self._guarded(self._client.get(self._last_key(provider)))
        if text is None:
            return None
        try:
            note = HealthNote.from_json(text)
        except (ValueError, TypeError):
            return None
        return None if note.origin == self.origin else note

    def claim_trial(self, provider: str, for_s: float) -> concurrent.futures.Future[bool]:
        """Take ``provider``'s trial token (``SET NX`` with an expiry of ``for_s``)."""
        return self._io.submit(self._claim(provider, for_s))

    async def _claim(self, provider: str, for_s: float) -> bool:
        key = f"{self._ns}:trial:{provider}"
        taken = self._client.set(key, self.origin, nx=True, px=max(1, int(for_s * 1000)))
        return bool(await self._guarded(taken))

    def release_trial(self, provider: str) -> None:
        """Give the trial token back."""
        self._io.submit(self._release(provider))

    async def _release(self, provider: str) -> None:
        try:
            await self._guarded(self._client.delete(f"{self._ns}:trial:{provider}"))
        except SharedStoreUnavailableError:
            return  # it expires

    def watch(self, provider: str, watcher: HealthWatcher) -> None:
        """Call ``watcher`` (on the I/O loop) with other processes' notes about ``provider``."""
        self._watchers.setdefault(provider, []).append(watcher)

    def unwatch(self, provider: str, watcher: HealthWatcher) -> None:
        """Stop calling ``watcher``."""
        watchers = self._watchers.get(provider, [])
        if watcher in watchers:
            watchers.remove(watcher)

    async def _listen(self) -> None:
        """Receive health notes until closed, subscribing again whenever Redis comes back."""
        while True:
            pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._deliver(message["data"], time.time())
            except self._errors:
                self.subscribed.clear()
                await asyncio.sleep(RECONNECT_S)
            finally:
                self.subscribed.clear()
                await pubsub.aclose()

    def _deliver(self, data: bytes, arrived: float) -> None:
        try:
            note = HealthNote.from_json(data)
        except (ValueError, TypeError):
            return  # not ours
        if note.origin == self.origin:
            return
        for watcher in list(self._watchers.get(note.provider, ())):
            watcher(note, arrived)

    def status(self) -> StoreStatus:
        """Return the server's version and a round trip's time (from a caller's thread).

        Raises:
            SharedStoreUnavailableError: Redis could not be reached.
        """
        return self._io.run(self._status(), self._timeout_s * 4)

    async def _status(self) -> StoreStatus:
        started = time.perf_counter()
        await self._guarded(self._client.ping())
        latency_ms = (time.perf_counter() - started) * 1000
        info = await self._guarded(self._client.info("server"))
        return StoreStatus(str(info.get("redis_version", "?")), latency_ms)

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop listening and close the connections."""
        if self._listening is not None:
            self._listening.cancel()
        try:
            self._io.run(self._close(), timeout_s)
        except (concurrent.futures.TimeoutError, RuntimeError, *self._errors):
            return

    async def _close(self) -> None:
        await self._client.aclose()
        await self._listener.aclose()


def shared_store_for(config: Config, io: IoLoop) -> RedisStore | None:
    """Start the store ``[shared]`` names, subscribed to health notes (``None``: none named).

    An unreachable Redis does not stop the start: the store keeps trying, and each
    provider falls back to its local share until it answers.
    """
    if config.shared.redis_url() is None:
        return None
    store = RedisStore(config.shared, io)
    store.start(wait_s=config.shared.timeout_s * 4)
    return store
