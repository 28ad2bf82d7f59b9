"""Each provider type end to end: a board casts roles to it and talks to its fake over HTTP.

Azure OpenAI, AWS Bedrock (signed with AWS credentials, or with a Bedrock API key), Ollama,
Cohere and Replicate, each in its own wire format: answers, streams, embeddings, model
lists, start-up checks, throttling and streams cut mid-way.
"""

from __future__ import annotations

import concurrent.futures
import socket
import sys

import pytest
from support import AWS_SECRET, KEYS, MODELS, config_toml, primary_and_backup

from runtime import (
    MissingExtraError,
    StartupError,
    StreamBrokenError,
    StreamDelta,
    StreamEnd,
    StreamRestart,
    Usage,
)
from runtime.testing import Answer, Fail, StreamError

pytestmark = pytest.mark.timeout(30)

TEXT = "one two three four five six seven eight nine ten"
KEYED = ["azure_openai", "ollama", "cohere", "replicate"]
"""The new types that send a key (Bedrock is tested both ways below)."""
STREAMED = ["azure_openai", "ollama", "cohere"]
EMBEDDING_MODELS = {
    "azure_openai": "text-embedding-3-small",
    "ollama": "nomic-embed-text:latest",
    "cohere": "embed-v4.0",
}


def _bedrock_by_key() -> dict[str, str]:
    return {"auth": "api-key"}


@pytest.mark.parametrize("protocol", KEYED)
def test_a_task_is_answered_after_the_start_up_check(fakes, deployment, protocol):
    """The start-up check passes with the right key, and a task gets the fake's answer."""
    only = fakes(protocol)
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    only.script.append(Answer(f"hello from {protocol}"))
    board = deployment.board(check=True)
    reply = board.ask("coder", "say hello", max_tokens=100)
    assert reply.text == f"hello from {protocol}"
    assert (reply.provider, reply.model) == ("only", MODELS[protocol])
    assert reply.usage.output_tokens > 0
    (chat,) = [r for r in only.requests if r.is_chat]
    assert chat.json is not None
    board.close()
    (attempt,) = deployment.events("attempt")
    assert (attempt["provider"], attempt["outcome"]) == ("only", "ok")


@pytest.mark.parametrize("protocol", KEYED)
def test_a_wrong_key_fails_the_start_up_check_naming_where_it_comes_from(
    fakes, deployment, protocol
):
    """A rejected key is one line naming the provider and its variable, never the key."""
    only = fakes(protocol, keys={"some-other-key-entirely"})
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    with pytest.raises(StartupError) as caught:
        deployment.board(check=True)
    (problem,) = caught.value.problems
    assert problem.startswith("only: the key was rejected (HTTP 40")
    assert f"{protocol.upper()}_KEY" in problem
    assert KEYS[protocol] not in str(caught.value)


@pytest.mark.parametrize("protocol", STREAMED)
def test_a_stream_arrives_in_pieces_in_each_wire_format(fakes, deployment, protocol):
    """SSE (Azure, Cohere) and NDJSON (Ollama) streams reach the caller piece by piece."""
    only = fakes(protocol)
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    only.script.append(Answer(TEXT, chunk_delay_s=0.01))
    board = deployment.board()
    events = list(board.stream("coder", "count"))
    deltas = [e for e in events if isinstance(e, StreamDelta)]
    assert len(deltas) > 1
    assert "".join(d.text for d in deltas) == TEXT
    assert isinstance(events[-1], StreamEnd)
    reply = events[-1].reply
    assert reply.text == TEXT
    assert reply.usage.output_tokens > 0
    assert reply.ttft_ms is not None
    assert (only.requests[-1].json or {}).get("stream") is True


def test_replicate_streams_by_url_and_fetches_the_token_counts(fakes, deployment):
    """A stream is a create call, its urls.stream read as it goes, then its result for usage."""
    only = fakes("replicate")
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    only.script.append(Answer(TEXT, usage=Usage(40, 10), chunk_delay_s=0.01))
    board = deployment.board()
    events = list(board.stream("coder", "count"))
    deltas = [e.text for e in events if isinstance(e, StreamDelta)]
    assert len(deltas) > 1
    assert "".join(deltas) == TEXT
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.reply.text == TEXT
    assert (end.reply.usage.input_tokens, end.reply.usage.output_tokens) == (40, 10)
    assert end.reply.ttft_ms is not None
    create, stream, result = only.requests
    assert (create.json or {}).get("stream") is True
    assert "prefer" not in create.headers
    assert (stream.action, result.action) == ("fetch_stream", "fetch_result")
    assert stream.headers["authorization"].startswith("Bearer ")


