"""When an ask is sent to a provider whole instead of streamed: pure policy, no threads."""

from __future__ import annotations

import pytest

from runtime._policy.answer_mode import MARGIN, WINDOW, AnswerModes

pytestmark = pytest.mark.timeout(5)


def _fast(modes: AnswerModes, key: str = "gpt", latency_s: float = 0.01, n: int = WINDOW) -> None:
    for _ in range(n):
        modes.answered(key, latency_s)


def test_a_provider_streams_until_a_full_window_of_answers_was_fast():
    modes = AnswerModes()
    assert modes.slowest_if_fast("gpt", 4.0) is None
    _fast(modes, n=WINDOW - 1)
    assert modes.slowest_if_fast("gpt", 4.0) is None
    modes.answered("gpt", 0.02)
    assert modes.slowest_if_fast("gpt", 4.0) == pytest.approx(0.02)


def test_one_slow_answer_in_the_window_keeps_streams():
    modes = AnswerModes()
    _fast(modes, n=WINDOW - 1)
    modes.answered("gpt", 4.0 / MARGIN)  # exactly a MARGIN-th of the bound is not under it
    assert modes.slowest_if_fast("gpt", 4.0) is None
    _fast(modes, n=WINDOW - 1)
    assert modes.slowest_if_fast("gpt", 4.0) is None  # still in the window
    modes.answered("gpt", 0.01)  # pushed out
    assert modes.slowest_if_fast("gpt", 4.0) == pytest.approx(0.01)


def test_the_bound_decides_a_tighter_one_streams():
    modes = AnswerModes()
    _fast(modes, latency_s=0.3)
    assert modes.slowest_if_fast("gpt", 4.0) == pytest.approx(0.3)
    assert modes.slowest_if_fast("gpt", 1.0) is None  # a role that hedges after 1 s


def test_a_timeout_sends_the_provider_back_to_streams_until_it_is_fast_again():
    modes = AnswerModes()
    _fast(modes)
    modes.timed_out("gpt")
    assert modes.slowest_if_fast("gpt", 4.0) is None
    _fast(modes, n=WINDOW - 1)
    assert modes.slowest_if_fast("gpt", 4.0) is None
    _fast(modes, n=1)
    assert modes.slowest_if_fast("gpt", 4.0) is not None


def test_providers_are_apart_and_forgotten_after_a_reload():
    modes = AnswerModes()
    _fast(modes, "gpt")
    _fast(modes, "claude")
    modes.timed_out("claude")
    assert modes.slowest_if_fast("gpt", 4.0) is not None
    assert modes.slowest_if_fast("claude", 4.0) is None
    modes.forget({"claude"})
    assert modes.slowest_if_fast("gpt", 4.0) is None
