"""The fake provider: a loopback server that answers as one provider's real API does.

`FakeProvider` does the I/O and the bookkeeping every provider shares (keys, models, the
rate-limit budget, the script, the request log); its subclasses name the protocol module
(`Wire`) that knows the wire format.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, NoReturn, Self, assert_never, cast

from aiohttp import web

from runtime.testing._budget import Budget
from runtime.testing._completion import (
    AskError,
    ChatAsk,
    Completion,
    count_tokens,
    plan_completion,
    random_id,
)
from runtime.testing._log import SECRET_HEADERS, SECRET_QUERY, RecordedRequest, RequestLog, masked
from runtime.testing._script import (
    THINK_EVENT_S,
    Answer,
    Behaviour,
    Cut,
    Drop,
    Fail,
    Hang,
    Malformed,
    ProxyError,
    Reset,
    Script,
    Stall,
    StreamError,
    Trickle,
)
from runtime.testing._server import LoopbackServer
from runtime.testing._wire import Action, DeferredWire, EmbedWire, Reply, StreamPlan, Wire

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_BODY = web.RequestKey("callboard_fake_body", object)
_NOT_JSON = object()
_MAX_BODY = 32 * 1024 * 1024
"""The largest request body taken, as Anthropic documents for its Messages API."""
EMBED_DIMENSIONS = 16
"""The length of a fake embedding when the request asks for none."""
MAX_DEFERRED = 1024
"""Streams created and not yet read, and results not yet fetched, kept at most."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Deferred:
    """A streamed answer created by one request, to be read by a later one (Replicate)."""

    plan: StreamPlan
    headers: dict[str, str]
    answer: Answer
    cut: Cut | None
    result: Any


