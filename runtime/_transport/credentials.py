"""The start-up check: every provider's key and model, in parallel, each within a bound.

Each provider gets one cheap authenticated request (its protocol's `models_request`);
the answers are judged by the protocol and turned into one actionable line per failing
provider, which says whose fault it is: the user's (a key rejected, a model not
offered, no credentials) or the provider's own trouble (unreachable, timeout, 5xx, 429,
a malformed answer), which may pass. Runs on the I/O loop; never prints a secret.

A board checks each provider through the client its calls will use (``clients``), so the
first call reuses the connection the check opened instead of opening one of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from runtime._config.schema import Config, ProviderSettings, TimeoutSettings
from runtime._errors import ErrorKind, ProviderError
from runtime._transport.http import ProviderClient, provider_client, proxy_for
from runtime._transport.signing import request_signer
from runtime.protocols import PROTOCOLS

TROUBLE = frozenset(
    {
        ErrorKind.NETWORK,
        ErrorKind.TIMEOUT,
        ErrorKind.SERVER,
        ErrorKind.OVERLOADED,
        ErrorKind.RATE_LIMITED,
        ErrorKind.MALFORMED_RESPONSE,
    }
)
"""Check failures that are the provider's own trouble, not the user's mistake."""


@dataclass(frozen=True, slots=True)
class CheckFailure:
    """One provider that failed its check, the line that says why, and whose fault it is."""

    provider: str
    problem: str
    trouble: bool
    """The provider's own trouble (it may pass later); otherwise the user's mistake."""
    retry_after_s: float | None = None
    """How long the provider asked to be left alone (a 429's Retry-After)."""

    def __str__(self) -> str:
        return f"{self.provider}: {self.problem}"


async def check_credentials(
    config: Config,
    provider_ids: Iterable[str] | None = None,
    clients: Mapping[str, ProviderClient] | None = None,
) -> list[CheckFailure]:
    """Check the given providers (all by default); return one failure per provider failing.

    A provider with a client in ``clients`` is checked through it (left open, its
    connection kept for the calls); the others through a client of their own, closed after.
    """
    ids = list(config.providers if provider_ids is None else provider_ids)
    timeout_s = config.timeouts.validate_s
    given = clients or {}
    results = await asyncio.gather(
        *(
            check_provider(given[pid], config.providers[pid], timeout_s)
            if pid in given
            else _check_alone(config.providers[pid], timeout_s, config.timeouts.connect_s)
            for pid in ids
        )
    )
    return [
        judge(pid, config.providers[pid], error, timeout_s)
        for pid, error in zip(ids, results, strict=True)
        if error is not None
    ]


def calls_clients(
    config: Config, provider_ids: Iterable[str] | None = None
) -> dict[str, ProviderClient]:
    """Return the clients the given providers' calls will use, to check them through first.

    A provider that signs its requests (Bedrock with AWS credentials) gets none: its
    actor finds its credentials, and its check builds a client of its own.
    """
    ids = config.providers if provider_ids is None else provider_ids
    connect_s = config.timeouts.connect_s
    return {
        pid: provider_client(config.providers[pid], connect_s)
        for pid in ids
        if not config.providers[pid].signs()
    }


async def close_clients(clients: Iterable[ProviderClient]) -> None:
    """Close these clients and their connections."""
    await asyncio.gather(*(client.aclose() for client in clients))


async def _check_alone(
    settings: ProviderSettings, timeout_s: float, connect_s: float
) -> ProviderError | None:
    """Check one provider through a client of its own, closed after."""
    try:
        signer = await asyncio.to_thread(request_signer, settings)
    except ProviderError as error:
        return error
    proxy = proxy_for(settings.endpoint().base_url)
    client = ProviderClient(2, min(connect_s, timeout_s), proxy, signer)
    try:
        return await check_provider(client, settings, timeout_s)
    finally:
        await client.aclose()


async def check_provider(
    client: ProviderClient, settings: ProviderSettings, timeout_s: float
) -> ProviderError | None:
    """Ask the provider, through ``client``, about its key and model within ``timeout_s``.

    Returns ``None`` when both are good, else what went wrong (see `judge`).
    """
    protocol = PROTOCOLS[settings.kind.protocol]
    endpoint = settings.endpoint()
    call = protocol.models_request(endpoint)
    try:
        async with asyncio.timeout(timeout_s):
            answer = await client.fetch(call)
    except TimeoutError:
        return ProviderError(ErrorKind.TIMEOUT, "no answer")
    except ProviderError as error:
        return error
    return protocol.check_models(endpoint, answer.status, answer.headers, answer.body)


def judge(
    pid: str, settings: ProviderSettings, error: ProviderError, timeout_s: float
) -> CheckFailure:
    """Say what a failed check means, and whether it is the provider's own trouble."""
    problem = _describe(settings, error, timeout_s)
    return CheckFailure(pid, problem, error.kind in TROUBLE, error.retry_after_s)


def _describe(settings: ProviderSettings, error: ProviderError, timeout_s: float) -> str:
    endpoint = settings.endpoint()
    status = f" (HTTP {error.status})" if error.status is not None else ""
    if error.kind is ErrorKind.AUTH:
        return _auth_problem(settings, error)
    if error.kind is ErrorKind.NOT_FOUND:
        return f'model "{settings.model}" was not found{status}: {error.message}'
    if error.kind is ErrorKind.PERMISSION:
        return f"the key lacks access{status}: {error.message}; check the account's plan"
    if error.kind is ErrorKind.TIMEOUT:
        return (
            f"{endpoint.base_url} did not answer within validate_s = {timeout_s:g} s; "
            "check base_url and the network, or raise [timeouts] validate_s"
        )
    if error.kind is ErrorKind.NETWORK:
        return f"unreachable: {error.message}; check base_url ({endpoint.base_url})"
    return f"the check failed with {error.kind}{status}: {error.message}"


def _auth_problem(settings: ProviderSettings, error: ProviderError) -> str:
    if error.status is None:  # refused before sending: no credentials were found
        return error.message
    return (
        f"the key was rejected (HTTP {error.status}): {error.message}; "
        f"set a valid key in {settings.key_hint()}"
    )


async def list_models(settings: ProviderSettings, timeouts: TimeoutSettings) -> list[str]:
    """Ask a provider for every model it offers.

    Raises:
        ProviderError: the provider has no model list, answered an error, or could not
            be reached within ``validate_s``.
    """
    protocol = PROTOCOLS[settings.kind.protocol]
    if protocol.list_models is None:
        raise ProviderError(ErrorKind.BAD_REQUEST, f"{settings.type} providers list no models")
    endpoint = settings.endpoint()
    call = protocol.list_models.request(endpoint)
    signer = await asyncio.to_thread(request_signer, settings)
    client = ProviderClient(2, timeouts.connect_s, proxy_for(endpoint.base_url), signer)
    try:
        async with asyncio.timeout(timeouts.validate_s):
            answer = await client.fetch(call)
    except TimeoutError:
        raise ProviderError(ErrorKind.TIMEOUT, "no answer within validate_s") from None
    finally:
        await client.aclose()
    return protocol.list_models.parse(answer.status, answer.headers, answer.body)
