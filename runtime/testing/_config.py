"""A config that points roles at fake providers, for testing code that uses a board."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from runtime._config.load import parse_config
from runtime._config.schema import Config
from runtime.testing._provider import FakeProvider


def config_for(
    providers: Mapping[str, FakeProvider],
    roles: Mapping[str, Sequence[str]],
    *,
    keys: Mapping[str, str] | None = None,
    default_provider: str | None = None,
    toml: str = "",
) -> Config:
    """Return a validated config whose providers are the given (started) fakes.

    Args:
        providers: Provider id to fake; each provider uses the fake's protocol, its
            ``base_url`` and the first model it offers.
        roles: Role name to its provider ids, in priority order.
        keys: Provider id to the API key to send (default: ``"test-key"``; give the key
            the fake accepts when it was built with ``keys=``).
        default_provider: The provider of roles that name none.
        toml: More TOML to add, for example ``[retry]`` or ``[timeouts]`` sections.

    The audit log is off unless ``toml`` sets ``[audit]``.

    ```python
    with FakeOpenAI() as fake, Callboard(config_for({"gpt": fake}, {"coder": ["gpt"]})) as board:
        assert board.ask("coder", "hi").provider == "gpt"
    ```
    """
    lines = [f"default_provider = {json.dumps(default_provider)}"] if default_provider else []
    lines.append(toml)
    if "[audit]" not in toml:
        lines.append('[audit]\npath = "off"')
    for pid, fake in providers.items():
        key = (keys or {}).get(pid, "test-key")
        lines.append(
            f"[providers.{pid}]\ntype = {json.dumps(fake.protocol)}\n"
            f"base_url = {json.dumps(fake.base_url)}\nmodel = {json.dumps(fake.models[0])}\n"
            f"api_key = {json.dumps(key)}"
        )
    for role, cast in roles.items():
        lines.append(f"[roles.{role}]\nproviders = {json.dumps(list(cast))}")
    return parse_config("\n\n".join(lines) + "\n", source="<runtime.testing>", environ={})
