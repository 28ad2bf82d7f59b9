"""The gateway's aiohttp application: routes behind one guard.

The guard gives every request its id (``x-request-id``, echoed or made), refuses it at
once while the gateway drains or has ``max_in_flight`` requests already (503), checks its
key (401; ``/health``, ``/ready`` and ``/metrics`` are open), and turns every failure
into the error shape of the API that was called, so the official SDKs raise their own
exception classes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from runtime._board.board import Callboard
from runtime._gateway.apis import api_for_path
from runtime._gateway.failures import Failure, busy, draining, failure_of
from runtime._gateway.keys import Admission, KeyRing
from runtime._gateway.routes import json_response, routes
from runtime._gateway.state import ADMISSION, GATEWAY, REQUEST_ID, Gateway

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})


def build_app(board: Callboard) -> web.Application:
    """The gateway in front of ``board``, configured by its ``[gateway]`` settings."""
    settings = board.config.gateway
    app = web.Application(middlewares=[_guard], client_max_size=settings.max_body_bytes)
    app[GATEWAY] = Gateway(board, settings, KeyRing(settings.keys))
    app.add_routes(routes())
    app.on_response_prepare.append(_echo_request_id)
    return app


def error_response(path: str, failure: Failure) -> web.Response:
    """``failure`` in the error shape of the API at ``path``."""
    headers = {}
    if failure.retry_after_s is not None:
        headers["retry-after"] = str(max(1, round(failure.retry_after_s)))
    return json_response(api_for_path(path).error(failure), failure.status, headers)


@web.middleware
async def _guard(request: web.Request, handler: _Handler) -> web.StreamResponse:
    request[REQUEST_ID] = request.headers.get("x-request-id") or uuid.uuid4().hex
    request[ADMISSION] = Admission(admitted=True)
    if request.path in _OPEN_PATHS:
        return await handler(request)
    gateway = request.app[GATEWAY]
    refusal = _refusal(request, gateway)
    if refusal is not None:
        return error_response(request.path, refusal)
    gateway.in_flight += 1
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = gateway.settings.max_body_bytes
        failure = Failure(413, f"the request body is larger than {limit} bytes")
    except web.HTTPException as exc:
        failure = Failure(exc.status, f"{exc.reason}: {request.method} {request.path}")
    except Exception as exc:  # every failure the gateway knows answers in the API's shape
        known = failure_of(exc)
        if known is None:
            raise
        failure = known
    finally:
        gateway.in_flight -= 1
    return error_response(request.path, failure)


def _refusal(request: web.Request, gateway: Gateway) -> Failure | None:
    """Why a request is refused before it starts: draining, too many in flight, its key."""
    if gateway.draining:
        return draining()
    if gateway.in_flight >= gateway.settings.max_in_flight:
        return busy(gateway.settings.max_in_flight)
    admission = gateway.keys.admit(request.headers)
    if not admission.admitted:
        return Failure(401, admission.reason, code="invalid_api_key")
    request[ADMISSION] = admission
    return None


async def _echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["x-request-id"] = request_id
