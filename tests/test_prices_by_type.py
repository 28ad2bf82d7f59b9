from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runtime._config.prices import FREE, Price, PriceTable
from runtime._config.provider_types import KINDS

pytestmark = pytest.mark.timeout(60)

ONE_MODEL_OF_EACH_TYPE = {
    "openai": ("gpt-4o-2024-08-06", "openai"),
    "anthropic": ("claude-sonnet-4-5-20250929", "anthropic"),
    "gemini": ("models/gemini-2.5-flash", "google"),
    "azure_openai": ("gpt-4o", "azure"),
    "bedrock": ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws"),
    "cohere": ("command-a-03-2025", "cohere"),
    "replicate": ("openai/gpt-4o-mini", "openai"),
    "groq": ("llama-3.3-70b-versatile", "groq"),
    "deepseek": ("deepseek-chat", "deepseek"),
    "together": ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "together"),
    "mistral": ("mistral-large-latest", "mistral"),
    "openrouter": ("anthropic/claude-sonnet-4.5", "openrouter"),
    "fireworks": ("accounts/fireworks/models/deepseek-v3-0324", "fireworks"),
    "huggingface": ("deepseek-ai/DeepSeek-V3:novita", "huggingface_novita"),
    "ollama": ("llama3.1:8b", None),
    "vllm": ("meta-llama/Llama-3.1-8B-Instruct", None),
    "lmstudio": ("qwen2.5-7b-instruct", None),
}


def test_every_provider_type_has_a_model_in_this_test():
    """A new provider type must be added here, with a model it prices."""
    assert set(ONE_MODEL_OF_EACH_TYPE) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(ONE_MODEL_OF_EACH_TYPE))
def test_one_model_of_every_provider_type_is_priced(kind):
    """Each type prices a model of its own: from the catalogue's provider, or free if local."""
    model, catalogue_provider = ONE_MODEL_OF_EACH_TYPE[kind]
    table = PriceTable()
    quote = table.quote(model, kind)
    assert quote is not None, f"{model} ({kind}) has no price"
    cost = table.cost(model, 1000, 1000, provider_type=kind)
    assert cost is not None
    if kind in ("ollama", "vllm", "lmstudio"):
        assert quote.price == FREE
        assert cost == 0.0
    else:
        assert quote.source.startswith("genai-prices ")
        assert f"({catalogue_provider}: " in quote.source
        assert quote.price.input > 0
        assert cost > 0


@pytest.mark.parametrize("kind", sorted(ONE_MODEL_OF_EACH_TYPE))
def test_overrides_win_for_every_provider_type(kind):
    """``[prices]`` beats the catalogue, callboard's table and a local type's zero."""
    model, _ = ONE_MODEL_OF_EACH_TYPE[kind]
    table = PriceTable({model: Price(7.0, 11.0)})
    quote = table.quote(model, kind)
    assert quote is not None
    assert quote.price == Price(7.0, 11.0)
    assert quote.source == f'config [prices."{model}"]'
    assert table.cost(model, 1_000_000, 1_000_000, provider_type=kind) == pytest.approx(18.0)


def test_bedrock_model_ids_profiles_and_arns_map_to_one_model():
    """A Bedrock inference profile's ARN is priced as the profile it names."""
    table = PriceTable()
    profile = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    arn = f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/{profile}"
    assert table.price(arn, "bedrock") == table.price(profile, "bedrock")
    assert table.price("anthropic.claude-3-5-sonnet-20240620-v1:0", "bedrock") is not None


def test_a_price_set_by_time_of_day_is_read_for_the_moment_asked():
    """DeepSeek's off-peak rates apply to calls made off-peak, in one long-lived table.

    The catalogue halves deepseek-chat's rates from 16:30 to 00:30 UTC; a board that runs
    for days must price each call at its own hour, not at the hour of its first call.
    """
    now = [datetime(2026, 12, 5, 12, 0, tzinfo=UTC)]
    table = PriceTable(clock=lambda: now[0])
    peak = table.quote("deepseek-chat", "deepseek")
    assert peak is not None
    now[0] = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)
    off_peak = table.quote("deepseek-chat", "deepseek")
    assert off_peak is not None
    assert off_peak.price.input == pytest.approx(peak.price.input / 2)
    assert off_peak.price.output == pytest.approx(peak.price.output / 2)
    assert "by time of day or date" in off_peak.source
    peak_cost = PriceTable(clock=lambda: datetime(2026, 12, 6, 9, 0, tzinfo=UTC)).cost(
        "deepseek-chat", 1_000_000, 0, provider_type="deepseek"
    )
    assert peak_cost == pytest.approx(peak.price.input)


def test_a_fixed_price_does_not_depend_on_the_clock():
    """A model priced the same at every hour reads the same at noon and at night."""
    noon = PriceTable(clock=lambda: datetime(2026, 12, 5, 12, 0, tzinfo=UTC))
    night = PriceTable(clock=lambda: datetime(2026, 12, 5, 20, 0, tzinfo=UTC))
    quote = noon.quote("gpt-4o-mini", "openai")
    assert quote is not None
    assert quote == night.quote("gpt-4o-mini", "openai")
    assert "by time" not in quote.source


def test_an_unknown_model_stays_unknown_and_a_local_one_is_free_unless_priced():
    """Unknown is ``None`` (never zero) on a remote type; a local type's model costs nothing."""
    table = PriceTable()
    assert table.cost("my-own-finetune-xyz", 10, 10, provider_type="groq") is None
    assert table.cost("my-own-finetune-xyz", 10, 10, provider_type="ollama") == 0.0


def test_callboard_prices_prints_a_price_and_its_source(tmp_path: Path):
    """``callboard prices MODEL --json`` answers with the figure and where it comes from."""
    config = tmp_path / "config.toml"
    config.write_text(
        '[providers.local]\ntype = "ollama"\nmodel = "llama3.1"\n'
        '[providers.cloud]\ntype = "groq"\nmodel = "llama-3.3-70b-versatile"\n'
        'api_key = "${GROQ_KEY_NOT_SET_HERE}"\n'
        '[roles.coder]\nproviders = ["local", "cloud"]\n'
        '[prices."llama-3.3-70b-versatile"]\ninput = 1.0\noutput = 2.0\n'
    )
    every = _run("prices", "--config", str(config), "--json")
    assert [(r["model"], r["type"], r["input"]) for r in every] == [
        ("llama3.1", "ollama", 0.0),
        ("llama-3.3-70b-versatile", "groq", 1.0),
    ]
    assert every[1]["source"] == 'config [prices."llama-3.3-70b-versatile"]'
    one = _run("prices", "deepseek-chat", "--type", "deepseek", "--config", str(config), "--json")
    assert one[0]["source"].startswith("genai-prices ")
    assert one[0]["output"] > 0


def _run(*args: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows
