from __future__ import annotations

import pytest
from support import config_toml

from runtime import Callboard, TaskFailedError, UnknownRoleError
from runtime.testing import Answer, Fail, FakeAnthropic, FakeOpenAI, config_for

pytestmark = pytest.mark.timeout(20)


def test_each_role_goes_to_its_first_provider(fakes, deployment):
    """Tasks for different roles reach each role's own first provider."""
    gpt, claude, gemini = fakes("openai"), fakes("anthropic"), fakes("gemini")
    deployment.write(
        config_toml(
            deployment,
            {"gpt": gpt, "claude": claude, "gemini": gemini},
            {"coder": ["claude", "gpt"], "reviewer": ["gemini", "claude"], "planner": ["gpt"]},
        )
    )
    gpt.script.append(Answer("plan"))
    claude.script.append(Answer("code"))
    gemini.script.append(Answer("review"))
    board = deployment.board()
    coder = board.ask("coder", "write it", system="You are terse.")
    reviewer = board.ask("reviewer", "check it")
    planner = board.ask("planner", "plan it")
    assert (coder.text, coder.provider, coder.model) == ("code", "claude", "claude-sonnet-4-5")
    assert (reviewer.text, reviewer.provider) == ("review", "gemini")
    assert (planner.text, planner.provider) == ("plan", "gpt")
    assert coder.usage.input_tokens > 0
    assert coder.usage.output_tokens > 0
    assert [a.outcome for a in coder.attempts] == ["ok"]
    sent = claude.wait_for_requests(1, chat_only=True)[0].json
    assert sent["system"] == "You are terse."
    assert sent["messages"] == [{"role": "user", "content": "write it"}]


def test_a_role_without_providers_uses_the_default(fakes, deployment):
    """A configured role with no providers, and an unconfigured one, use default_provider."""
    gpt, claude = fakes("openai"), fakes("anthropic")
    deployment.write(
        config_toml(deployment, {"gpt": gpt, "claude": claude}, {"planner": {}}, default="claude")
    )
    board = deployment.board()
    assert board.ask("planner", "hi").provider == "claude"
    assert board.ask("anything", "hi").provider == "claude"


def test_an_unknown_role_without_default_names_the_roles_that_exist(fakes, deployment):
    """With no default provider, an unknown role is an error listing the known roles."""
    gpt = fakes("openai")
    deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"], "planner": ["gpt"]}))
    board = deployment.board()
    with pytest.raises(
        UnknownRoleError, match="unknown role 'tester': configured roles are coder, planner"
    ):
        board.ask("tester", "hi")


def test_tuning_is_layered_call_over_role_over_provider(fakes, deployment):
    """The provider's defaults, the role's overrides and the call's own arrive as one request."""
    gpt = fakes("openai")
    deployment.write(
        config_toml(
            deployment,
            {"gpt": (gpt, {"temperature": 0.7, "max_tokens": 100, "top_p": 0.9})},
            {"coder": {"providers": ["gpt"], "temperature": 0.1, "max_tokens": 800}},
        )
    )
    board = deployment.board()
    board.ask("coder", "one")
    board.ask("coder", "two", temperature=0.5, stop=["END"])
    first, second = (r.json for r in gpt.wait_for_requests(2, chat_only=True))
    assert (first["temperature"], first["max_tokens"], first["top_p"]) == (0.1, 800, 0.9)
    assert (second["temperature"], second["max_tokens"], second["stop"]) == (0.5, 800, ["END"])


def test_a_conversation_can_be_passed_as_messages(fakes, deployment):
    """Messages, system turns included, reach the provider in its own shape."""
    gemini = fakes("gemini")
    deployment.write(config_toml(deployment, {"g": gemini}, {"reviewer": ["g"]}))
    board = deployment.board()
    board.ask(
        "reviewer",
        messages=[
            {"role": "system", "content": "Be strict."},
            {"role": "user", "content": "Here is my code."},
            {"role": "assistant", "content": "Send it."},
            {"role": "user", "content": "def f(): pass"},
        ],
    )
    sent = gemini.wait_for_requests(1, chat_only=True)[0].json
    assert sent["systemInstruction"]["parts"][0]["text"] == "Be strict."
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]


def test_a_task_needs_a_user_message(fakes, deployment):
    """A call with neither a prompt nor a user message is refused before it is sent."""
    gpt = fakes("openai")
    deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    board = deployment.board()
    with pytest.raises(ValueError, match="needs a prompt"):
        board.ask("coder", messages=[{"role": "system", "content": "x"}])


def test_users_can_point_a_board_at_fakes_with_config_for():
    """runtime.testing.config_for casts roles to started fakes for a user's own tests."""
    with (
        FakeAnthropic(keys={"k"}, script=[Answer("from the fake")]) as claude,
        FakeOpenAI() as gpt,
        Callboard(
            config_for(
                {"claude": claude, "gpt": gpt},
                {"coder": ["claude", "gpt"]},
                keys={"claude": "k"},
                toml="[retry]\nattempts = 1\n",
            )
        ) as board,
    ):
        reply = board.ask("coder", "hi")
        assert (reply.text, reply.provider) == ("from the fake", "claude")
        assert board.config.retry.attempts == 1


def test_the_readme_testing_example_works():
    """The runtime.testing example in the README runs as written."""
    with FakeAnthropic(script=[Fail(529)]) as claude, FakeOpenAI(script=[Answer("ok")]) as gpt:
        config = config_for({"claude": claude, "gpt": gpt}, {"coder": ["claude", "gpt"]})
        with Callboard(config) as board:
            assert board.ask("coder", "hi").provider == "gpt"
        assert claude.requests[-1].json["messages"][0]["content"] == "hi"


def test_the_default_provider_answers_when_a_roles_own_providers_fail(fakes, deployment):
    """A role whose providers all fail falls back to default_provider, recorded as a fallback."""
    primary, last = fakes("openai"), fakes("anthropic")
    deployment.write(
        config_toml(
            deployment,
            {"primary": primary, "last": last},
            {
                "coder": ["primary"],
                "strict": {"providers": ["primary"], "fallback_to_default": False},
            },
            default="last",
        )
    )
    primary.script.extend([Fail(500)] * 2)
    board = deployment.board()
    reply = board.ask("coder", "hi")
    assert [(a.provider, a.outcome) for a in reply.attempts] == [
        ("primary", "server"),
        ("last", "ok"),
    ]
    (finished,) = deployment.events("task_finished")
    assert (finished["provider"], finished["fallback"]) == ("last", True)
    assert finished["trail"] == ["primary:server", "last:ok"]
    primary.script.extend([Fail(500)] * 2)
    with pytest.raises(TaskFailedError):
        board.ask("strict", "hi")
    assert board.ask("unlisted", "hi").provider == "last"
    assert deployment.events("task_finished")[-1]["fallback"] is False