class FakeProvider:
    """A fake provider API on ``127.0.0.1``, speaking one provider's real wire format.

    Args:
        keys: The API keys accepted (one key may be given as a string); ``None`` accepts
            any request, with or without a key.
        models: The models offered (default: a realistic list for the provider).
        script: Behaviours for the first chat requests, one each, in order.
        checks: Behaviours for the first model-list or model-lookup requests (what
            callboard's start-up check asks), one each, in order: `Fail`, `Malformed`,
            `ProxyError`, `Hang` and `Drop` act as for a chat request; anything else, and
            a spent script, answers normally.
        default: The answer given once the script is spent.
        latency_s: The wait before answering, for answers that set no ``delay_s``.
        rpm: A requests-per-minute limit to enforce (429 past it); ``None``: no limit.
        port: The port to serve (0: any free port).
        respond: Chooses the behaviour for a chat request from its text (the system
            prompt and every message, joined) once the script is spent; ``None`` from
            it means the default answer.
    """

    wire: ClassVar[Wire]

    def __init__(
        self,
        *,
        keys: str | Iterable[str] | None = None,
        models: str | Iterable[str] | None = None,
        script: Iterable[Behaviour] = (),
        checks: Iterable[Behaviour] = (),
        default: Answer | None = None,
        latency_s: float = 0.0,
        rpm: int | None = None,
        port: int = 0,
        respond: Callable[[str], Behaviour | None] | None = None,
    ) -> None:
        self._keys = None if keys is None else {keys} if isinstance(keys, str) else set(keys)
        self._keys_lock = threading.Lock()
        if isinstance(models, str):
            models = (models,)
        self.models: tuple[str, ...] = self.wire.MODELS if models is None else tuple(models)
        self.script = Script(script)
        self.checks = Script(checks)
        self.log = RequestLog()
        self.default = default or Answer()
        self.respond = respond
        self.latency_s = latency_s
        self._requests = Budget(rpm or self.wire.REQUESTS_PER_MINUTE, enforced=rpm is not None)
        self._tokens = Budget(self.wire.TOKENS_PER_MINUTE, enforced=False)
        self._streams_by_url = any(r.action is Action.FETCH_STREAM for r in self.wire.ROUTES)
        self._deferred: dict[str, _Deferred] = {}
        self._results: dict[str, Any] = {}
        self._handlers = {route: self._handler(route.action) for route in self.wire.ROUTES}
        self._actions = {handler: route.action for route, handler in self._handlers.items()}
        self._server = LoopbackServer(self._make_app, port=port, name=f"fake-{self.wire.NAME}")

    @property
    def protocol(self) -> str:
        """``"openai"``, ``"anthropic"`` or ``"gemini"``."""
        return self.wire.NAME

    @property
    def port(self) -> int:
        """The port served (known once started)."""
        return self._server.port

    @property
    def base_url(self) -> str:
        """The API root with its version path: ``http://127.0.0.1:PORT/v1`` (Gemini ``/v1beta``)."""
        return self._server.url + self.wire.API_ROOT

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request received so far, oldest first, secrets masked."""
        return self.log.entries()

    def start(self) -> Self:
        """Start serving; returns once the port accepts connections."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving, cutting requests still in flight. Idempotent."""
        self._server.stop()

    def down(self) -> None:
        """Stop listening: connections are refused until `up`."""
        self._server.down()

    def up(self) -> None:
        """Listen again on the same port."""
        self._server.up()

    def revoke_key(self, key: str) -> None:
        """Make ``key`` invalid from now on."""
        with self._keys_lock:
            if self._keys is None:
                raise RuntimeError("this fake accepts any key; give it keys=... to revoke one")
            self._keys.discard(key)

    def add_key(self, key: str) -> None:
        """Accept ``key`` from now on."""
        with self._keys_lock:
            self._keys = {key} if self._keys is None else self._keys | {key}

    def wait_for_requests(
        self, count: int, *, chat_only: bool = False, timeout_s: float = 5.0
    ) -> tuple[RecordedRequest, ...]:
        """Block until ``count`` requests (only chat requests, if asked) have arrived.

        Raises:
            TimeoutError: they had not after ``timeout_s`` seconds.
        """
        where = (lambda r: r.is_chat) if chat_only else None
        return self.log.wait_for(count, where=where, timeout_s=timeout_s)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _make_app(self) -> web.Application:
        @web.middleware
        async def record(request: web.Request, handler: _Handler) -> web.StreamResponse:
            return await self._record(request, handler)

        app = web.Application(
            middlewares=[self._server.middleware(), record], client_max_size=_MAX_BODY
        )
        for route, handler in self._handlers.items():
            app.router.add_route(route.method, route.path, handler)
        app.router.add_route("*", "/{path:.*}", self._unknown_path)
        return app

    async def _unknown_path(self, request: web.Request) -> web.StreamResponse:
        return _json(self.wire.unknown_path(request.method, request.path))

    async def _record(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        received_at = time.monotonic()
        raw = await request.read() if request.body_exists else b""
        body: object = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = _NOT_JSON
        request[_BODY] = body
        action = self._actions.get(request.match_info.handler)
        entry = RecordedRequest(
            method=request.method,
            path=request.path,
            query=masked(request.query, SECRET_QUERY),
            headers=masked(request.headers, SECRET_HEADERS),
            json=None if body is _NOT_JSON else body,
            action=action.value if action else "",
            received_at=received_at,
            peer=_peer(request),
        )
        self.log.record(entry)
        return await handler(request)

    def _handler(self, action: Action) -> _Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._dispatch(action, request)

        return handle

    async def _dispatch(self, action: Action, request: web.Request) -> web.StreamResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return _json(refusal)
        model = request.match_info.get("model", "")
        if action in (Action.LIST_MODELS, Action.GET_MODEL):
            return await self._check(action, model)
        if action is Action.EMBED:
            return self._embed(request)
        if action in (Action.FETCH_STREAM, Action.FETCH_RESULT):
            return await self._fetch(action, request)
        return await self._chat(request, model or None, stream=action is Action.CHAT_STREAM)

    async def _check(self, action: Action, model: str) -> web.StreamResponse:
        """Answer a model-list or model-lookup request as the `checks` script says."""
        match self.checks.pop_next():
            case Fail() as fail:
                return _json(self.wire.failure(fail, model))
            case Malformed(body=body):
                return web.Response(text=body, content_type="application/json")
            case ProxyError() as proxy:
                return _proxy_page(proxy)
            case Hang():
                return await _hang()
            case Drop():
                return await _drop()
            case _:
                return self._models(action, model)

    def _models(self, action: Action, model: str) -> web.Response:
        """List the models, or describe one."""
        if action is Action.LIST_MODELS:
            return _json(Reply(200, self.wire.model_list(self.models)), self.wire.id_headers())
        if model not in self.models:
            return _json(self.wire.unknown_model(model))
        return _json(Reply(200, self.wire.model_info(model)), self.wire.id_headers())

    async def _fetch(self, action: Action, request: web.Request) -> web.StreamResponse:
        """Send the stream of an answer created earlier, or its result once streamed."""
        ident = request.match_info.get("prediction", "")
        if action is Action.FETCH_RESULT:
            result = self._results.get(ident)
            if result is None:
                return await self._unknown_path(request)
            return _json(Reply(200, result), self.wire.id_headers())
        deferred = self._deferred.pop(ident, None)
        if deferred is None:
            return await self._unknown_path(request)
        if deferred.cut is None:
            _bounded_put(self._results, ident, deferred.result)
        return await self._stream(
            request, deferred.plan, deferred.headers, deferred.answer, deferred.cut
        )

    def _defer(
        self,
        completion: Completion,
        ask: ChatAsk,
        plan: StreamPlan,
        *,
        headers: dict[str, str],
        answer: Answer,
        cut: Cut | None,
    ) -> web.Response:
        """Create a streamed answer to be read by URL; answer with where to read it."""
        wire = cast("DeferredWire", self.wire)
        ident = random_id("", 26, "abcdefghijklmnopqrstuvwxyz0123456789")
        result = wire.finished(completion, ask.model, ident, self.base_url)
        _bounded_put(self._deferred, ident, _Deferred(plan, headers, answer, cut, result))
        return _json(Reply(201, wire.started(ask.model, ident, self.base_url)), headers)

    def _embed(self, request: web.Request) -> web.StreamResponse:
        """Answer an embeddings request: a deterministic unit vector per text (no script)."""
        wire = cast("EmbedWire", self.wire)  # only an EmbedWire routes to Action.EMBED
        body = request[_BODY]
        if body is _NOT_JSON:
            return _json(wire.bad_request(AskError("The request body is not valid JSON.")))
        try:
            ask = wire.read_embed(body)
        except AskError as error:
            return _json(wire.bad_request(error))
        deployment = request.match_info.get("model")
        if deployment:  # the path names the model (Azure's deployment): it wins over the body
            ask = dataclasses.replace(ask, model=deployment)
        if ask.model not in self.models:
            return _json(wire.unknown_model(ask.model))
        size = ask.dimensions or EMBED_DIMENSIONS
        vectors = tuple(fake_vector(text, size) for text in ask.texts)
        tokens = sum(count_tokens(text) for text in ask.texts)
        return _json(Reply(200, wire.embed_answer(ask, vectors, tokens)), wire.id_headers())

    def _refusal(self, request: web.Request) -> Reply | None:
        presented = self.wire.presented_key(request.headers, request.query)
        with self._keys_lock:
            refused = self._keys is not None and presented not in self._keys
        if refused:
            return self.wire.auth_error(presented)
        return self.wire.header_error(request.headers)

    async def _chat(
        self, request: web.Request, model: str | None, *, stream: bool
    ) -> web.StreamResponse:
        try:
            ask = self._read_ask(request, model, stream=stream)
        except AskError as error:
            return _json(self.wire.bad_request(error))
        if ask.model not in self.models:
            return _json(self.wire.unknown_model(ask.model))
        now = time.monotonic()
        admitted = self._requests.take(1, now)
        self._tokens.take(count_tokens(ask.prompt) + (ask.max_tokens or 0), now)
        headers = self.wire.limit_headers(self._requests.state(now), self._tokens.state(now))
        headers |= self.wire.id_headers()
        if not admitted:
            wait_s = self._requests.wait_s(1, now)
            return _json(self.wire.rate_limited(ask.model, self._requests.limit, wait_s), headers)
        behaviour = self.script.pop_next() or self._respond(ask)
        return await self._perform(request, ask, behaviour, headers)

    def _respond(self, ask: ChatAsk) -> Behaviour:
        if self.respond is not None:
            answer = self.respond(ask.prompt)
            if answer is not None:
                return answer
        return self.default

    def _read_ask(self, request: web.Request, model: str | None, *, stream: bool) -> ChatAsk:
        body = request[_BODY]
        if body is _NOT_JSON:
            raise AskError("The request body is not valid JSON.")
        return self.wire.read_ask(body, model=model, stream=stream, query=request.query)

    async def _perform(
        self, request: web.Request, ask: ChatAsk, behaviour: Behaviour, headers: dict[str, str]
    ) -> web.StreamResponse:
        match behaviour:
            case Answer():
                return await self._answer(request, ask, behaviour, headers)
            case Fail():
                if behaviour.delay_s > 0:
                    await asyncio.sleep(behaviour.delay_s)
                return _json(self.wire.failure(behaviour, ask.model), headers)
            case Malformed():
                return _malformed(behaviour, ask, headers)
            case ProxyError():
                return _proxy_page(behaviour)
            case StreamError() | Stall() | Trickle() | Hang():
                return await self._cut(request, ask, behaviour, headers)
            case Drop() | Reset():
                return await _abandon(request, reset=isinstance(behaviour, Reset))
            case _:  # pragma: no cover - every behaviour is handled above
                assert_never(behaviour)

    async def _cut(
        self, request: web.Request, ask: ChatAsk, cut: Cut, headers: dict[str, str]
    ) -> web.StreamResponse:
        """Start the default answer and cut it short, or hang (before or after the headers)."""
        if ask.stream and (cut.headers if isinstance(cut, Hang) else True):
            return await self._answer(request, ask, self.default, headers, cut=cut)
        match cut:
            case StreamError():
                fail = self.wire.stream_error_failure(cut)
                return _json(self.wire.failure(fail, ask.model), headers)
            case Hang(headers=True) | Trickle():
                return await _hang_after_headers(request, headers)
            case _:
                return await _hang()

    async def _answer(
        self,
        request: web.Request,
        ask: ChatAsk,
        answer: Answer,
        headers: dict[str, str],
        cut: Cut | None = None,
    ) -> web.StreamResponse:
        delay_s = self.latency_s if answer.delay_s is None else answer.delay_s
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        completion = plan_completion(ask, answer)
        if not ask.stream:
            if answer.think_s > 0:
                await asyncio.sleep(answer.think_s)
            body = self.wire.answer(completion, ask.model)
            reply = body if isinstance(body, Reply) else Reply(200, body)  # Replicate's 201
            return _json(reply, headers)
        plan = self.wire.stream(completion, ask)
        if self._streams_by_url:
            return self._defer(completion, ask, plan, headers=headers, answer=answer, cut=cut)
        return await self._stream(request, plan, headers, answer, cut)

    async def _stream(
        self,
        request: web.Request,
        plan: StreamPlan,
        headers: dict[str, str],
        answer: Answer,
        cut: Cut | None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={**headers, "Content-Type": plan.content_type, "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if isinstance(cut, Hang):
            await _hang()
        await response.write(b"".join(plan.head))
        await _think(response, plan.idle, answer.think_s)
        if isinstance(cut, Stall):
            await response.write(plan.idle * cut.idle_events)
        body = plan.body if cut is None else plan.body[: cut.after_chunks]
        await _write_paced(response, body, answer.chunk_delay_s)
        match cut:
            case None:
                await response.write(b"".join(plan.tail))
            case Stall():
                await _hang()
            case Trickle():
                while True:
                    await asyncio.sleep(cut.every_s)
                    await response.write(plan.idle)
            case StreamError():
                error_frame = self.wire.stream_error(cut)
                if error_frame is None:
                    await _drop()
                await response.write(error_frame)
        await response.write_eof()
        return response


def _bounded_put(table: dict[str, Any], key: str, value: Any) -> None:
    """Keep ``value``, forgetting the oldest entry past `MAX_DEFERRED`."""
    table[key] = value
    if len(table) > MAX_DEFERRED:
        del table[next(iter(table))]


def fake_vector(text: str, size: int) -> tuple[float, ...]:
    """A unit vector of ``size`` floats that depends only on ``text`` (same text, same vector)."""
    raw: list[float] = []
    block = 0
    while len(raw) < size:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        raw.extend(byte / 127.5 - 1.0 for byte in digest)
        block += 1
    raw = raw[:size]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return tuple(round(x / norm, 6) for x in raw)


_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def _json(reply: Reply, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=reply.status,
        body=json.dumps(reply.body).encode(),
        headers={**(headers or {}), **reply.headers},
        content_type="application/json",
    )


def _proxy_page(behaviour: ProxyError) -> web.Response:
    return web.Response(
        status=behaviour.status, text=behaviour.body, content_type=behaviour.content_type
    )


def _malformed(behaviour: Malformed, ask: ChatAsk, headers: dict[str, str]) -> web.Response:
    if ask.stream and ask.event_stream:
        text = f"data: {behaviour.body}\n\n"
        return web.Response(text=text, headers={**headers, **_SSE_HEADERS})
    return web.Response(text=behaviour.body, headers=headers, content_type="application/json")


async def _think(response: web.StreamResponse, idle: bytes, think_s: float) -> None:
    """Think for ``think_s``, sending a non-content frame every `THINK_EVENT_S` meanwhile."""
    ends = time.monotonic() + think_s
    while (left := ends - time.monotonic()) > 0:
        await asyncio.sleep(min(THINK_EVENT_S, left))
        await response.write(idle)


async def _write_paced(
    response: web.StreamResponse, frames: tuple[bytes, ...], delay_s: float
) -> None:
    """Write ``frames``, ``delay_s`` apart (all at once when it is 0)."""
    if delay_s <= 0:
        await response.write(b"".join(frames))
        return
    for i, frame in enumerate(frames):
        if i:
            await asyncio.sleep(delay_s)
        await response.write(frame)


async def _hang_after_headers(request: web.Request, headers: dict[str, str]) -> NoReturn:
    """Send the status and headers of a whole JSON answer, then never its body."""
    response = web.StreamResponse(headers={**headers, "Content-Type": "application/json"})
    await response.prepare(request)
    await _hang()


async def _hang() -> NoReturn:
    """Wait until the server cancels this request (at `down` or `stop`)."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")  # pragma: no cover


async def _abandon(request: web.Request, *, reset: bool) -> NoReturn:
    """Abandon this request; with ``reset``, by a TCP reset (the peer reads ECONNRESET)."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None and reset else None
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await _drop()


async def _drop() -> NoReturn:
    """Abandon this request: aiohttp then closes its connection without answering."""
    task = asyncio.current_task()
    if task is not None:
        task.cancel()
    await asyncio.sleep(0)
    raise ConnectionResetError("request dropped")  # pragma: no cover


def _peer(request: web.Request) -> tuple[str, int] | None:
    """Return the client's address and port, or ``None`` when the transport is gone."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return (str(peer[0]), int(peer[1])) if peer else None