def test_replicate_asked_whole_is_one_sync_call(fakes, deployment):
    """``ask`` does not stream Replicate: one create call in sync mode, with its counts."""
    only = fakes("replicate")
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    only.script.append(Answer(TEXT, usage=Usage(40, 10)))
    reply = deployment.board().ask("coder", "count")
    assert (reply.text, reply.usage.output_tokens) == (TEXT, 10)
    (create,) = only.requests
    assert create.headers["prefer"] == "wait=55"
    assert "stream" not in (create.json or {})


def test_replicate_stream_broken_mid_way_restarts_on_the_backup(fakes, deployment):
    """An ``error`` event after the first text breaks the stream; ``restart`` goes on elsewhere."""
    first, backup = fakes("replicate"), fakes("openai")
    primary_and_backup(deployment, first, backup)
    first.script.append(StreamError(after_chunks=2, message="worker crashed"))
    backup.script.append(Answer(TEXT))
    events = list(deployment.board().stream("coder", "count", on_broken="restart"))
    restarts = [e for e in events if isinstance(e, StreamRestart)]
    assert len(restarts) == 1
    assert "primary" in restarts[0].reason
    assert events[-1].reply.provider == "backup"
    assert events[-1].reply.text == TEXT


@pytest.mark.parametrize("protocol", sorted(EMBEDDING_MODELS))
def test_embeddings_from_each_type_that_has_them(fakes, deployment, protocol):
    """Azure, Ollama and Cohere embed texts, one vector each, with the configured model."""
    model = EMBEDDING_MODELS[protocol]
    only = fakes(protocol, models=[MODELS[protocol], model])
    providers = {"only": (only, {"embedding_model": model})}
    deployment.write(config_toml(deployment, providers, {"search": ["only"]}))
    board = deployment.board()
    reply = board.embed("search", ["first", "second"], input_type="query")
    assert len(reply.vectors) == 2
    assert reply.vectors[0] != reply.vectors[1]
    assert (reply.provider, reply.model) == ("only", model)


@pytest.mark.parametrize("protocol", KEYED)
def test_model_lists_come_from_each_type(fakes, deployment, protocol):
    """`Callboard.models` asks the provider, in its own API, for what it offers."""
    only = fakes(protocol)
    deployment.write(config_toml(deployment, {"only": only}, {"coder": ["only"]}))
    board = deployment.board()
    assert MODELS[protocol] in board.models("only")


def test_bedrock_requests_are_signed_with_the_aws_credentials(fakes, deployment, aws_keys):
    """With AWS credentials in the environment, every request carries a SigV4 signature."""
    bedrock = fakes("bedrock")
    providers = {"bedrock": (bedrock, {"region": "eu-west-1"})}
    deployment.write(config_toml(deployment, providers, {"coder": ["bedrock"]}))
    bedrock.script.append(Answer(TEXT, chunk_delay_s=0.01))
    board = deployment.board(check=True)
    events = list(board.stream("coder", "count"))
    assert len([e for e in events if isinstance(e, StreamDelta)]) > 1
    assert events[-1].reply.text == TEXT
    checked, streamed = bedrock.requests
    assert not checked.is_chat
    assert streamed.path.endswith("/converse-stream")
    for request in (checked, streamed):
        assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
        assert "x-amz-date" in request.headers
    assert aws_keys not in deployment.audit_path.read_text()


CREDENTIAL_PROCESS = """\
import datetime, json, pathlib, socket, sys
folder, port, key, secret = pathlib.Path(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:5]
runs = folder / "runs"
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
if len(runs.read_text()) > 1:  # a refresh: tell the test, and wait until it says go
    with socket.create_connection(("127.0.0.1", port), timeout=20) as test:
        test.sendall(b"refreshing")
        test.recv(2)
expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
print(json.dumps({
    "Version": 1, "AccessKeyId": key, "SecretAccessKey": secret,
    "SessionToken": "session", "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
}))
"""


