"""HTTP clients for providers, and the one boundary where transport errors become ours.

Clients are `httpx.AsyncClient`s over the aiohttp transport (httpx's own pool slows
down badly past a hundred connections). They live on the I/O loop only: `ProviderClient`
builds its client there on first use and closes it there.
"""

from __future__ import annotations

import functools
import ssl

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from runtime._errors import ErrorKind, ProviderError

KEEPALIVE_S = 30.0


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """Return one verifying SSL context for the process (building one costs ~20 ms)."""
    return httpx.create_ssl_context()


class ProviderClient:
    """One provider's HTTP client, created lazily on the I/O loop and closed there."""

    def __init__(self, max_connections: int, connect_s: float) -> None:
        self._max_connections = max_connections
        self._connect_s = connect_s
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    def get(self) -> httpx.AsyncClient:
        """Return the client, building it on first use. Call only on the I/O loop."""
        if self._closed:
            raise ProviderError(ErrorKind.INTERNAL, "the provider's HTTP client is closed")
        if self._client is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                ssl=shared_ssl_context(),
                keepalive_timeout=KEEPALIVE_S,
            )
            session = aiohttp.ClientSession(connector=connector, trust_env=True)
            transport = AiohttpTransport(client=session)
            timeout = httpx.Timeout(None, connect=self._connect_s)
            self._client = httpx.AsyncClient(transport=transport, timeout=timeout)
        return self._client

    async def aclose(self) -> None:
        """Close the client and its connections. Call only on the I/O loop."""
        self._closed = True
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


def transport_error(exc: httpx.HTTPError, url: str, timeout_s: float | None) -> ProviderError:
    """Translate an httpx (or wrapped aiohttp) exception into a `ProviderError`."""
    cause = exc.__cause__
    host = httpx.URL(url).host
    if isinstance(exc, httpx.ConnectError) or isinstance(cause, aiohttp.ClientConnectorError):
        detail = _os_reason(cause) or "connection failed"
        return ProviderError(ErrorKind.NETWORK, f"cannot connect to {host}: {detail}")
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return ProviderError(ErrorKind.NETWORK, f"{host} closed the connection without answering")
    if isinstance(exc, httpx.TimeoutException):
        within = f" within {timeout_s:g} s" if timeout_s else ""
        return ProviderError(ErrorKind.TIMEOUT, f"{host} did not answer{within}")
    if isinstance(cause, aiohttp.ClientPayloadError):
        return ProviderError(ErrorKind.NETWORK, f"{host} cut the answer short")
    reason = type(cause or exc).__name__
    return ProviderError(ErrorKind.NETWORK, f"{host}: transport error ({reason})")


def _os_reason(cause: BaseException | None) -> str | None:
    os_error = getattr(cause, "os_error", None)
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror.lower()
    return None
