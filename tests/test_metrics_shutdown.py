from __future__ import annotations

import signal
import sqlite3
import textwrap

import pytest
from support import config_toml, run_script

pytestmark = pytest.mark.timeout(60)

LOAD = textwrap.dedent(
    """
    import sys, threading
    from runtime import BoardClosedError, Callboard, TaskFailedError

    def say(line):
        sys.stdout.write(line + "\\n")  # one write: lines from many threads never mix
        sys.stdout.flush()

    with Callboard.from_config(sys.argv[1], check=False) as board:
        def work(n):
            i = 0
            while True:
                try:
                    reply = board.ask("coder", f"worker {n} task {i}")
                    say(f"answered {reply.task_id}")
                except BoardClosedError:
                    return
                except TaskFailedError as error:
                    say(f"ended {error.task_id}")
                i += 1

        workers = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for worker in workers:
            worker.start()
        say("started")
        for worker in workers:
            worker.join()
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs POSIX signals")
def test_sigterm_in_the_middle_of_a_load_loses_no_row(fakes, deployment, tmp_path):
    """Every task with a terminal audit record has its row in the store after a SIGTERM."""
    primary, backup = fakes("openai", latency_s=0.02), fakes("anthropic", latency_s=0.02)
    providers = {"primary": primary, "backup": backup}
    deployment.write(config_toml(deployment, providers, {"coder": ["primary", "backup"]}))
    script = tmp_path / "load.py"
    script.write_text(LOAD)
    child = run_script(script, deployment.path)
    assert child.stdout is not None
    answered = []
    for line in child.stdout:
        if line.startswith("answered"):
            answered.append(line.split()[1])
        if len(answered) >= 60:
            break
    child.send_signal(signal.SIGTERM)
    rest, _ = child.communicate(timeout=30)
    answered += [line.split()[1] for line in rest.splitlines() if line.startswith("answered")]
    assert child.returncode == 128 + signal.SIGTERM
    finished = {e["task_id"]: e["outcome"] for e in deployment.events("task_finished")}
    attempts = len(deployment.events("attempt"))
    with sqlite3.connect(deployment.metrics_path) as db:
        stored = dict(db.execute("SELECT task_id, outcome FROM tasks").fetchall())
        stored_attempts = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    assert set(answered) <= set(stored)
    assert stored == finished
    assert stored_attempts == attempts
    assert "cancelled" in finished.values() or len(finished) == len(answered)