def test_a_bedrock_credential_refresh_does_not_hold_up_other_providers(fakes, deployment, no_aws):
    """Temporary credentials near their expiry are refreshed off the I/O loop.

    The credentials come from a ``credential_process`` (a real botocore provider) and
    expire within botocore's refresh window, so the Bedrock call refreshes them first;
    that refresh hangs until the test lets it go. Meanwhile a call to another provider,
    on the same I/O loop, is answered; then the Bedrock call is answered too.
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(20)
        port = listener.getsockname()[1]
        script = no_aws / "credentials.py"
        script.write_text(CREDENTIAL_PROCESS)
        command = f"{sys.executable} {script} {no_aws} {port} {KEYS['bedrock']} {AWS_SECRET}"
        (no_aws / "config").write_text(f"[default]\ncredential_process = {command}\n")
        bedrock, other = fakes("bedrock"), fakes("openai")
        providers = {"bedrock": bedrock, "other": other}
        deployment.write(
            config_toml(deployment, providers, {"coder": ["bedrock"], "reviewer": ["other"]})
        )
        board = deployment.board()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            signed = pool.submit(board.ask, "coder", "hello")
            refresh, _ = listener.accept()
            with refresh:
                assert refresh.recv(10) == b"refreshing"
                reply = board.ask("reviewer", "meanwhile", deadline_s=3.0)
                assert reply.provider == "other"
                assert not signed.done()
                refresh.sendall(b"go")
            assert signed.result(timeout=20).provider == "bedrock"
    assert bedrock.requests[-1].headers["authorization"].startswith("AWS4-HMAC-SHA256 ")


def test_bedrock_signed_with_an_unknown_access_key_fails_the_check(fakes, deployment, aws_keys):
    """Credentials AWS does not know fail the start-up check, pointing at the AWS credentials."""
    bedrock = fakes("bedrock", keys={"AKIASOMEONEELSE00000"})
    deployment.write(config_toml(deployment, {"bedrock": bedrock}, {"coder": ["bedrock"]}))
    with pytest.raises(StartupError) as caught:
        deployment.board(check=True)
    (problem,) = caught.value.problems
    assert problem.startswith("bedrock: the key was rejected (HTTP 403)")
    assert "AWS_ACCESS_KEY_ID" in problem


def test_bedrock_signed_with_the_wrong_secret_fails_the_check(
    fakes, deployment, aws_keys, monkeypatch
):
    """A secret that does not go with the access key id: the signature fails, AWS creds named."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-of-this-access-key")
    bedrock = fakes("bedrock")
    deployment.write(config_toml(deployment, {"bedrock": bedrock}, {"coder": ["bedrock"]}))
    with pytest.raises(StartupError) as caught:
        deployment.board(check=True)
    (problem,) = caught.value.problems
    assert problem.startswith("bedrock: the key was rejected (HTTP 403)")
    assert "does not match" in problem
    assert "AWS_SECRET_ACCESS_KEY" in problem
    assert "not-the-secret" not in problem


def test_bedrock_without_aws_credentials_fails_the_check_saying_what_to_set(
    fakes, deployment, no_aws
):
    """No credentials anywhere: the check says which variables or profile to set."""
    bedrock = fakes("bedrock")
    deployment.write(config_toml(deployment, {"bedrock": bedrock}, {"coder": ["bedrock"]}))
    with pytest.raises(StartupError) as caught:
        deployment.board(check=True)
    (problem,) = caught.value.problems
    assert problem.startswith("bedrock: no AWS credentials found")
    assert "AWS_PROFILE" in problem
    assert not bedrock.requests


def test_bedrock_without_credentials_is_out_of_rotation_and_tasks_fall_back(
    fakes, deployment, no_aws
):
    """Unchecked, a Bedrock provider with no credentials is out; its role's backup answers."""
    bedrock, backup = fakes("bedrock"), fakes("openai")
    primary_and_backup(deployment, bedrock, backup)
    board = deployment.board()
    reply = board.ask("coder", "x")
    assert reply.provider == "backup"
    assert "no AWS credentials found" in board.health()["primary"].reason
    (out,) = deployment.events("provider_out")
    assert out["provider"] == "primary"
    assert not bedrock.requests


def test_bedrock_with_an_api_key_sends_it_as_bearer(fakes, deployment, no_aws):
    """``auth = "api-key"`` sends a Bedrock API key instead of signing; no AWS credentials."""
    bedrock = fakes("bedrock")
    providers = {"bedrock": (bedrock, _bedrock_by_key())}
    deployment.write(config_toml(deployment, providers, {"coder": ["bedrock"]}))
    board = deployment.board(check=True)
    assert board.ask("coder", "x").provider == "bedrock"
    assert all(r.headers["authorization"].startswith("Bearer ") for r in bedrock.requests)


def test_bedrock_by_api_key_streams_without_botocore(fakes, deployment, no_aws, monkeypatch):
    """With a Bedrock API key no extra is needed: streamed answers are decoded without botocore."""
    bedrock = fakes("bedrock")
    providers = {"bedrock": (bedrock, _bedrock_by_key())}
    deployment.write(config_toml(deployment, providers, {"coder": ["bedrock"]}))
    for name in ("botocore", "botocore.eventstream"):
        monkeypatch.setitem(sys.modules, name, None)
    board = deployment.board()
    chunks = list(board.stream("coder", "x"))
    reply = chunks[-1].reply
    assert reply.provider == "bedrock"
    assert reply.text == "".join(c.text for c in chunks[:-1])
    assert bedrock.requests[-1].path.endswith("/converse-stream")


