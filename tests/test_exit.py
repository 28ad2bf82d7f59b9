"""A program exits, every record written, with or without `close()`, and on SIGTERM or SIGINT.

Each test runs a real child process against loopback fakes started here, and bounds how
long it may take to exit: the old runtime hung until it was killed.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ENV, KEYS, Deployment, config_toml

from runtime.testing import Answer, FakeProvider, Hang

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals"),
]

EXIT_BOUND_S = 15.0
"""How long a child may take to exit once it is done or signalled."""

LONG_WAITS = """
[timeouts]
first_byte_s = 60.0
request_s = 60.0
task_s = 60.0
"""
"""Timeouts that keep a call to a hanging provider waiting for longer than any test."""

PREAMBLE = """
import signal, sys
# The dispositions a program started from a terminal has, whatever the test runner's are.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
from runtime import Callboard
"""

CALLS = {
    "ask": 'board.ask("coder", "hi")',
    "stream": 'for event in board.stream("coder", "hi"):\n    pass',
    "embed": 'board.embed("embedder", ["hi"])',
}
"""A call of each kind that blocks the main thread while its provider hangs."""

EXIT_STATUS = {signal.SIGTERM: 128 + signal.SIGTERM, signal.SIGINT: -signal.SIGINT}
"""SIGTERM: `[startup] exit_on_sigterm`'s status; SIGINT: an uncaught KeyboardInterrupt's."""


def spawn(code: str, *args: str, stdin: bool = False) -> subprocess.Popen[str]:
    """Run ``code`` (after `PREAMBLE`) with ``args`` in a fresh interpreter."""
    return subprocess.Popen(
        [sys.executable, "-c", PREAMBLE + code, *args],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV},
    )


def finish(child: subprocess.Popen[str]) -> tuple[str, str]:
    """Wait (bounded) for ``child`` to exit; kill it and fail if it does not."""
    try:
        return child.communicate(timeout=EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail(f"the child did not exit within {EXIT_BOUND_S:g} s")


def assert_all_recorded(deployment: Deployment, outcomes: list[str]) -> None:
    """Every task has its terminal record, the board its `board_closed`, the store every row."""
    started = [e["task_id"] for e in deployment.events("task_started")]
    finished = {e["task_id"]: e["outcome"] for e in deployment.events("task_finished")}
    assert sorted(finished.values()) == sorted(outcomes)
    assert set(started) == set(finished)
    assert deployment.audit()[-1]["event"] == "board_closed"
    with sqlite3.connect(deployment.metrics_path) as db:
        stored = dict(db.execute("SELECT task_id, outcome FROM tasks").fetchall())
        attempts = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    assert stored == finished
    assert attempts == len(deployment.events("attempt"))


class SilentHost:
    """A loopback listener that takes connections and never answers (a hanging endpoint)."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.port: int = listener.getsockname()[1]
        self.connections: list[socket.socket] = []

    def wait_for_connection(self) -> None:
        """Block until a client connects; its connection stays open, unanswered."""
        connection, _ = self.listener.accept()
        self.connections.append(connection)


@pytest.fixture
def silent_host() -> Iterator[SilentHost]:
    """A host that never answers; its connections are closed after the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(EXIT_BOUND_S)
        host = SilentHost(listener)
        yield host
        for connection in host.connections:
            connection.close()


def hanging_config(
    deployment: Deployment, fake: FakeProvider, silent: SilentHost, sections: str = LONG_WAITS
) -> Path:
    """Cast ``coder`` to ``fake`` and ``embedder`` to a provider whose host never answers."""
    text = config_toml(deployment, {"gpt": fake}, {"coder": ["gpt"]}, sections=sections)
    port = silent.port
    text += (
        f'\n[providers.silent]\ntype = "openai"\napi_key = "{KEYS["openai"]}"\n'
        f'base_url = "http://127.0.0.1:{port}/v1"\nmodel = "gpt-4o"\n'
        'embedding_model = "text-embedding-3-small"\n'
        '\n[roles.embedder]\nproviders = ["silent"]\n'
    )
    return deployment.write(text)


def wait_until_blocked(call: str, fake: FakeProvider, silent: SilentHost) -> None:
    """Return once the child's call has reached its (hanging) provider."""
    if call == "embed":
        silent.wait_for_connection()
    else:
        fake.wait_for_requests(1, chat_only=True, timeout_s=EXIT_BOUND_S)


OPEN = "board = Callboard.from_config(sys.argv[1], check=False)\n"
"""The start of a script: a board from the config file the test wrote."""

