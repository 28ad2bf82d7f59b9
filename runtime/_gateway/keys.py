"""Gateway keys: which tenant a request runs as, or why it is refused.

Keys are compared in constant time, against every key each time, so neither the timing
nor the order of the keys tells a caller how close a guess came. No key is ever logged
or put in an error.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True, slots=True)
class Admission:
    """A request's standing: admitted as ``tenant`` (``None``: an open gateway), or refused."""

    admitted: bool
    tenant: str | None = None
    reason: str = ""


class KeyRing:
    """The gateway keys of ``[gateway.keys]``: tenant name to its key."""

    def __init__(self, keys: Mapping[str, SecretStr]) -> None:
        self._keys = [(tenant, key.get_secret_value().encode()) for tenant, key in keys.items()]

    @property
    def open(self) -> bool:
        """Whether the gateway takes requests without a key (no keys configured)."""
        return not self._keys

    def admit(self, headers: Mapping[str, str]) -> Admission:
        """Admit a request by the key it carries (``Authorization: Bearer`` or ``x-api-key``)."""
        if self.open:
            return Admission(admitted=True)
        presented = presented_key(headers)
        if presented is None:
            return Admission(
                admitted=False,
                reason="no gateway key: send it as 'Authorization: Bearer KEY' or 'x-api-key'",
            )
        given = presented.encode()
        tenant = None
        for name, key in self._keys:
            if hmac.compare_digest(given, key) and tenant is None:
                tenant = name
        if tenant is None:
            return Admission(admitted=False, reason="invalid gateway key")
        return Admission(admitted=True, tenant=tenant)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries: ``x-api-key``, else a bearer ``Authorization``."""
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
