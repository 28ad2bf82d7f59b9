"""HTTP for providers, and the one boundary where transport errors become ours (`open`).

Requests are `httpx.Request`s sent through httpx's transport interface over aiohttp
(`httpx_aiohttp.AiohttpTransport`): httpx's own async pool slows down badly past a
hundred connections, and its client layer (redirects, cookies, auth flows, environment
lookups on every request) costs more than the request itself on loopback, while a
provider call needs none of it. Proxy settings are read from the environment once, when
the client is built. Clients live on the I/O loop only: `ProviderClient` builds its
transport there on first use and closes it there.

What a process pays once it pays with this module (``from runtime import Callboard``),
never as a board starts nor on a call's time: aiohttp (about 100 ms to import), and the
one verifying SSL context every client shares (loading the CA bundle takes about 20 ms:
certifi's, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``). Nothing builds another: aiohttp's
connector gets it, and so does `AiohttpTransport`, which would otherwise build one of
its own for every client although it sends through our session.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from runtime._config.schema import ProviderSettings
from runtime._errors import ErrorKind, ProviderError
from runtime._transport.aws import Signer
from runtime.protocols import HttpCall
from runtime.protocols._base import HeaderMap

KEEPALIVE_S = 30.0
USER_AGENT = "callboard/0.1"

_SSL_CONTEXT = httpx.create_ssl_context()


def shared_ssl_context() -> ssl.SSLContext:
    """Return the one verifying SSL context of the process (built when this module loads)."""
    return _SSL_CONTEXT


def proxy_for(url: str) -> httpx.Proxy | None:
    """Return the proxy the environment (``HTTPS_PROXY``, ``NO_PROXY``...) sets for ``url``."""
    parsed = httpx.URL(url)
    if urllib.request.proxy_bypass(parsed.host):
        return None
    proxy = urllib.request.getproxies().get(parsed.scheme)
    return httpx.Proxy(proxy) if proxy else None


MAX_CACHED_URLS = 256
"""Parsed URLs kept per client: its endpoints, not the one-off URLs of each prediction."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """A whole HTTP answer."""

    status: int
    headers: HeaderMap
    body: bytes


class ProviderClient:
    """One provider's HTTP transport, created lazily on the I/O loop and closed there.

    A ``signer`` (AWS SigV4 for Bedrock) signs each request just before it is sent; when
    its credentials are due for a refresh, the refresh runs in a worker thread first.
    """

    def __init__(
        self,
        max_connections: int,
        connect_s: float,
        proxy: httpx.Proxy | None = None,
        signer: Signer | None = None,
    ) -> None:
        self._ssl = shared_ssl_context()
        self._max_connections = max_connections
        self._connect_s = connect_s
        self._signer = signer
        self._timeouts = {"connect": connect_s, "read": None, "write": None, "pool": None}
        self._proxy = proxy
        self._transport: AiohttpTransport | None = None
        self._urls: dict[str, httpx.URL] = {}
        self._closed = False

    def _get(self) -> AiohttpTransport:
        if self._closed:
            raise ProviderError(ErrorKind.INTERNAL, "the provider's HTTP client is closed")
        if self._transport is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ssl=self._ssl, keepalive_timeout=KEEPALIVE_S
            )
            session = aiohttp.ClientSession(connector=connector, trust_env=False)
            # verify= hands it our context: without one, it builds (and never uses) its own
            self._transport = AiohttpTransport(verify=self._ssl, client=session, proxy=self._proxy)
        return self._transport

    @contextlib.asynccontextmanager
    async def open(self, call: HttpCall) -> AsyncIterator[httpx.Response]:
        """Send ``call`` and yield its response, its body still to be read; close it after.

        The one boundary of the transport: a failure to send the request, or to read its
        body inside the ``async with`` block, is raised as a `ProviderError` (and nowhere
        else is an httpx or aiohttp error caught). Call only on the I/O loop.

        Raises:
            ProviderError: ``network`` or ``timeout`` for the transport's failures;
                ``auth`` when the signer's credentials cannot be refreshed.
        """
        try:
            response = await self._send(call)
        except httpx.HTTPError as exc:
            raise transport_error(exc, call.url, self._connect_s) from None
        try:
            yield response
        except httpx.HTTPError as exc:
            raise transport_error(exc, call.url, self._connect_s) from None
        finally:
            await response.aclose()

    async def fetch(self, call: HttpCall) -> Fetched:
        """Send ``call`` and read its whole answer (see `open` for the errors it raises)."""
        async with self.open(call) as response:
            body = await response.aread()
        return Fetched(response.status_code, read_headers(response), body)

    async def _send(self, call: HttpCall) -> httpx.Response:
        headers = [("user-agent", USER_AGENT), *call.headers]
        content = orjson.dumps(call.json) if call.json is not None else None
        url = self._urls.get(call.url)
        if url is None:
            url = httpx.URL(call.url)
            if len(self._urls) < MAX_CACHED_URLS:  # one-off URLs (Replicate's) stay out
                self._urls[call.url] = url
        request = httpx.Request(
            call.method,
            url,
            headers=headers,
            content=content,
            extensions={"timeout": self._timeouts},
        )
        if self._signer is not None:
            fresh = None
            if self._signer.refresh_due():
                fresh = await asyncio.to_thread(self._signer.refresh)
            self._signer(request, fresh)
        return await self._get().handle_async_request(request)

    async def aclose(self) -> None:
        """Close the transport and its connections. Call only on the I/O loop."""
        self._closed = True
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await transport.aclose()


def read_headers(response: httpx.Response) -> HeaderMap:
    """Return the response's headers, read once (`HeaderMap`), decoded as httpx decodes them."""
    headers = response.headers
    try:
        return HeaderMap.from_ascii(headers.raw)
    except UnicodeDecodeError:  # UTF-8 or Latin-1: httpx picks which for the whole set
        return HeaderMap(headers.items())


def provider_client(
    settings: ProviderSettings, connect_s: float, signer: Signer | None = None
) -> ProviderClient:
    """Return the client a provider's calls go through (its proxy read from the environment)."""
    proxy = proxy_for(settings.endpoint().base_url)
    return ProviderClient(settings.max_concurrency, connect_s, proxy, signer)


def transport_error(exc: httpx.HTTPError, url: str, timeout_s: float | None) -> ProviderError:
    """Translate an httpx (or wrapped aiohttp) exception into a `ProviderError`.

    Only `ProviderClient.open` calls it: the transport's one boundary.
    """
    cause = exc.__cause__
    host = httpx.URL(url).host
    if isinstance(exc, httpx.ConnectError) or isinstance(cause, aiohttp.ClientConnectorError):
        detail = _os_reason(cause) or "connection failed"
        return ProviderError(ErrorKind.NETWORK, f"cannot connect to {host}: {detail}")
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return ProviderError(ErrorKind.NETWORK, f"{host} closed the connection without answering")
    if isinstance(cause, aiohttp.ClientOSError):
        # httpx-aiohttp maps every aiohttp connection error to ConnectTimeout: an OS error
        # (a reset, a broken pipe) is the network's, found at once, not a timeout.
        detail = cause.strerror or type(cause).__name__
        return ProviderError(ErrorKind.NETWORK, f"{host}: the connection failed: {detail.lower()}")
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