NO_CLOSE = {
    "kept": OPEN + 'print(board.ask("coder", "hi").text)\n',
    "dropped": 'print(Callboard.from_config(sys.argv[1], check=False).ask("coder", "hi").text)\n',
}
"""Scripts that never close their board, which they keep in a variable or drop."""


@pytest.mark.parametrize("script", sorted(NO_CLOSE))
def test_a_program_that_never_closes_its_board_exits_with_every_record(fakes, deployment, script):
    """A script that asks once and falls off the end (board kept or dropped) exits promptly."""
    fake = fakes("openai", script=[Answer("ok")])
    config = deployment.write(config_toml(deployment, {"gpt": fake}, {"coder": ["gpt"]}))
    out, err = finish(spawn(NO_CLOSE[script], str(config)))
    assert out == "ok\n", err
    assert_all_recorded(deployment, ["ok"])


THREAD_STILL_ASKING = (
    OPEN
    + """
import threading
threading.Thread(target=lambda: print(board.ask("coder", "hi").text, flush=True)).start()
print("main done", flush=True)
"""
)
"""A script whose main thread ends while a thread of its own still waits for an answer."""


def test_a_thread_still_asking_when_the_main_thread_ends_gets_its_answer(fakes, deployment):
    """Without close(), the board stays open until the program's own threads are done."""
    fake = fakes("openai", script=[Answer("late", delay_s=0.5)])
    text = config_toml(deployment, {"gpt": fake}, {"coder": ["gpt"]}, sections=LONG_WAITS)
    config = deployment.write(text)
    out, err = finish(spawn(THREAD_STILL_ASKING, str(config)))
    assert out == "main done\nlate\n", err
    assert_all_recorded(deployment, ["ok"])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_signal_during_a_blocked_call_exits_with_the_usual_status(
    fakes, deployment, silent_host, call, signum
):
    """SIGTERM or SIGINT in a call to a hanging provider cancels it and exits, records written."""
    fake = fakes("openai", script=[Hang()])
    config = hanging_config(deployment, fake, silent_host)
    child = spawn(OPEN + CALLS[call] + "\n", str(config))
    wait_until_blocked(call, fake, silent_host)
    child.send_signal(signum)
    _, err = finish(child)
    assert child.returncode == EXIT_STATUS[signum], err
    assert_all_recorded(deployment, ["cancelled"])
    (finished,) = deployment.events("task_finished")
    assert "interrupted" in finished["error"]
    attempts = deployment.events("attempt")  # its one attempt hung until the signal
    assert [a["outcome"] for a in attempts] == ["cancelled"]


CATCHES_INTERRUPT = """
with Callboard.from_config(sys.argv[1], check=False) as board:
    try:
        board.ask("coder", "hi")
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    sys.stdin.readline()
    print(board.ask("coder", "hi").text, flush=True)
"""
"""A script that survives a Ctrl-C in one call and asks again when told to."""


def test_an_interrupted_call_is_cancelled_before_the_caller_hears_of_it(
    fakes, deployment, silent_host
):
    """A caller that catches KeyboardInterrupt finds its task already ended as cancelled."""
    fake = fakes("openai", script=[Hang(), Answer("again")])
    config = hanging_config(deployment, fake, silent_host)
    child = spawn(CATCHES_INTERRUPT, str(config), stdin=True)
    assert child.stdin is not None
    assert child.stdout is not None
    fake.wait_for_requests(1, chat_only=True, timeout_s=EXIT_BOUND_S)
    child.send_signal(signal.SIGINT)
    assert child.stdout.readline() == "interrupted\n"
    assert [e["outcome"] for e in deployment.events("task_finished")] == ["cancelled"]
    child.stdin.write("go on\n")
    child.stdin.flush()
    out, err = finish(child)
    assert out == "again\n", err
    assert child.returncode == 0
    assert_all_recorded(deployment, ["cancelled", "ok"])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_command_line_exits_130_on_sigint_and_143_on_sigterm(
    fakes, deployment, silent_host, signum
):
    """`callboard ask` on a hanging provider exits 130 or 143, its task's record saying why."""
    fake = fakes("openai", script=[Hang()])
    unchecked = LONG_WAITS + "[startup]\ncheck_credentials = false\n"
    config = hanging_config(deployment, fake, silent_host, unchecked)
    command = "from runtime._cli.main import main; sys.exit(main())"
    child = spawn(command, "ask", "coder", "hi", "--config", str(config))
    fake.wait_for_requests(1, chat_only=True, timeout_s=EXIT_BOUND_S)
    child.send_signal(signum)
    _, err = finish(child)
    assert child.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], err
    assert_all_recorded(deployment, ["cancelled"])
    (finished,) = deployment.events("task_finished")
    assert "interrupted" in finished["error"]
