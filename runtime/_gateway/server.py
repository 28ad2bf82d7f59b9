"""Running the gateway: listen, serve until SIGTERM or SIGINT, drain, close the board.

On a signal the gateway stops listening and answers 503 to requests that still arrive on
open connections, lets the requests in flight finish within ``[gateway] drain_s`` (then
cancels the rest, which cancels their tasks), and closes the board, so every record is
written before the process exits.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from aiohttp import web

from runtime._board.board import Callboard
from runtime._gateway.app import build_app
from runtime._gateway.state import GATEWAY

_BACKLOG = 2048


async def serve(
    board: Callboard,
    host: str,
    port: int,
    *,
    on_listening: Callable[[str], object] = lambda _url: None,
    stop: asyncio.Event | None = None,
    signals: bool = True,
) -> None:
    """Serve ``board`` on ``host:port`` until SIGTERM or SIGINT (or ``stop`` is set), then drain.

    ``on_listening`` gets the URL once connections are accepted (port 0 picks a free one).
    ``signals=False`` leaves the signals alone (a gateway served from another thread).
    """
    app = build_app(board)
    gateway = app[GATEWAY]
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        handler_cancellation=True,
        shutdown_timeout=gateway.settings.drain_s,
    )
    await runner.setup()
    stopping = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = (signal.SIGTERM, signal.SIGINT) if signals else ()
    for signum in handled:
        loop.add_signal_handler(signum, stopping.set)
    try:
        site = web.TCPSite(runner, host, port, backlog=_BACKLOG, reuse_address=True)
        await site.start()
        bound = runner.addresses[0]
        on_listening(f"http://{bound[0]}:{bound[1]}")
        await stopping.wait()
        gateway.draining = True
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        await runner.cleanup()


def run(board: Callboard, host: str, port: int, on_listening: Callable[[str], object]) -> None:
    """Serve ``board`` from this (main) thread until a signal, then close the board."""
    try:
        asyncio.run(serve(board, host, port, on_listening=on_listening))
    finally:
        board.close()
