"""How a request pins one provider: a ``provider/model`` name, or the ``X-LLM-*`` headers.

A ``model`` that names a role routes by the role. Otherwise ``provider/model`` pins that
provider and asks it for that model (``provider/`` keeps its configured model). The
header ``X-LLM-Provider`` pins a provider whatever the name says (with its configured
model), and ``X-LLM-Model`` asks the pinned provider for another model. Pure functions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from runtime._config.schema import Config
from runtime.protocols._serving import RequestError


def pin_of(model: str, roles: Collection[str], headers: Mapping[str, str]) -> dict[str, Any]:
    """The ``provider`` and ``model`` options of ``ask`` a request pins (empty: none).

    Raises:
        RequestError: ``X-LLM-Model`` without a provider to ask.
    """
    pin: dict[str, Any] = {}
    if model not in roles and "/" in model:
        provider, _, named = model.partition("/")
        pin = {"provider": provider, "model": named or None}
    provider = headers.get("x-llm-provider", "").strip()
    if provider:
        pin = {"provider": provider, "model": None}
    named = headers.get("x-llm-model", "").strip()
    if named:
        if not pin:
            raise RequestError(
                "X-LLM-Model needs a provider to ask: send X-LLM-Provider too, "
                "or name the model as provider/model",
                "model",
            )
        pin["model"] = named
    return {k: v for k, v in pin.items() if v is not None}


def model_names(config: Config) -> tuple[list[str], dict[str, str]]:
    """What ``GET /v1/models`` lists: the roles, then each provider's ``provider/model``.

    Returns the names and the owner of each ``provider/model`` name (its provider's type).
    """
    owners: dict[str, str] = {}
    for pid, settings in sorted(config.providers.items()):
        for model in (settings.model, settings.embedding_model):
            if model:
                owners[f"{pid}/{model}"] = settings.type
    return [*sorted(config.roles), *owners], owners
