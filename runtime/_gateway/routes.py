"""The gateway's routes: chat (both APIs, whole and streamed), embeddings, models, health.

Each chat route reads the request with its API's reader, runs the task on the board by
the role the ``model`` names (or on the one provider it pins, see ``pins``), carrying
the key's tenant, the request's id and its ``traceparent``, and writes the answer in the
same API. A streamed answer
waits for its first event before it sends its headers, so a task that fails before any
content answers with the API's error status and body; a failure after that ends the
stream with the API's error event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import orjson
from aiohttp import web

from runtime._chat import StreamDelta, StreamEnd, StreamEvent, StreamToolDelta
from runtime._errors import CallboardError
from runtime._gateway.apis import ANTHROPIC, OPENAI, ServedApi, StreamWriter
from runtime._gateway.failures import failure_of
from runtime._gateway.pins import model_names, pin_of
from runtime._gateway.state import ADMISSION, GATEWAY, REQUEST_ID, Gateway
from runtime._metrics.prometheus import EXPOSITION_TYPE
from runtime._task_spec import is_traceparent
from runtime.protocols import _openai_server
from runtime.protocols._serving import RequestError

_SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer, encoded with orjson."""
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


async def read_json(request: web.Request) -> Any:
    """The request's JSON body.

    Raises:
        RequestError: the body is not JSON.
    """
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError("the request body is not valid JSON") from None


def _task_of(request: web.Request, model: str) -> dict[str, Any]:
    """What every task of a request carries: its key's tenant, its id, trace and pin."""
    gateway: Gateway = request.app[GATEWAY]
    options: dict[str, Any] = {"request_id": request[REQUEST_ID]}
    tenant = request[ADMISSION].tenant
    if tenant is not None:
        options["tenant"] = tenant
    traceparent = request.headers.get("traceparent", "").strip()
    if is_traceparent(traceparent):  # an invalid one is ignored, as W3C says
        options["traceparent"] = traceparent
    return options | pin_of(model, gateway.board.config.roles, request.headers)


def _labels(request: web.Request, model: str) -> dict[str, Any]:
    """The options of a chat task from the request: its task's, its tags and session."""
    labels = _task_of(request, model)
    tags = [t.strip() for t in request.headers.get("x-callboard-tags", "").split(",")]
    if any(tags):
        labels["tags"] = [t for t in tags if t]
    session = request.headers.get("x-callboard-session", "").strip()
    if session:
        labels["session"] = session
    return labels


async def _chat(request: web.Request, api: ServedApi) -> web.StreamResponse:
    gateway: Gateway = request.app[GATEWAY]
    call = api.read(await read_json(request))
    options = {**call.options, **_labels(request, call.model)}
    created = int(time.time())
    if not call.stream:
        reply = await gateway.board.aask(call.model, **options)
        headers = {"x-callboard-provider": reply.provider, "x-callboard-task-id": reply.task_id}
        return json_response(api.whole(reply, call.model, created), headers=headers)
    events = cast("AsyncGenerator[StreamEvent]", gateway.board.astream(call.model, **options))
    async with contextlib.aclosing(events):
        first = await anext(events)  # a failure before any content is an HTTP error
        response = web.StreamResponse(
            headers={**_SSE_HEADERS, "x-callboard-provider": _provider(first)}
        )
        await response.prepare(request)
        writer = api.writer(request[REQUEST_ID], call.model, created, call)
        await response.write(writer.start())
        try:
            async for event in _chain(first, events):
                await response.write(_frame(writer, event))
        except CallboardError as exc:
            failure = failure_of(exc)
            if failure is None:
                raise
            await response.write(api.stream_error(failure))
    await response.write_eof()
    return response


def _provider(event: StreamEvent) -> str:
    return event.reply.provider if isinstance(event, StreamEnd) else event.provider


async def _chain(
    first: StreamEvent, rest: AsyncIterator[StreamEvent]
) -> AsyncIterator[StreamEvent]:
    yield first
    async for event in rest:
        yield event


def _frame(writer: StreamWriter, event: StreamEvent) -> bytes:
    if isinstance(event, StreamDelta):
        return writer.text(event.text)
    if isinstance(event, StreamToolDelta):
        return writer.tool(event.delta)
    if isinstance(event, StreamEnd):
        return writer.end(event.reply)
    return b""  # a restart: never asked for (streams are served with on_broken="raise")


async def openai_chat(request: web.Request) -> web.StreamResponse:
    """``POST /v1/chat/completions``."""
    return await _chat(request, OPENAI)


async def anthropic_messages(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages``."""
    return await _chat(request, ANTHROPIC)


async def openai_embeddings(request: web.Request) -> web.StreamResponse:
    """``POST /v1/embeddings``."""
    gateway: Gateway = request.app[GATEWAY]
    model, texts, dimensions, encoding = _openai_server.read_embed(await read_json(request))
    options = _task_of(request, model)
    reply = await gateway.board.aembed(model, texts, dimensions=dimensions, **options)
    headers = {"x-callboard-provider": reply.provider, "x-callboard-task-id": reply.task_id}
    return json_response(_openai_server.embed_body(reply, model, encoding), headers=headers)


async def models(request: web.Request) -> web.StreamResponse:
    """``GET /v1/models``: the roles and ``provider/model`` names a request may name."""
    gateway: Gateway = request.app[GATEWAY]
    return json_response(_openai_server.model_list(*model_names(gateway.board.config)))


async def health(_request: web.Request) -> web.StreamResponse:
    """``GET /health``: the gateway is alive."""
    return json_response({"status": "ok"})


async def ready(request: web.Request) -> web.StreamResponse:
    """``GET /ready``: each provider's standing; 503 when none is ready or while draining."""
    gateway: Gateway = request.app[GATEWAY]
    standing = await asyncio.to_thread(gateway.board.health)
    providers = {pid: {"state": h.state, "reason": h.reason} for pid, h in standing.items()}
    usable = any(h.state == "ready" for h in standing.values()) and not gateway.draining
    return json_response({"ready": usable, "providers": providers}, 200 if usable else 503)


async def prometheus_metrics(request: web.Request) -> web.StreamResponse:
    """``GET /metrics``: the board's Prometheus metrics; 404 when it keeps none."""
    gateway: Gateway = request.app[GATEWAY]
    text = await asyncio.to_thread(gateway.board.prometheus_exposition)
    if text is None:
        raise web.HTTPNotFound(
            text="Prometheus metrics are off: set [gateway] metrics = true (or [metrics] "
            "prometheus_port) and install callboard[prometheus]"
        )
    return web.Response(body=text, headers={"content-type": EXPOSITION_TYPE})


def routes() -> list[web.RouteDef]:
    """Every route of the gateway."""
    return [
        web.post("/v1/chat/completions", openai_chat),
        web.post("/v1/embeddings", openai_embeddings),
        web.get("/v1/models", models),
        web.post("/v1/messages", anthropic_messages),
        web.get("/health", health),
        web.get("/ready", ready),
        web.get("/metrics", prometheus_metrics),
    ]
