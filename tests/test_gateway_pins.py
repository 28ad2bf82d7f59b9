"""Pinning one provider at the gateway: ``provider/model`` names and the X-LLM-* headers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anthropic
import openai
import pytest

from runtime._gateway.pins import pin_of
from runtime.protocols._serving import RequestError
from runtime.testing import Fail, FakeAnthropic, FakeOpenAI

if TYPE_CHECKING:
    from gateway_support import ServedGateway

pytestmark = pytest.mark.timeout(60)
pytest_plugins = ("gateway_support",)
"""The fixtures ``primary`` (gpt), ``backup`` (claude) and ``gateway`` in front of them."""

HI = [{"role": "user", "content": "Hi"}]
ROLES = ("coder", "reviewer")


def client(gateway: ServedGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)


def test_pin_of_names_and_headers() -> None:
    """A role routes; provider/model pins; X-LLM-Provider wins; X-LLM-Model needs a provider."""
    assert pin_of("coder", ROLES, {}) == {}
    assert pin_of("gpt/gpt-4o-mini", ROLES, {}) == {"provider": "gpt", "model": "gpt-4o-mini"}
    assert pin_of("gpt/", ROLES, {}) == {"provider": "gpt"}
    assert pin_of("gpt/o1", ROLES, {"x-llm-provider": "claude"}) == {"provider": "claude"}
    headers = {"x-llm-provider": "claude", "x-llm-model": "claude-opus"}
    assert pin_of("coder", ROLES, headers) == {"provider": "claude", "model": "claude-opus"}
    assert pin_of("gpt/o1", ROLES, {"x-llm-model": "o3"}) == {"provider": "gpt", "model": "o3"}
    with pytest.raises(RequestError, match="X-LLM-Provider"):
        pin_of("coder", ROLES, {"x-llm-model": "o3"})


def test_provider_model_name_pins_the_provider_and_its_model(
    gateway: ServedGateway, backup: FakeAnthropic
) -> None:
    """``claude/M`` goes to claude alone, asking for M (not its configured model)."""
    other = backup.models[-1]
    assert other != gateway.board.config.providers["claude"].model
    response = client(gateway).chat.completions.with_raw_response.create(
        model=f"claude/{other}", messages=HI
    )
    assert response.parse().choices[0].message.content == "Hello from the backup model"
    assert response.parse().model == f"claude/{other}"
    assert response.headers["x-callboard-provider"] == "claude"
    assert backup.wait_for_requests(1, chat_only=True)[0].json["model"] == other


def test_provider_alone_keeps_its_model(gateway: ServedGateway, backup: FakeAnthropic) -> None:
    """``claude/`` pins claude with its configured model, streamed too."""
    configured = gateway.board.config.providers["claude"].model
    chunks = list(
        client(gateway).chat.completions.create(model="claude/", messages=HI, stream=True)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the backup model"
    assert backup.wait_for_requests(1, chat_only=True)[0].json["model"] == configured


def test_headers_override_the_role(gateway: ServedGateway, primary: FakeOpenAI) -> None:
    """X-LLM-Provider and X-LLM-Model pin a provider and its model for one request."""
    pinned = client(gateway).chat.completions.with_raw_response.create(
        model="reviewer", messages=HI, extra_headers={"X-LLM-Provider": "gpt"}
    )
    assert pinned.headers["x-callboard-provider"] == "gpt"
    client(gateway).chat.completions.create(
        model="reviewer",
        messages=HI,
        extra_headers={"X-LLM-Provider": "gpt", "X-LLM-Model": primary.models[-1]},
    )
    sent = primary.wait_for_requests(2, chat_only=True)
    assert sent[-1].json["model"] == primary.models[-1]


def test_anthropic_sdk_pins_by_name(gateway: ServedGateway, primary: FakeOpenAI) -> None:
    """The Anthropic SDK pins an OpenAI provider by ``gpt/model`` like the OpenAI SDK does."""
    sdk = anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)
    message = sdk.messages.create(model=f"gpt/{primary.models[-1]}", max_tokens=64, messages=HI)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the primary model"
    assert primary.wait_for_requests(1, chat_only=True)[0].json["model"] == primary.models[-1]


def test_a_pinned_provider_has_no_fallback(
    gateway: ServedGateway, primary: FakeOpenAI, backup: FakeAnthropic
) -> None:
    """A pinned provider that fails is the SDK's error: the role's other providers stay out."""
    primary.script.append(Fail(500))
    with pytest.raises(openai.APIStatusError) as raised:
        client(gateway).chat.completions.create(model="gpt/", messages=HI)
    assert raised.value.status_code == 502
    assert "gpt" in str(raised.value)
    assert backup.requests == ()  # the reply came after the only attempt: none is to come


def test_unknown_provider_lists_the_providers(gateway: ServedGateway) -> None:
    """A pin to a provider the gateway lacks is 404, naming the providers there are."""
    with pytest.raises(openai.NotFoundError) as raised:
        client(gateway).chat.completions.create(model="mistral/large", messages=HI)
    assert "providers: claude, gpt" in str(raised.value)
    with pytest.raises(openai.NotFoundError):
        client(gateway).chat.completions.create(
            model="coder", messages=HI, extra_headers={"X-LLM-Provider": "nope"}
        )


def test_model_header_alone_is_a_bad_request(gateway: ServedGateway) -> None:
    """X-LLM-Model with a role and no provider header is 400 naming what to send."""
    with pytest.raises(openai.BadRequestError, match="X-LLM-Provider"):
        client(gateway).chat.completions.create(
            model="coder", messages=HI, extra_headers={"X-LLM-Model": "o3"}
        )


def test_models_lists_roles_and_provider_models(gateway: ServedGateway) -> None:
    """GET /v1/models lists the roles, then each provider's provider/model name."""
    providers = gateway.board.config.providers
    listed = {m.id: m.owned_by for m in client(gateway).models.list()}
    assert list(listed)[:2] == ["coder", "reviewer"]
    assert listed[f"claude/{providers['claude'].model}"] == "anthropic"
    assert listed[f"gpt/{providers['gpt'].model}"] == "openai"
