from __future__ import annotations

import math

import pytest

from runtime._policy.wait_queue import WaitQueue

pytestmark = pytest.mark.timeout(5)


def queue_of(*entries: tuple[str, int, float]) -> WaitQueue[str]:
    queue: WaitQueue[str] = WaitQueue()
    for item, tokens, deadline in entries:
        queue.push(item, tokens, deadline)
    return queue


def test_items_leave_in_arrival_order_and_the_token_total_follows():
    """First in, first out; `tokens` is always the sum of the waiting items' tokens."""
    queue = queue_of(("a", 100, 10.0), ("b", 50, 5.0), ("c", 7, 20.0))
    assert (len(queue), queue.tokens) == (3, 157)
    assert queue.first().item == "a"
    assert [queue.pop().item, queue.pop().item] == ["a", "b"]
    assert (len(queue), queue.tokens) == (1, 7)


def test_expire_removes_only_items_past_their_deadline_in_order():
    """Items whose deadline is now or earlier leave; the others keep their order and tokens."""
    queue = queue_of(("a", 1, 10.0), ("b", 2, 5.0), ("c", 4, 20.0), ("d", 8, 5.0))
    assert queue.next_deadline() == 5.0
    assert queue.expire(4.9) == []
    assert queue.expire(5.0) == ["b", "d"]
    assert [e.item for e in queue] == ["a", "c"]
    assert (queue.tokens, queue.next_deadline()) == (5, 10.0)


def test_next_deadline_may_run_early_and_expire_sets_it_right():
    """Once the earliest item has left, the next deadline is early until `expire` looks."""
    queue = queue_of(("a", 1, 5.0), ("b", 1, 30.0))
    assert queue.pop().item == "a"
    assert queue.next_deadline() <= 30.0
    assert queue.expire(6.0) == []
    assert queue.next_deadline() == 30.0


def test_remove_and_clear():
    """A matching item leaves with its tokens; clear empties the queue, in order."""
    queue = queue_of(("a", 1, 5.0), ("b", 2, 6.0), ("c", 4, 7.0))
    assert queue.remove(lambda item: item == "b") == "b"
    assert queue.remove(lambda item: item == "zzz") is None
    assert queue.tokens == 5
    assert queue.clear() == ["a", "c"]
    assert (len(queue), queue.tokens, queue.next_deadline()) == (0, 0, math.inf)


def test_popping_the_last_item_resets_the_next_deadline():
    """An empty queue has no deadline to wake for."""
    queue = queue_of(("a", 1, 5.0))
    queue.pop()
    assert queue.next_deadline() == math.inf
    with pytest.raises(IndexError):
        queue.first()
