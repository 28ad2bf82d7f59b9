"""A stream read by URL (Replicate's) against a loopback server whose result fetch hangs.

The stream arrives whole; the fetch of the finished prediction, for its token counts,
never answers. The attempt still ends in time with the streamed text (and unknown,
zero, counts) instead of failing a stream the caller already has.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from runtime._chat import ChatRequest, Message
from runtime._transport.attempt import AttemptLimits, run_attempt
from runtime._transport.http import ProviderClient
from runtime.protocols import Endpoint
from runtime.protocols import _replicate as replicate
from runtime.testing._server import LoopbackServer

pytestmark = pytest.mark.timeout(20)

MODEL = "meta/meta-llama-3-8b-instruct"


def hanging_result_app(base: list[str]) -> web.Application:
    """Create answers ``starting``; the stream sends two pieces; the result never comes."""

    async def create(request: web.Request) -> web.Response:
        await request.read()
        urls = {"stream": f"{base[0]}/stream/p1", "get": f"{base[0]}/predictions/p1"}
        return web.json_response({"id": "p1", "status": "starting", "urls": urls}, status=201)

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for number, (event, data) in enumerate(
            [("output", "Hi"), ("output", " there"), ("done", "{}")]
        ):
            await response.write(f"event: {event}\nid: {number}\ndata: {data}\n\n".encode())
        await response.write_eof()
        return response

    async def result(request: web.Request) -> web.Response:
        await asyncio.sleep(60)
        return web.json_response({}, status=500)

    app = web.Application()
    app.router.add_post("/v1/models/{owner}/{name}/predictions", create)
    app.router.add_get("/v1/stream/p1", stream)
    app.router.add_get("/v1/predictions/p1", result)
    return app


def test_a_result_fetch_that_hangs_leaves_the_streamed_answer_standing():
    """The attempt ends within its time with the streamed text, its counts marked unknown."""
    base: list[str] = []
    server = LoopbackServer(lambda: hanging_result_app(base), name="hanging-result")
    server.start()
    try:
        base.append(server.url + "/v1")
        endpoint = Endpoint(base[0], MODEL, api_key="r8_token")
        request = ChatRequest((Message("user", "Hello"),), MODEL)
        call = replicate.chat_request(endpoint, request, stream=True)
        deltas: list[str] = []

        async def attempt() -> tuple[float, str, int, bool]:
            client = ProviderClient(4, 5.0)
            try:
                start = time.monotonic()
                result = await run_attempt(
                    client, replicate.PROTOCOL, call, AttemptLimits(5.0, 1.0), deltas.append
                )
                elapsed = time.monotonic() - start
                return elapsed, result.text, result.usage.total_tokens, result.usage_known
            finally:
                await client.aclose()

        elapsed, text, tokens, known = asyncio.run(attempt())
    finally:
        server.stop()
    assert (text, tokens, known) == ("Hi there", 0, False)
    assert deltas == ["Hi", " there"]
    assert elapsed < 1.0