def test_bedrock_signing_without_botocore_asks_for_the_extra(
    fakes, deployment, aws_keys, monkeypatch
):
    """Without botocore a signing Bedrock provider stops the start, naming it and the extra."""
    bedrock = fakes("bedrock")
    deployment.write(config_toml(deployment, {"bedrock": bedrock}, {"coder": ["bedrock"]}))
    monkeypatch.setitem(sys.modules, "botocore", None)
    with pytest.raises(MissingExtraError) as caught:
        deployment.board()
    assert "bedrock" in str(caught.value)
    assert "callboard[bedrock]" in str(caught.value)
    assert 'auth = "api-key"' in str(caught.value)


def test_bedrock_throttling_cools_it_and_the_backup_answers(fakes, deployment, no_aws):
    """A ThrottlingException (429, no wait given) is rate_limited: the backup takes the task."""
    bedrock, backup = fakes("bedrock"), fakes("openai")
    deployment.write(
        config_toml(
            deployment,
            {"primary": (bedrock, _bedrock_by_key()), "backup": backup},
            {"coder": ["primary", "backup"]},
        )
    )
    bedrock.script.append(Fail(429))
    board = deployment.board()
    reply = board.ask("coder", "x")
    assert reply.provider == "backup"
    assert [a.outcome for a in reply.attempts] == ["rate_limited", "ok"]
    (cooling,) = deployment.events("provider_cooling")
    assert cooling["provider"] == "primary"


def test_a_connection_cut_mid_stream_raises_with_the_partial_text(fakes, deployment):
    """Cohere's stream cut after some text: StreamBrokenError holds exactly what arrived."""
    primary, backup = fakes("cohere"), fakes("openai")
    primary_and_backup(deployment, primary, backup)
    primary.script.append(StreamError(after_chunks=3))
    board = deployment.board()
    received: list[object] = []
    with pytest.raises(StreamBrokenError) as caught:
        received.extend(board.stream("coder", "x"))
    partial = "".join(e.text for e in received if isinstance(e, StreamDelta))
    assert partial
    assert caught.value.partial_text == partial
    assert caught.value.attempts[0].provider == "primary"
    assert not [r for r in backup.requests if r.is_chat]


def test_an_ollama_error_line_mid_stream_restarts_on_the_backup(fakes, deployment):
    """An NDJSON error line after some text, with on_broken="restart", goes on elsewhere."""
    primary, backup = fakes("ollama"), fakes("anthropic")
    primary_and_backup(deployment, primary, backup)
    primary.script.append(StreamError(after_chunks=2))
    backup.script.append(Answer(TEXT))
    board = deployment.board()
    events = list(board.stream("coder", "x", on_broken="restart"))
    restarts = [i for i, e in enumerate(events) if isinstance(e, StreamRestart)]
    assert len(restarts) == 1
    after = events[restarts[0] + 1 :]
    assert "".join(e.text for e in after if isinstance(e, StreamDelta)) == TEXT
    assert events[-1].reply.provider == "backup"
    assert events[-1].reply.attempts[0].outcome == "server"


def test_an_image_by_url_skips_providers_that_cannot_fetch_it(fakes, deployment):
    """Ollama and Bedrock take only inline images: a URL image goes to the next provider."""
    ollama, gpt = fakes("ollama"), fakes("openai")
    deployment.write(
        config_toml(deployment, {"local": ollama, "gpt": gpt}, {"v": ["local", "gpt"]})
    )
    board = deployment.board()
    image = {"type": "image", "url": "https://example.com/cat.png"}
    reply = board.ask(
        "v",
        messages=[{"role": "user", "content": [{"type": "text", "text": "what is it?"}, image]}],
    )
    assert reply.provider == "gpt"
    assert not ollama.requests
    (skipped,) = deployment.events("provider_skipped")
    assert skipped["provider"] == "local"
    assert "cannot fetch images by URL" in skipped["reason"]


def test_an_inline_image_reaches_ollama_as_bare_base64(fakes, deployment):
    """A data: URL is inline data, so Ollama takes it, as base64 in the message's images."""
    ollama = fakes("ollama")
    deployment.write(config_toml(deployment, {"local": ollama}, {"v": ["local"]}))
    board = deployment.board()
    image = {"type": "image", "url": "data:image/png;base64,iVBORw0KGgo="}
    assert board.ask("v", messages=[{"role": "user", "content": [image]}]).provider == "local"
    (chat,) = [r for r in ollama.requests if r.is_chat]
    assert chat.json["messages"][0]["images"] == ["iVBORw0KGgo="]
