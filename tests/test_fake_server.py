"""The loopback server core, the public face of runtime.testing and its command line."""

import re
import subprocess
import sys
import threading
import time

import httpx
import pytest

import runtime.testing
from runtime.testing import FakeAnthropic, FakeOpenAI, Hang

pytestmark = pytest.mark.timeout(10)


def test_all_lists_exactly_the_public_names():
    """``runtime.testing.__all__`` names every public name of the package, and only those."""
    public = {name for name in dir(runtime.testing) if not name.startswith("_")}
    assert set(runtime.testing.__all__) == public


def test_context_manager_serves_then_refuses():
    """A fake serves inside its ``with`` block and refuses connections after it."""
    with FakeOpenAI() as fake:
        assert httpx.get(f"{fake.base_url}/models").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fake.base_url}/models")


def test_start_returns_the_fake_and_stop_is_idempotent():
    """`start` returns the fake itself; `stop` may be called twice."""
    fake = FakeOpenAI()
    try:
        assert fake.start() is fake
        assert fake.port > 0
    finally:
        fake.stop()
        fake.stop()


def test_one_key_may_be_given_as_a_string():
    """``keys="k"`` accepts exactly the key ``k``, not its characters."""
    with FakeOpenAI(keys="sk-one") as fake:
        good = httpx.get(f"{fake.base_url}/models", headers={"Authorization": "Bearer sk-one"})
        bad = httpx.get(f"{fake.base_url}/models", headers={"Authorization": "Bearer s"})
    assert (good.status_code, bad.status_code) == (200, 401)


def test_starting_twice_is_an_error():
    """A started fake refuses to start again."""
    with FakeOpenAI() as fake, pytest.raises(RuntimeError, match="already started"):
        fake.start()


def test_port_is_unknown_before_start():
    """Asking the port of a fake never started on an ephemeral port is an error."""
    with pytest.raises(RuntimeError, match="not started"):
        _ = FakeOpenAI().base_url


def test_given_port_is_served():
    """A fake given a port serves exactly that port."""
    with FakeOpenAI() as first:
        port = first.port
    with FakeAnthropic(port=port) as second:
        assert second.base_url == f"http://127.0.0.1:{port}/v1"
        assert httpx.get(f"{second.base_url}/models", headers=_anthropic()).status_code == 200


def test_down_refuses_and_up_serves_the_same_port():
    """`down` makes connections refused; `up` serves again on the same port."""
    with FakeOpenAI() as fake, httpx.Client(base_url=fake.base_url) as client:
        assert client.get("/models").status_code == 200
        port = fake.port
        fake.down()
        with pytest.raises(httpx.ConnectError):
            client.get("/models")
        fake.up()
        assert fake.port == port
        assert client.get("/models").status_code == 200


def test_down_cuts_requests_in_flight():
    """`down` cuts the requests still waiting for an answer, then `up` serves new ones."""
    with FakeOpenAI(script=[Hang()]) as fake:
        errors = []
        thread = threading.Thread(target=lambda: errors.append(_post_error(fake.base_url)))
        thread.start()
        fake.wait_for_requests(1)
        fake.down()
        thread.join(5)
        fake.up()
        assert errors == [httpx.RemoteProtocolError]
        assert _post_error(fake.base_url) is None


def test_stop_returns_promptly_while_requests_hang():
    """`stop` cancels hanging requests and returns at once, however many there are."""
    fake = FakeOpenAI(script=[Hang()] * 5).start()
    threads = [threading.Thread(target=_post_error, args=(fake.base_url,)) for _ in range(5)]
    try:
        for thread in threads:
            thread.start()
        fake.wait_for_requests(5)
    finally:
        started = time.monotonic()
        fake.stop()
        elapsed = time.monotonic() - started
    for thread in threads:
        thread.join(5)
    assert elapsed < 1
    assert not any(thread.is_alive() for thread in threads)


def test_state_survives_down_and_up():
    """The script, the log and the keys outlive `down` and `up`."""
    with FakeOpenAI(keys={"k"}, script=[Hang(), Hang()]) as fake:
        fake.down()
        fake.up()
        assert len(fake.script) == 2
        fake.revoke_key("k")
        response = httpx.get(f"{fake.base_url}/models", headers={"Authorization": "Bearer k"})
        assert response.status_code == 401


@pytest.mark.parametrize("protocol", ["anthropic", "gemini", "openai"])
def test_command_line_serves_until_terminated(protocol):
    """``python -m runtime.testing serve`` prints its API root, serves, and ends on SIGTERM."""
    command = [sys.executable, "-m", "runtime.testing", "serve", "--protocol", protocol]
    command += ["--port", "0", "--latency", "0.01", "--key", "k-cli"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1(beta)?", url)
        headers = {"Authorization": "Bearer k-cli", "x-api-key": "k-cli", "x-goog-api-key": "k-cli"}
        response = httpx.get(
            f"{url}/models", headers={**headers, "anthropic-version": "2023-06-01"}
        )
        assert response.status_code == 200
    finally:
        process.terminate()
        assert process.wait(5) == 0
        process.stdout.close()


def _anthropic():
    return {"anthropic-version": "2023-06-01"}


def _post_error(base_url):
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    try:
        httpx.post(f"{base_url}/chat/completions", json=body, timeout=5)
    except httpx.HTTPError as error:
        return type(error)
    return None


def test_port_in_use_fails_start_cleanly():
    """Starting on a port already served raises `OSError` and leaves no thread behind."""
    with FakeOpenAI() as first:
        threads = threading.active_count()
        second = FakeOpenAI(port=first.port)
        with pytest.raises(OSError, match="in use"):
            second.start()
        assert threading.active_count() == threads
        second.stop()
