"""The design's floor: callboard's thread hand-offs with none of its work.

A caller tells a router actor, the router tells a provider actor, the provider starts the
HTTP attempt on the I/O loop, the attempt's end tells the provider, the provider tells
the router, and the router settles the caller's future: the six hand-offs of a task, on
the same actor base class (`DispatchingActor`, pykka threads with `SimpleQueue` inboxes),
the same I/O loop, HTTP client and protocol code as the board, and no routing, limits,
breaker, budgets, records or metrics. `bench_runtime.py --only floor` runs it beside the
board: what the skeleton costs is what the design costs before callboard does anything.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass
from typing import Any

import pykka

from actors._child import DispatchingActor
from runtime._transport.attempt import AttemptLimits, run_attempt
from runtime._transport.http import ProviderClient
from runtime._transport.io_loop import IoLoop
from runtime.protocols import HttpCall, WireProtocol


@dataclass(frozen=True, slots=True)
class _Submit:
    reply: concurrent.futures.Future[Any]


@dataclass(frozen=True, slots=True)
class _Start:
    call_id: int


@dataclass(frozen=True, slots=True)
class _IoDone:
    call_id: int
    result: object


@dataclass(frozen=True, slots=True)
class _Done:
    call_id: int
    result: object


class _Provider(DispatchingActor):
    def __init__(self, router: pykka.ActorRef[Any], io: IoLoop, attempt: _Attempt) -> None:
        super().__init__()
        self.router, self.io, self.attempt = router, io, attempt
        self.handlers = {_Start: self._start, _IoDone: self._io_done}

    def _start(self, message: _Start) -> None:
        self.io.spawn(self.attempt.run(), _tell_done, self.actor_ref, message.call_id)

    def _io_done(self, message: _IoDone) -> None:
        self.router.tell(_Done(message.call_id, message.result))


def _tell_done(ref: pykka.ActorRef[Any], call_id: int, task: asyncio.Task[object]) -> None:
    ref.tell(_IoDone(call_id, task.result()))


class _Router(DispatchingActor):
    def __init__(self) -> None:
        super().__init__()
        self.provider: pykka.ActorRef[Any] | None = None
        self.waiting: dict[int, concurrent.futures.Future[Any]] = {}
        self.next_id = 0
        self.handlers = {_Submit: self._submit, _Done: self._done, pykka.ActorRef: self._wire}

    def _wire(self, provider: pykka.ActorRef[Any]) -> None:
        self.provider = provider

    def _submit(self, message: _Submit) -> None:
        self.next_id += 1
        self.waiting[self.next_id] = message.reply
        assert self.provider is not None
        self.provider.tell(_Start(self.next_id))

    def _done(self, message: _Done) -> None:
        self.waiting.pop(message.call_id).set_result(message.result)


@dataclass(frozen=True, slots=True)
class _Attempt:
    client: ProviderClient
    protocol: WireProtocol
    call: HttpCall
    limits: AttemptLimits

    def run(self) -> Any:
        return run_attempt(self.client, self.protocol, self.call, self.limits)


class Skeleton:
    """The hand-offs of a task through a router and a provider actor, and nothing else."""

    def __init__(self, protocol: WireProtocol, call: HttpCall) -> None:
        self.io = IoLoop("skeleton-io")
        self.client = ProviderClient(1024, 5.0)
        attempt = _Attempt(self.client, protocol, call, AttemptLimits(4.0, 60.0))
        self.router = _Router.start()
        self.provider = _Provider.start(self.router, self.io, attempt)
        self.router.tell(self.provider)

    def ask(self) -> object:
        """One call from a thread: wait for its answer."""
        reply: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.router.tell(_Submit(reply))
        return reply.result(60)

    async def aask(self) -> object:
        """One call from asyncio: await its answer."""
        reply: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.router.tell(_Submit(reply))
        return await asyncio.wrap_future(reply)

    def close(self) -> None:
        """Stop the actors, close the client and the loop."""
        self.provider.stop()
        self.router.stop()
        self.io.run(self.client.aclose(), 5)
        self.io.close()
