from __future__ import annotations

import asyncio
import concurrent.futures
import json

import pytest
from support import KEYS, config_toml

from runtime import TaskCancelledError, TaskFailedError
from runtime.testing import Answer, Fail, Hang

pytestmark = pytest.mark.timeout(30)


def three_roles(fakes, deployment, **options):
    gpt, claude, gemini = (fakes(p, **options) for p in ("openai", "anthropic", "gemini"))
    deployment.write(
        config_toml(
            deployment,
            {"gpt": gpt, "claude": claude, "gemini": gemini},
            {"coder": ["claude", "gpt"], "reviewer": ["gemini", "claude"], "planner": ["gpt"]},
        )
    )
    return (gpt, claude, gemini), deployment.board()


def test_tasks_from_many_threads_each_reach_their_roles_provider(fakes, deployment):
    """Sixty tasks from twelve threads, three roles, all answered by the right provider."""
    (gpt, claude, gemini), board = three_roles(fakes, deployment, latency_s=0.05)
    roles = {"coder": "claude", "reviewer": "gemini", "planner": "gpt"}
    work = [(role, f"{role} task {i}") for i in range(20) for role in roles]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(lambda w: board.ask(w[0], w[1]), work))
    assert all(r.provider == roles[r.role] for r in replies)
    for fake in (gpt, claude, gemini):
        chats = [r for r in fake.requests if r.is_chat]
        assert len(chats) == 20
    coder_prompts = sorted(r.json["messages"][0]["content"] for r in claude.requests if r.is_chat)
    assert coder_prompts == sorted(f"coder task {i}" for i in range(20))


