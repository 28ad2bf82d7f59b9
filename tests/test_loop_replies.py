"""Replies for asyncio callers reach their loop in batches, and none is lost or misplaced."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from runtime._board.loop_replies import LoopReplies

pytestmark = pytest.mark.timeout(10)


class _CountingLoop(asyncio.SelectorEventLoop):
    """A plain selector loop that counts the wake-ups other threads ask of it."""

    wakeups = 0

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> Any:
        self.wakeups += 1
        return super().call_soon_threadsafe(callback, *args, context=context)


def _run(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_replies_set_from_another_thread_while_the_loop_is_busy_arrive_with_one_wakeup():
    loop = _CountingLoop()
    replies = LoopReplies(loop)

    async def main() -> list[Any]:
        slots = [replies.reply() for _ in range(50)]
        sent = threading.Event()

        def router() -> None:
            for i, slot in enumerate(slots):
                if i % 7 == 0:
                    slot.set_exception(ValueError(f"task {i} failed"))
                else:
                    slot.set_result(i)
            sent.set()

        threading.Thread(target=router).start()
        sent.wait(5)  # the loop is blocked here: every reply queues for one wake-up
        return await asyncio.gather(*(s.future for s in slots), return_exceptions=True)

    outcomes = _run(loop, main())
    for i, outcome in enumerate(outcomes):
        if i % 7 == 0:
            assert isinstance(outcome, ValueError)
            assert str(outcome) == f"task {i} failed"
        else:
            assert outcome == i
    assert loop.wakeups == 1


def test_a_reply_for_a_caller_that_gave_up_is_dropped_and_the_others_still_arrive():
    loop = asyncio.new_event_loop()
    replies = LoopReplies(loop)

    async def main() -> Any:
        gone, kept = replies.reply(), replies.reply()
        gone.future.cancel()
        done = threading.Event()

        def router() -> None:
            gone.set_result("late")
            kept.set_result("on time")
            done.set()

        threading.Thread(target=router).start()
        done.wait(5)
        return await kept.future, gone.future.cancelled()

    assert _run(loop, main()) == ("on time", True)


def test_replies_keep_flowing_after_each_drain():
    loop = asyncio.new_event_loop()
    replies = LoopReplies(loop)

    async def main() -> list[int]:
        got = []
        for round_ in range(20):
            slot = replies.reply()
            threading.Thread(target=slot.set_result, args=(round_,)).start()
            got.append(await asyncio.wait_for(slot.future, 5))
        return got

    assert _run(loop, main()) == list(range(20))


def test_a_reply_after_the_loop_closed_raises_nothing_in_the_router():
    loop = asyncio.new_event_loop()
    replies = LoopReplies(loop)
    slot = loop.run_until_complete(_reply_on(replies))
    loop.close()
    slot.set_result("nobody waits")  # must not raise in the router's thread


async def _reply_on(replies: LoopReplies) -> Any:
    return replies.reply()


class _LostError(Exception):
    pass


def test_a_reply_that_never_comes_fails_as_lost_after_its_guard():
    loop = asyncio.new_event_loop()
    replies = LoopReplies(loop, sweep_s=0.01)

    async def main() -> tuple[BaseException | None, float]:
        slot = replies.reply()
        start = loop.time()
        replies.guard(slot, 0.05, lambda: _LostError("no reply came back in time"))
        try:
            await asyncio.wait_for(slot.future, 5)
        except _LostError as lost:
            return lost, loop.time() - start
        return None, loop.time() - start

    lost, waited = _run(loop, main())
    assert isinstance(lost, _LostError)
    assert str(lost) == "no reply came back in time"
    assert 0.05 <= waited < 2.0


def test_replies_that_come_or_are_given_up_are_never_failed_and_their_guards_go():
    loop = asyncio.new_event_loop()
    replies = LoopReplies(loop, sweep_s=0.01)
    made: list[str] = []

    def lost() -> _LostError:
        made.append("lost")
        return _LostError("lost")

    async def main() -> Any:
        came, gone, late = replies.reply(), replies.reply(), replies.reply()
        for slot in (came, gone, late):
            replies.guard(slot, 0.05, lost)
        assert replies.guarded == 3
        threading.Thread(target=came.set_result, args=("answer",)).start()
        answer = await asyncio.wait_for(came.future, 5)
        gone.future.cancel()  # its caller gave up
        with pytest.raises(_LostError):
            await asyncio.wait_for(late.future, 5)
        assert replies.guarded == 0  # the sweep that failed it forgot the given-up one
        return answer

    assert _run(loop, main()) == "answer"
    assert made == ["lost"]  # only the reply that never came


def test_a_guard_whose_error_cannot_be_made_fails_the_reply_with_why():
    loop = asyncio.new_event_loop()
    replies = LoopReplies(loop, sweep_s=0.01)

    def lost() -> _LostError:
        raise RuntimeError("the board is closed")

    async def main() -> None:
        slot = replies.reply()
        replies.guard(slot, 0.0, lost)
        await asyncio.wait_for(slot.future, 5)

    with pytest.raises(RuntimeError, match="the board is closed"):
        _run(loop, main())
