from __future__ import annotations

import pytest

from runtime._policy.held_replies import HeldReplies

pytestmark = pytest.mark.timeout(5)


def test_nothing_held_is_never_due():
    """An empty hold waits for nothing, however much time passes."""
    held: HeldReplies[str] = HeldReplies(max_held=3, max_wait_s=0.005)
    assert not held.due(0.0)
    assert not held.due(1e9)
    assert held.take() == []


def test_replies_are_due_once_the_first_has_waited_long_enough():
    """The wait counts from the first reply held, not the latest."""
    held: HeldReplies[str] = HeldReplies(max_held=10, max_wait_s=0.25)
    assert not held.hold("a", 100.0)
    assert not held.hold("b", 100.125)
    assert not held.due(100.24)
    assert held.due(100.25)
    assert held.take() == ["a", "b"]
    assert not held.due(100.5)


def test_a_new_wait_starts_with_the_first_reply_after_a_take():
    """Replies held after a take wait from their own time, not the earlier first's."""
    held: HeldReplies[str] = HeldReplies(max_held=10, max_wait_s=0.25)
    held.hold("a", 100.0)
    held.take()
    held.hold("b", 200.0)
    assert not held.due(200.24)
    assert held.due(200.25)


def test_the_reply_that_fills_the_hold_makes_them_due_at_once():
    """``hold`` says when the hold is full; the replies come out in the order held."""
    held: HeldReplies[int] = HeldReplies(max_held=3, max_wait_s=60.0)
    assert [held.hold(i, 0.0) for i in range(3)] == [False, False, True]
    assert len(held) == 3
    assert held.take() == [0, 1, 2]
    assert len(held) == 0
