"""The memory part of `bench_runtime.py`: one process's peak, with callboard or without.

``bench_runtime.py --only memory`` runs it in fresh processes, importing nothing of the
bench's own (its fakes, its skeleton), so that each process holds what a program would:

- ``python bench/memory_probe.py board CONFIG``: ``from runtime import Callboard``, a
  board built from the config file ``CONFIG`` (role ``bench``), and its calls;
- ``python bench/memory_probe.py http BASE_URL``: only the HTTP stack callboard sends
  through (asyncio, aiohttp, httpx, httpx-aiohttp, orjson), making the same calls with
  it, as a board's provider does: the floor.

The calls: three bursts of 500 concurrent streamed chat requests from asyncio, then 512
from 256 threads (through one I/O loop thread, for the floor). It prints its resident set
once its modules are imported, then its peak, in MB.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

PROMPT = "Write a function that parses ISO dates"


def resident_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in MB."""
    found = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(found[1]) / 1024 if found else 0.0


def run_calls(acall: Callable[[], Coroutine[Any, Any, object]], call: Callable[[], object]) -> None:
    """Three bursts of 500 asyncio calls, then two calls from each of 256 threads."""

    async def bursts() -> None:
        for _ in range(3):
            await asyncio.gather(*(acall() for _ in range(500)))

    asyncio.run(bursts())
    with concurrent.futures.ThreadPoolExecutor(256) as pool:
        list(pool.map(lambda _: [call(), call()], range(256)))


def board(config_path: str) -> float:
    """The calls through a board; returns the resident set after the imports."""
    from runtime import Callboard, parse_config  # noqa: PLC0415 - measured after the start

    imported = resident_mb("VmRSS")
    config = parse_config(Path(config_path).read_text(), environ={})
    with Callboard(config, check=False) as callboard:
        run_calls(lambda: callboard.aask("bench", PROMPT), lambda: callboard.ask("bench", PROMPT))
    return imported


def http(base_url: str) -> float:
    """The same calls with the HTTP stack alone; returns the resident set after the imports."""
    import aiohttp  # noqa: PLC0415 - measured after the start
    import httpx  # noqa: PLC0415
    import orjson  # noqa: PLC0415
    from httpx_aiohttp import AiohttpTransport  # noqa: PLC0415

    imported = resident_mb("VmRSS")
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"authorization": "Bearer sk-bench-0000", "content-type": "application/json"}
    message = {"role": "user", "content": PROMPT}
    body = orjson.dumps({"model": "gpt-4o", "messages": [message], "stream": True})

    async def new_client() -> httpx.AsyncClient:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024))
        return httpx.AsyncClient(transport=AiohttpTransport(client=session), timeout=60)

    async def send(client: httpx.AsyncClient) -> None:
        async with client.stream("POST", url, content=body, headers=headers) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    orjson.loads(line[6:])

    loop = asyncio.new_event_loop()
    io = threading.Thread(target=loop.run_forever, daemon=True)
    io.start()
    on_io = asyncio.run_coroutine_threadsafe(new_client(), loop).result(10)
    clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    async def acall() -> None:
        running = asyncio.get_running_loop()
        if running not in clients:
            clients[running] = await new_client()
        await send(clients[running])

    run_calls(acall, lambda: asyncio.run_coroutine_threadsafe(send(on_io), loop).result(60))
    loop.call_soon_threadsafe(loop.stop)
    io.join(10)
    return imported


def main() -> None:
    kind, where = sys.argv[1], sys.argv[2]
    imported = board(where) if kind == "board" else http(where)
    print(f"{imported:.1f} {resident_mb('VmHWM'):.1f}")


if __name__ == "__main__":
    main()
