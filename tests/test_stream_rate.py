"""The floor rate of a stream's content, measured over a sliding window."""

import pytest

from runtime._policy.stream_rate import StreamRate

pytestmark = pytest.mark.timeout(5)


def test_a_stream_that_stops_breaks_the_floor_a_window_after_its_last_needed_piece():
    """With 5 chars/s over 10 s (50 chars), the deadline is when the last 50 chars age out."""
    rate = StreamRate(5.0, 10.0, first_at=0.0)
    rate.add(30, 0.0)
    assert rate.deadline() == 10.0  # under the need since the start: one window after it
    rate.add(30, 1.0)
    assert rate.deadline() == 10.0  # 60 chars; dropping the first leaves 30 < 50
    rate.add(30, 2.0)
    assert rate.deadline() == 11.0  # the pieces at 1 s and 2 s hold 60 >= 50


def test_a_pause_between_sentences_does_not_break_a_steady_stream():
    """A 6 s pause after 8 s of 20 chars/s still leaves 50 chars in every 10 s window."""
    rate = StreamRate(5.0, 10.0, first_at=0.0)
    now = 0.0
    while now < 8.0:
        rate.add(10, now)
        now += 0.5
    pause_ends = now + 6.0
    assert rate.deadline() > pause_ends
    rate.add(10, pause_ends)
    assert rate.deadline() > pause_ends + 1.0


def test_a_trickle_under_the_floor_breaks_it_one_window_after_the_first_content():
    """One char a second against a floor of 5 a second: broken at the end of the first window."""
    rate = StreamRate(5.0, 10.0, first_at=0.0)
    for second in range(10):
        rate.add(1, float(second))
        assert rate.deadline() == 10.0
    assert rate.recent_chars(10.0) == 9  # the pieces at 1..9 s are inside (0, 10]


def test_memory_stays_small_for_a_fast_stream():
    """Only the pieces needed to reach the floor are kept, however long the stream."""
    rate = StreamRate(5.0, 10.0, first_at=0.0)
    for i in range(10_000):
        rate.add(100, i * 0.01)
    assert len(rate._recent) == 1
