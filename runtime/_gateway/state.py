"""What the gateway's handlers share: the board, the keys, the count of requests in flight."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from runtime._board.board import Callboard
from runtime._config.schema import GatewaySettings
from runtime._gateway.keys import Admission, KeyRing


@dataclass(slots=True)
class Gateway:
    """The state of one gateway; owned by its event loop (no locks: one thread touches it)."""

    board: Callboard
    settings: GatewaySettings
    keys: KeyRing
    in_flight: int = 0
    draining: bool = False


GATEWAY = web.AppKey("gateway", Gateway)
REQUEST_ID = web.RequestKey("request_id", str)
"""The request's id: its ``x-request-id``, or one made for it."""
ADMISSION = web.RequestKey("admission", Admission)
"""How the request was admitted: the tenant its gateway key names (``None``: an open gateway)."""
