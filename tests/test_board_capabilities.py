from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import ENV, config_toml

from runtime import ImagePart, TaskFailedError, TextPart
from runtime.testing import Answer

pytestmark = pytest.mark.timeout(30)

PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="  # noqa: E501 - a whole PNG


def test_embeddings_come_back_one_vector_per_text(fakes, deployment):
    """embed() returns a vector per text from the role's provider with an embedding model."""
    gpt = fakes("openai")
    settings = {"embedding_model": "text-embedding-3-small"}
    deployment.write(config_toml(deployment, {"gpt": (gpt, settings)}, {"search": ["gpt"]}))
    board = deployment.board()
    reply = board.embed("search", ["first text", "second text"], dimensions=8)
    assert len(reply.vectors) == 2
    assert all(len(v) == 8 for v in reply.vectors)
    assert reply.vectors[0] != reply.vectors[1]
    assert (reply.provider, reply.model) == ("gpt", "text-embedding-3-small")
    sent = next(r for r in gpt.requests if r.path.endswith("/embeddings")).json
    assert sent["input"] == ["first text", "second text"]
    (finished,) = deployment.events("task_finished")
    assert finished["outcome"] == "ok"


def test_embeddings_fall_back_only_to_the_same_model(fakes, deployment):
    """A provider with another embedding model is skipped, so vectors never mix."""
    gpt, gemini, other = fakes("openai"), fakes("gemini"), fakes("openai")
    providers = {
        "gpt": (gpt, {"embedding_model": "text-embedding-3-small"}),
        "gemini": (gemini, {"embedding_model": "gemini-embedding-001"}),
        "other": (other, {"embedding_model": "text-embedding-3-small"}),
        "claude": fakes("anthropic"),
    }
    deployment.write(
        config_toml(deployment, providers, {"search": ["gpt", "gemini", "claude", "other"]})
    )
    gpt.down()
    board = deployment.board()
    reply = board.embed("search", ["x"])
    assert reply.provider == "other"
    assert [a.provider for a in reply.attempts] == ["gpt", "other"]
    skipped = {e["provider"]: e["reason"] for e in deployment.events("provider_skipped")}
    assert "vectors never mix" in skipped["gemini"]
    assert "no embeddings API" in skipped["claude"]


def test_images_reach_providers_that_take_them_and_skip_the_others(fakes, deployment):
    """A task with an image skips a provider marked images = false, with the reason logged."""
    text_only, claude = fakes("openai"), fakes("anthropic")
    providers = {"text_only": (text_only, {"images": False}), "claude": claude}
    deployment.write(config_toml(deployment, providers, {"vision": ["text_only", "claude"]}))
    board = deployment.board()
    image = ImagePart(data=PIXEL, media_type="image/png", cache=True)
    reply = board.ask(
        "vision", messages=[{"role": "user", "content": [TextPart("what is it?"), image]}]
    )
    assert reply.provider == "claude"
    sent = claude.wait_for_requests(1, chat_only=True)[0].json
    blocks = sent["messages"][0]["content"]
    assert blocks[1]["type"] == "image"
    assert blocks[1]["source"]["data"] == PIXEL
    assert blocks[1]["cache_control"] == {"type": "ephemeral"}
    assert not [r for r in text_only.requests if r.is_chat]
    (skipped,) = deployment.events("provider_skipped")
    assert (skipped["provider"], skipped["reason"]) == ("text_only", "it does not take images")


def test_a_task_no_provider_can_take_fails_at_once_saying_why(fakes, deployment):
    """When every provider of the role is skipped, the task fails with their reasons."""
    text_only = fakes("openai")
    deployment.write(
        config_toml(deployment, {"t": (text_only, {"images": False})}, {"vision": ["t"]})
    )
    board = deployment.board()
    with pytest.raises(TaskFailedError, match="t: it does not take images"):
        board.ask(
            "vision",
            messages=[{"role": "user", "content": [{"type": "image", "url": "https://x/y.png"}]}],
        )


def test_models_lists_what_a_provider_offers(fakes, deployment):
    """board.models() and `callboard models` list the provider's models."""
    gemini = fakes("gemini", models=["gemini-2.5-flash", "gemini-2.5-pro"])
    path = deployment.write(config_toml(deployment, {"g": gemini}, {"coder": ["g"]}))
    board = deployment.board()
    assert sorted(board.models("g")) == ["gemini-2.5-flash", "gemini-2.5-pro"]
    done = subprocess.run(
        [sys.executable, "-m", "runtime._cli", "models", "g", "--config", str(path)],
        capture_output=True, text=True, env={**os.environ, **ENV}, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["gemini-2.5-flash", "gemini-2.5-pro"]


def test_ask_stream_prints_as_it_goes(fakes, deployment):
    """`callboard ask --stream` prints the streamed text and who answered."""
    gpt = fakes("openai")
    path = deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    gpt.script.append(Answer("streamed words arrive one by one", chunk_delay_s=0.01))
    command = ["ask", "coder", "hi", "--stream", "--config", str(path)]
    done = subprocess.run(
        [sys.executable, "-m", "runtime._cli", *command],
        capture_output=True, text=True, env={**os.environ, **ENV}, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "streamed words arrive one by one\n"
    assert "[gpt (gpt-4o), 1 attempt" in done.stderr
