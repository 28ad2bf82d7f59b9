from __future__ import annotations

import pytest

from runtime._metrics.timespec import moment, span_s, window

pytestmark = pytest.mark.timeout(5)


def test_spans_read_in_their_units():
    """Spans take s, m, h, d and w."""
    assert [span_s(t) for t in ("90s", "30m", "24h", "7d", "2w", "1.5h")] == [
        90,
        1800,
        86400,
        604800,
        1209600,
        5400,
    ]


def test_a_bad_span_says_how_to_write_one():
    """An unreadable span names the accepted form."""
    with pytest.raises(ValueError, match="like 30m, 24h, 7d or 2w"):
        span_s("yesterday")


def test_dates_are_utc_unless_they_say_otherwise():
    """A naive date or date-time is taken as UTC."""
    assert moment("1970-01-02") == 86400
    assert moment("1970-01-01T01:00") == 3600
    assert moment("1970-01-01T02:00+01:00") == 3600


def test_windows_come_from_since_or_from_and_to():
    """--since counts back from now or --to; --from alone runs to now; default is a day."""
    now = 1_000_000.0
    assert window(now, since="1h") == (now - 3600, now)
    assert window(now) == (now - 86400, now)
    assert window(now, start="1970-01-12") == (950400.0, now)
    assert window(now, start="1970-01-02", end="1970-01-03") == (86400.0, 172800.0)
    with pytest.raises(ValueError, match="ends before it starts"):
        window(now, start="1970-01-03", end="1970-01-02")
