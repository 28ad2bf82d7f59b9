from __future__ import annotations

import time

import pytest
from support import ENV, KEYS, config_toml

from runtime import Callboard, StartupError

pytestmark = pytest.mark.timeout(20)


def test_valid_credentials_start_the_board(fakes, deployment):
    """Every provider's key and model are checked at start, against its models endpoint."""
    gpt, claude, gemini = fakes("openai"), fakes("anthropic"), fakes("gemini")
    deployment.write(
        config_toml(
            deployment, {"gpt": gpt, "claude": claude, "gemini": gemini}, {"coder": ["gpt"]}
        )
    )
    board = deployment.board(check=True)
    assert board.ask("coder", "hi").provider == "gpt"
    assert gpt.requests[0].path == "/v1/models"
    assert [r.path for r in claude.requests] == ["/v1/models/claude-sonnet-4-5"]
    assert [r.path for r in gemini.requests] == ["/v1beta/models/gemini-2.5-flash"]


def test_every_failing_provider_is_reported_at_once_without_secrets(fakes, deployment):
    """A bad key, an unknown model and an unreachable host each get one actionable line."""
    bad_key = fakes("openai", keys={"some-other-key"})
    no_model = fakes("anthropic", models=["claude-opus-4-1"])
    down = fakes("gemini")
    down.down()
    fine = fakes("openai")
    deployment.write(
        config_toml(
            deployment,
            {"bad_key": bad_key, "no_model": no_model, "down": down, "fine": fine},
            {"coder": ["fine"]},
        )
    )
    with pytest.raises(StartupError) as caught:
        deployment.board(check=True)
    problems = caught.value.problems
    assert len(problems) == 3
    text = "\n".join(problems)
    assert "bad_key: the key was rejected (HTTP 401)" in text
    assert "set a valid key in the environment variable OPENAI_KEY" in text
    assert 'no_model: model "claude-sonnet-4-5" was not found (HTTP 404)' in text
    assert "down: unreachable" in text
    for key in KEYS.values():
        assert key not in str(caught.value)
    (failed,) = deployment.events("startup_failed")
    assert len(failed["problems"]) == 3


def test_a_gemini_bad_key_sent_as_400_is_reported_as_a_bad_key(fakes, deployment):
    """Gemini answers a bad key with 400 API_KEY_INVALID; the check still says 'key rejected'."""
    gemini = fakes("gemini", keys={"AIzaSomethingElse"})
    deployment.write(config_toml(deployment, {"gemini": gemini}, {"coder": ["gemini"]}))
    with pytest.raises(StartupError, match="gemini: the key was rejected \\(HTTP 400\\)"):
        deployment.board(check=True)


def test_a_silent_provider_is_given_validate_s_then_left_unchecked(fakes, deployment, silent_port):
    """The check gives each provider validate_s, in parallel, then names the silent ones."""
    fine = fakes("openai")
    silent = (fine, {"base_url": f"http://127.0.0.1:{silent_port}/v1"})
    deployment.write(config_toml(deployment, {"fine": fine, "silent": silent}, {"coder": ["fine"]}))
    started = time.monotonic()
    board = Callboard.from_config(deployment.path, check=True, environ=ENV)
    deployment.boards.append(board)
    assert time.monotonic() - started < 2.5
    expected = (
        f"http://127.0.0.1:{silent_port}/v1 did not answer within validate_s = 1 s; "
        "check base_url and the network, or raise [timeouts] validate_s"
    )
    health = board.health()["silent"]
    assert (health.state, health.reason) == ("unchecked", expected)


@pytest.mark.parametrize(("protocol", "version"), [("anthropic", "/v1"), ("gemini", "/v1beta")])
def test_a_base_url_in_the_sdks_convention_works_too(fakes, deployment, protocol, version):
    """Anthropic's and Gemini's SDKs take the API root without its version path: so do we."""
    fake = fakes(protocol)
    root = fake.base_url.removesuffix(version)
    deployment.write(
        config_toml(deployment, {"p": (fake, {"base_url": root + "/"})}, {"coder": ["p"]})
    )
    board = deployment.board(check=True)
    assert board.ask("coder", "hi").provider == "p"
    assert all(r.path.startswith(version + "/") for r in fake.requests)


def test_a_model_lookup_404_names_the_url_asked_and_the_api_root(fakes, deployment):
    """A base_url with a wrong path is not reported as a missing model only."""
    fake = fakes("anthropic")
    wrong = fake.base_url.removesuffix("/v1") + "/anthropic/v1"
    deployment.write(
        config_toml(deployment, {"claude": (fake, {"base_url": wrong})}, {"coder": ["claude"]})
    )
    with pytest.raises(StartupError) as caught:
        deployment.board(check=True)
    (problem,) = caught.value.problems
    assert f"GET {wrong}/models/claude-sonnet-4-5 answered 404" in problem
    assert "the API's root: that is https://api.anthropic.com/v1" in problem


def test_the_first_call_after_the_check_reuses_its_connection(fakes, deployment):
    """The check goes through the client the calls use: the first call opens no connection."""
    gpt = fakes("openai")
    deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    board = deployment.board(check=True)
    assert board.ask("coder", "hi").provider == "gpt"
    check, call = gpt.requests
    assert (check.path, call.is_chat) == ("/v1/models", True)
    assert check.peer is not None
    assert call.peer == check.peer
