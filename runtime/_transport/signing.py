"""Which providers sign their requests, and the signer each one's client applies.

Only AWS Bedrock with the AWS credential chain (``auth`` ``"default"`` or ``"sigv4"``)
signs: every request gets a SigV4 signature made just before it is sent. Every other
provider sends its key in a header, which the wire protocol adds itself.
"""

from __future__ import annotations

from runtime._config.schema import Config, ProviderSettings
from runtime._errors import MissingExtraError
from runtime._transport.aws import Signer, sigv4_signer
from runtime.protocols import _bedrock

SIGNING_EXTRA = "pip install 'callboard[bedrock]'"


def needs_signing(settings: ProviderSettings) -> bool:
    """Whether this provider's requests are signed with SigV4 (else they carry a key)."""
    return settings.signs()


def request_signer(settings: ProviderSettings) -> Signer | None:
    """Return the signer this provider's requests need, with credentials found now.

    Raises:
        MissingExtraError: the provider signs and botocore is not installed.
        ProviderError: ``auth``, when no AWS credentials are found.
    """
    if not needs_signing(settings):
        return None
    return sigv4_signer(_bedrock.region_of(settings.endpoint()))


def require_signing_extra(config: Config) -> None:
    """Fail at start-up, naming the providers, when signing needs botocore and it is missing.

    Raises:
        MissingExtraError: one or more providers sign and botocore is not installed.
    """
    signing = sorted(pid for pid, s in config.providers.items() if needs_signing(s))
    if not signing:
        return
    try:
        import botocore  # noqa: F401, PLC0415 - only whether it is installed
    except ImportError:
        raise MissingExtraError(
            f"provider(s) {', '.join(signing)} sign requests with AWS credentials (SigV4), "
            f'which needs botocore: {SIGNING_EXTRA}; or give a Bedrock API key (auth = "api-key")'
        ) from None
