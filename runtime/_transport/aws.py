"""AWS credentials and SigV4 request signing, through botocore (the ``bedrock`` extra).

`sigv4_signer` finds credentials once, along the standard chain botocore's own clients
follow: environment variables, the shared ``credentials`` and ``config`` files (and
``AWS_PROFILE``), SSO, web identity, ``credential_process``, container and instance
roles. Temporary credentials are refreshed when they near their expiry, which can block
on the network (STS, instance metadata) or on a process: the HTTP client asks
`Signer.refresh_due` before it signs and, when it is, runs `Signer.refresh` in a worker
thread, so the I/O loop never waits for it. Each signing takes a consistent snapshot.
botocore is imported only here and only when a signer is made, so ``import runtime``
never needs it. No message here ever holds a key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import httpx
import yarl

from runtime._errors import ErrorKind, MissingExtraError, ProviderError

if TYPE_CHECKING:
    from botocore.credentials import Credentials, ReadOnlyCredentials


class Signer(Protocol):
    """Signs an `httpx.Request` in place, with credentials it may need to refresh first."""

    def __call__(
        self, request: httpx.Request, credentials: ReadOnlyCredentials | None = None
    ) -> None:
        """Sign ``request`` in place, with ``credentials`` from `refresh` if given."""

    def refresh_due(self) -> bool:
        """Whether the credentials are near their expiry (signing now would refresh them)."""

    def refresh(self) -> ReadOnlyCredentials:
        """Refresh the credentials if they are due and return them; blocks (run it off the loop)."""


NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
    'or use a Bedrock API key (auth = "api-key")'
)
_SIGNATURE_HEADERS = ("authorization", "x-amz-date", "x-amz-security-token")


def sigv4_signer(region: str, service: str = "bedrock", profile: str | None = None) -> Signer:
    """Return a signer for ``service`` in ``region``, with the credentials found now.

    Raises:
        MissingExtraError: botocore is not installed.
        ProviderError: ``auth``, when no credentials are found or they cannot be loaded
            (an unknown profile, an expired SSO session).
    """
    try:
        from botocore.exceptions import BotoCoreError  # noqa: PLC0415 - optional extra
        from botocore.session import Session  # noqa: PLC0415
    except ImportError:
        raise MissingExtraError(
            "AWS Bedrock with SigV4 signing needs botocore: pip install 'callboard[bedrock]'"
        ) from None
    try:
        credentials = Session(profile=profile).get_credentials()
    except BotoCoreError as exc:
        raise _credentials_error(exc) from None
    if credentials is None:
        raise ProviderError(ErrorKind.AUTH, NO_CREDENTIALS)
    return _SigV4Signer(credentials, region, service)


class _SigV4Signer:
    """Signs requests with SigV4; its repr names the scope, never the credentials."""

    def __init__(self, credentials: Credentials, region: str, service: str) -> None:
        self._credentials = credentials
        self.region = region
        self.service = service

    def refresh_due(self) -> bool:
        """Whether the credentials expire soon enough that botocore would refresh them now."""
        from botocore.credentials import RefreshableCredentials  # noqa: PLC0415 - optional extra

        credentials = self._credentials
        return isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed()

    def refresh(self) -> ReadOnlyCredentials:
        """Refresh the credentials if they are due, and return a snapshot to sign with.

        botocore serializes concurrent refreshes. The snapshot is used as it is, even
        when credentials that expire within botocore's refresh window would otherwise be
        refreshed again by the next signing.

        Raises:
            ProviderError: ``auth``, when the credentials cannot be refreshed.
        """
        from botocore.exceptions import BotoCoreError  # noqa: PLC0415 - optional extra

        try:
            return self._credentials.get_frozen_credentials()
        except (BotoCoreError, RuntimeError) as exc:  # RuntimeError: refreshed, still expired
            raise _credentials_error(exc) from None

    def __call__(
        self, request: httpx.Request, credentials: ReadOnlyCredentials | None = None
    ) -> None:
        """Sign ``request`` (its body already in memory) in place.

        Sets ``Authorization``, ``X-Amz-Date`` and, for temporary credentials,
        ``X-Amz-Security-Token``, replacing any earlier signature's, so a request may be
        signed again before it is resent. The URL is first normalized as the aiohttp
        transport sends it (``%3A`` becomes ``:``), so the path signed is the path sent.

        Raises:
            ProviderError: ``auth``, when the credentials cannot be refreshed.
        """
        from botocore.auth import SigV4Auth  # noqa: PLC0415 - optional extra
        from botocore.awsrequest import AWSRequest  # noqa: PLC0415

        frozen = credentials if credentials is not None else self.refresh()
        request.url = httpx.URL(str(yarl.URL(str(request.url))))
        for name in _SIGNATURE_HEADERS:
            request.headers.pop(name, None)
        signed = AWSRequest(
            method=request.method,
            url=str(request.url),
            headers=dict(request.headers.items()),
            data=request.content,
        )
        SigV4Auth(frozen, self.service, self.region).add_auth(signed)
        for name in _SIGNATURE_HEADERS:
            value = signed.headers.get(name)
            if value is not None:
                request.headers[name] = value

    def __repr__(self) -> str:
        return f"SigV4Signer(service={self.service!r}, region={self.region!r})"


def _credentials_error(exc: Exception) -> ProviderError:
    """Describe a botocore credential failure (its messages name files and profiles, not keys)."""
    return ProviderError(ErrorKind.AUTH, f"AWS credentials could not be loaded: {exc}")
