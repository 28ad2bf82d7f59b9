"""A call's worst-case cost, as the router reserves it."""

from __future__ import annotations

import pytest

from runtime._chat import ChatRequest, EmbedRequest, ImagePart, Message, TextPart, Tuning
from runtime._config.prices import Price, PriceTable
from runtime._policy.budget_gate import UNSET_MAX_TOKENS, worst_case_usd
from runtime._tools import Tool

pytestmark = pytest.mark.timeout(5)

PRICES = PriceTable({"m": Price(1.0, 10.0)})
"""$1 per million input tokens, $10 per million output tokens."""


def _request(*messages: Message, max_tokens: int | None = 100) -> ChatRequest:
    return ChatRequest(messages, "m", None, Tuning(max_tokens=max_tokens))


def test_the_worst_case_is_the_prompt_and_all_of_max_tokens():
    """400 characters are 101 prompt tokens; all 100 completion tokens count at the output price."""
    request = _request(Message("user", "x" * 400))
    assert worst_case_usd(PRICES, request) == pytest.approx((101 * 1.0 + 100 * 10.0) / 1e6)


def test_a_call_without_max_tokens_reserves_the_default_completion():
    """No ``max_tokens``: the reservation assumes `UNSET_MAX_TOKENS` completion tokens."""
    request = _request(Message("user", "hi"), max_tokens=None)
    assert worst_case_usd(PRICES, request) == pytest.approx((1 + UNSET_MAX_TOKENS * 10.0) / 1e6)


def test_images_system_and_tools_count_in_the_prompt():
    """An image counts 1,500 tokens; the system prompt and the tools' definitions count too."""
    parts = (TextPart("x" * 40), ImagePart(url="https://example.com/a.png"))
    tool = Tool("lookup", "d" * 38)
    request = ChatRequest((Message("user", parts),), "m", "s" * 40, Tuning(max_tokens=1), (tool,))
    chars = 40 + 40 + 4 * 1500 + len("lookup") + 38 + len(str(tool.parameters))
    assert request.estimated_prompt_tokens() == chars // 4 + 1


def test_an_unpriced_model_has_no_worst_case():
    """A model with no price cannot be reserved: ``None``, never zero."""
    request = ChatRequest((Message("user", "hi"),), "mystery", None, Tuning(max_tokens=10))
    assert worst_case_usd(PRICES, request) is None


def test_embeddings_cost_their_input_only():
    """An embeddings call is priced on its texts' tokens alone."""
    request = EmbedRequest(("x" * 400,), "m")
    assert worst_case_usd(PRICES, request) == pytest.approx(101 / 1e6)