def test_asyncio_callers_run_concurrently(fakes, deployment):
    """Forty awaited tasks of 200 ms each finish together, not one after another."""
    (_gpt, _claude, _gemini), board = three_roles(fakes, deployment, latency_s=0.2)

    async def main() -> tuple[list[str], float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        replies = await asyncio.gather(*(board.aask("reviewer", f"r{i}") for i in range(40)))
        return [r.provider for r in replies], loop.time() - started

    providers, elapsed = asyncio.run(main())
    assert providers == ["gemini"] * 40
    assert elapsed < 1.5


def test_cancelling_an_awaited_task_cancels_it_in_the_runtime(fakes, deployment):
    """An asyncio cancellation drops the attempt in flight and records the task as cancelled."""
    (_gpt, claude, _gemini), board = three_roles(fakes, deployment)
    claude.script.append(Answer("late", delay_s=10))

    async def main() -> None:
        task = asyncio.ensure_future(board.aask("coder", "slow"))
        await asyncio.to_thread(claude.wait_for_requests, 1, chat_only=True)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    board.ask("planner", "flush")  # the router handles messages in order: the cancel is done
    finished = deployment.events("task_finished")
    assert [f["outcome"] for f in finished] == ["cancelled", "ok"]
    assert finished[0]["role"] == "coder"


def test_closing_the_board_ends_tasks_in_flight_with_a_record(fakes, deployment):
    """Tasks still running at close get an error and a terminal record; none is lost."""
    (_gpt, claude, _gemini), board = three_roles(fakes, deployment)
    claude.script.extend([Hang(), Hang()])
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        pending = [pool.submit(board.ask, "coder", f"stuck {i}", deadline_s=60) for i in range(2)]
        claude.wait_for_requests(2, chat_only=True)
        board.close()
        for future in pending:
            with pytest.raises(TaskCancelledError, match="the router stopped"):
                future.result(timeout=5)
    outcomes = [f["outcome"] for f in deployment.events("task_finished")]
    assert outcomes == ["cancelled", "cancelled"]


def test_every_task_ends_in_exactly_one_terminal_record_free_of_secrets(fakes, deployment):
    """Started, attempts, fallbacks and one terminal record per task; no key anywhere."""
    (_gpt, claude, _gemini), board = three_roles(fakes, deployment)
    claude.script.extend([Fail(500), Answer("fine")])
    replies = [board.ask("coder", f"t{i}") for i in range(3)]
    board.close()
    records = deployment.audit()
    started = [r["task_id"] for r in records if r["event"] == "task_started"]
    finished = [r for r in records if r["event"] == "task_finished"]
    assert sorted(started) == sorted(r.task_id for r in replies)
    assert sorted(f["task_id"] for f in finished) == sorted(started)
    first = next(f for f in finished if f["task_id"] == replies[0].task_id)
    assert first["outcome"] == "ok"
    assert first["provider"] == "gpt"
    assert first["attempts"] == 2
    assert first["trail"] == ["claude:server", "gpt:ok"]
    assert {"role", "model", "input_tokens", "output_tokens", "latency_ms"} <= set(first)
    events = [r["event"] for r in records]
    assert "fallback" in events
    assert events[0] == "config_loaded"
    assert events[-1] == "board_closed"
    text = deployment.audit_path.read_text()
    for key in KEYS.values():
        assert key not in text


def test_stats_count_attempts_and_tasks_per_provider_and_role(fakes, deployment):
    """Live aggregates match the calls made: counts, failures by kind, tokens, fallbacks."""
    (_gpt, claude, _gemini), board = three_roles(fakes, deployment)
    claude.script.extend([Fail(529), Answer("a"), Answer("b")])
    replies = [board.ask("coder", f"t{i}") for i in range(3)]
    board.ask("planner", "p")
    stats = board.stats()
    claude_coder = stats.pair("claude", "coder")
    assert claude_coder["attempts"] == 3
    assert claude_coder["successes"] == 2
    assert claude_coder["failures"] == {"overloaded": 1}
    gpt_coder = stats.pair("gpt", "coder")
    assert gpt_coder["attempts"] == 1
    assert gpt_coder["fallback_attempts"] == 1
    assert gpt_coder["tokens"]["output"] == replies[0].usage.output_tokens
    assert stats.roles["coder"]["tasks"] == 3
    assert stats.roles["coder"]["answered_by_fallback"] == 1
    assert stats.roles["planner"]["outcomes"] == {"ok": 1}
    assert stats.pair("gpt", "planner")["latency_ms"]["p50"] is not None


def finished_so_far(deployment) -> set[str]:
    """Task ids of the ``task_finished`` lines written whole so far.

    The router may be writing as the file is read: a last line without its newline is
    still being written, and is left for a later read.
    """
    text = deployment.audit_path.read_text()
    whole = text[: text.rfind("\n") + 1].splitlines()
    records = (json.loads(line) for line in whole)
    return {r["task_id"] for r in records if r["event"] == "task_finished"}


def test_each_caller_hears_of_its_task_only_after_its_terminal_record_is_written(fakes, deployment):
    """Many tasks ending together: each caller finds its task's end in the audit file.

    The router writes the records of the tasks that end in one pass over its inbox at
    once; no reply may go out before that write, answers and failures alike.
    """
    gpt = fakes("openai")
    gpt.script.extend([Fail(400)] * 8)  # a 400 is not retried: eight tasks fail
    deployment.write(config_toml(deployment, {"gpt": gpt}, {"planner": ["gpt"]}))
    board = deployment.board()
    seen: list[tuple[str, bool]] = []

    async def one(i: int) -> None:
        try:
            task_id = (await board.aask("planner", f"p{i}")).task_id
        except TaskFailedError as error:
            task_id = error.task_id
        seen.append((task_id, task_id in finished_so_far(deployment)))

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(64)))

    asyncio.run(main())

    def threaded(i: int) -> tuple[str, bool]:
        task_id = board.ask("planner", f"t{i}").task_id
        return task_id, task_id in finished_so_far(deployment)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        seen += pool.map(threaded, range(48))
    assert len({task_id for task_id, _ in seen}) == 112
    assert [task_id for task_id, written in seen if not written] == []
    outcomes = [f["outcome"] for f in deployment.events("task_finished")]
    assert sorted(set(outcomes)) == ["failed", "ok"]
    assert outcomes.count("failed") == 8
