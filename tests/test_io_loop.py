"""The I/O loop starts every spawned coroutine once, in order, from any number of threads.

Spawns made before the loop takes them wait together and wake it once; none may be lost
or started twice, and a spawn on a closed loop raises as it always has.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator

import pytest

from runtime._transport.io_loop import IoLoop

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def io() -> Iterator[IoLoop]:
    loop = IoLoop("test-io")
    yield loop
    loop.close()


async def echo(value: int) -> int:
    await asyncio.sleep(0)
    return value


def test_spawns_from_many_threads_each_end_once(io: IoLoop) -> None:
    threads, per_thread = 4, 500
    ended: list[tuple[int, int]] = []
    all_ended = threading.Event()

    def on_done(sender: int, task: asyncio.Task[int]) -> None:  # on the loop's thread
        ended.append((sender, task.result()))
        if len(ended) == threads * per_thread:
            all_ended.set()

    def send(sender: int) -> None:
        for value in range(per_thread):
            io.spawn(echo(value), on_done, sender)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, range(threads)))
    assert all_ended.wait(10), f"{len(ended)} of {threads * per_thread} spawns ended"
    for sender in range(threads):
        assert [v for s, v in ended if s == sender] == sorted(v for s, v in ended if s == sender)
    assert sorted(ended) == [(s, v) for s in range(threads) for v in range(per_thread)]


def test_spawns_made_while_the_loop_is_busy_start_in_order(io: IoLoop) -> None:
    release, started = threading.Event(), []
    io.loop.call_soon_threadsafe(release.wait, 5)  # hold the loop while spawns queue up
    done = threading.Event()

    async def note(value: int) -> None:
        started.append(value)

    for value in range(50):
        io.spawn(note(value), lambda _task: None)
    io.spawn(note(50), lambda _task: done.set())
    release.set()
    assert done.wait(5)
    assert started == list(range(51))


def test_a_spawn_on_a_closed_loop_raises(io: IoLoop) -> None:
    io.close()
    coro = echo(1)
    with pytest.raises(RuntimeError):
        io.spawn(coro, lambda _task: None)
    coro.close()
