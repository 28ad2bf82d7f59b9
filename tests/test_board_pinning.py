"""``provider=`` and ``model=`` pin one task to one provider and its model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from runtime import Callboard, StreamEnd, TaskFailedError, UnknownProviderError
from runtime.testing import Answer, Fail, FakeAnthropic, FakeOpenAI, config_for

pytestmark = pytest.mark.timeout(30)


def board_for(gpt: FakeOpenAI, claude: FakeAnthropic, toml: str = "") -> Callboard:
    config = config_for(
        {"gpt": gpt, "claude": claude},
        {"coder": ["gpt", "claude"]},
        toml="[retry]\nattempts = 1\nbackoff_initial_s = 0\n" + toml,
    )
    return Callboard(config, check=False)


def test_provider_pins_the_task() -> None:
    """A pinned task goes to its provider alone, in every form of ask, with its model."""
    with (
        FakeOpenAI(default=Answer("from gpt")) as gpt,
        FakeAnthropic(default=Answer("from claude")) as claude,
        board_for(gpt, claude) as board,
    ):
        other = claude.models[-1]
        assert board.ask("coder", "hi", provider="claude").provider == "claude"
        reply = board.ask("coder", "hi", provider="claude", model=other)
        assert (reply.provider, reply.model) == ("claude", other)
        ends = [
            e for e in board.stream("coder", "hi", provider="claude") if isinstance(e, StreamEnd)
        ]
        assert ends[0].reply.text == "from claude"
        assert asyncio.run(board.aask("coder", "hi", provider="claude")).text == "from claude"
        assert [r.json["model"] for r in claude.wait_for_requests(4, chat_only=True)][:2] == [
            board.config.providers["claude"].model,
            other,
        ]
        assert board.ask("coder", "hi").provider == "gpt"


def test_a_pinned_provider_does_not_fall_back() -> None:
    """A pinned provider that fails fails the task: the role's chain is not tried."""
    with (
        FakeOpenAI(default=Answer("from gpt")) as gpt,
        FakeAnthropic(default=Answer("from claude")) as claude,
        board_for(gpt, claude) as board,
    ):
        claude.script.append(Fail(500))
        with pytest.raises(TaskFailedError, match="claude"):
            board.ask("coder", "hi", provider="claude")
        assert gpt.requests == ()


def test_pin_to_an_unknown_provider_lists_the_providers() -> None:
    """An unknown provider is an error naming the configured ones; a model alone is refused."""
    with (
        FakeOpenAI() as gpt,
        FakeAnthropic() as claude,
        board_for(gpt, claude) as board,
    ):
        with pytest.raises(UnknownProviderError, match="configured providers are claude, gpt"):
            board.ask("coder", "hi", provider="mistral")
        with pytest.raises(ValueError, match="give provider= too"):
            board.ask("coder", "hi", model="o3")
        with pytest.raises(TypeError, match="provider must be"):
            board.ask("coder", "hi", provider="")


def test_pinned_task_audit(tmp_path: Path) -> None:
    """The audit log says the task was pinned, with its request id and tenant at both ends."""
    audit = tmp_path / "audit.jsonl"
    with (
        FakeOpenAI() as gpt,
        FakeAnthropic() as claude,
        board_for(gpt, claude, f'[audit]\npath = "{audit}"\n') as board,
    ):
        board.ask("any-name", "hi", provider="gpt", request_id="req-7", tenant="team-a")
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    started = next(r for r in records if r["event"] == "task_started")
    finished = next(r for r in records if r["event"] == "task_finished")
    assert (started["strategy"], started["chain"], started["request_id"]) == (
        "pinned",
        ["gpt"],
        "req-7",
    )
    assert (finished["request_id"], finished["tenant"], finished["provider"]) == (
        "req-7",
        "team-a",
        "gpt",
    )
    assert not any(r["event"] == "role_unconfigured" for r in records)


def test_embed_pins_and_checks_its_options() -> None:
    """``embed(provider=, model=)`` pins an embeddings task; an unknown option is named."""
    with FakeOpenAI() as gpt, FakeOpenAI() as other:
        config = config_for({"gpt": gpt, "other": other}, {"search": ["gpt"]})
        providers = {
            pid: settings.model_copy(update={"embedding_model": "text-embedding-3-small"})
            for pid, settings in config.providers.items()
        }
        config = config.model_copy(update={"providers": providers})
        with Callboard(config, check=False) as board:
            reply = board.embed("search", ["a"], provider="other", model="text-embedding-3-large")
            assert (reply.provider, reply.model) == ("other", "text-embedding-3-large")
            with pytest.raises(TypeError, match='did you mean "dimensions"'):
                board.embed("search", ["a"], dimension=8)  # type: ignore[call-arg]
    assert gpt.requests == ()
