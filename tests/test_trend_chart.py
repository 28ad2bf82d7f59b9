from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runtime._errors import CallboardError, ChartUnavailableError
from runtime._metrics.report import PERIOD_S, Every, GroupAccumulator, GroupStats, Trend
from runtime._metrics.trend_chart import (
    BLOCKS,
    NO_CALLS,
    _merge,
    render_trend_png,
    render_trend_text,
)

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def stats(
    calls: int,
    ok: int | None = None,
    *,
    p95: float | None = 500.0,
    ttft: float | None = None,
    cost: float | None = None,
    unpriced: int = 0,
) -> GroupStats:
    """One period of one group, built by hand: ``ok`` successes (all by default)."""
    ok = calls if ok is None else ok
    return GroupStats(
        key={"provider": "claude", "role": "coder"},
        calls=calls,
        successes=ok,
        failures={"server": calls - ok} if calls > ok else {},
        fallback_calls=0,
        input_tokens=0,
        output_tokens=0,
        cached_tokens=0,
        cost_usd=cost,
        unpriced_calls=unpriced,
        latency_ms={} if p95 is None else {"p50": p95 / 2, "p95": p95},
        ttft_ms={} if ttft is None else {"p50": ttft / 2, "p95": ttft},
    )


def trend(series: dict[str, list[GroupStats | None]], every: Every = "hour") -> Trend:
    """A trend starting 2026-11-01 00:00 UTC, one period per point of the series."""
    count = len(next(iter(series.values()))) if series else 24
    period = PERIOD_S[every]
    starts = tuple(T0 + i * period for i in range(count))
    points = {label: tuple(values) for label, values in series.items()}
    return Trend(every, T0, T0 + count * period, "provider,role", {}, starts, points)


def rows(text: str, label: str) -> dict[str, str]:
    """Return the sparklines of ``label``'s block by row name."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(f"{label}: "))
    block = lines[first + 1 : first + 4]
    return {line.split()[0]: line.split()[1] for line in block}


def accumulated(label: str, calls: int, failed: int, latency_ms: float, price: float | None):
    """One period of ``label`` folded through a `GroupAccumulator`, as the store does."""
    provider, role = label.split("/")
    acc = GroupAccumulator()
    counts = {"fallback_calls": 0, "input_tokens": 0, "output_tokens": 0, "cached_tokens": 0}
    ok = calls - failed
    priced = ok if price is not None else 0
    acc.add_counts(
        outcome="ok", calls=ok, cost_usd=(price or 0.0) * ok, priced_calls=priced, **counts
    )
    acc.add_counts(outcome="server", calls=failed, cost_usd=0.0, priced_calls=0, **counts)
    for i in range(ok):
        acc.latency.add(latency_ms * (0.6 + 0.8 * i / calls))
    return acc.stats({"provider": provider, "role": role})


def realistic_trend() -> Trend:
    """Three series over 48 hours with a daily rhythm; gpt/coder is down 20:00-24:00 on day 1."""
    shapes = {
        "claude/coder": (60, 900.0, 0.004),
        "gpt/coder": (40, 1400.0, 0.002),
        "gemini/reviewer": (15, 2500.0, None),
    }
    series: dict[str, list[GroupStats | None]] = {}
    for label, (busiest, latency, price) in shapes.items():
        series[label] = []
        for hour in range(48):
            calls = round(busiest * (0.55 + 0.45 * math.sin((hour % 24 - 8) / 12 * math.pi)))
            down = label == "gpt/coder" and 20 <= hour < 24
            idle = label == "gemini/reviewer" and hour % 24 < 6
            slow = latency * (1 + (hour % 7) / 10)
            failed = calls if down else calls // 25
            series[label].append(None if idle else accumulated(label, calls, failed, slow, price))
    return trend(series)


def test_one_block_per_series_in_order():
    """Each series gets its own block, titled with its label, total calls and success rate."""
    text = render_trend_text(
        trend({"claude/coder": [stats(3), stats(1)], "gpt/coder": [None, stats(4, 2)]})
    )
    titles = [line for line in text.splitlines() if line.endswith(("cost unknown",))]
    assert titles == [
        "claude/coder: 4 calls, 100.0% ok, cost unknown",
        "gpt/coder: 4 calls, 50.0% ok, cost unknown",
    ]
    assert rows(text, "gpt/coder").keys() == {"calls", "ok", "p95"}


def test_header_gives_window_period_and_count():
    """The header names the UTC window to the minute, the period and how many periods."""
    text = render_trend_text(trend({"claude/coder": [stats(1)] * 48}))
    head, scale = text.splitlines()[:2]
    assert head == "callboard trend 2026-11-01 00:00 to 2026-11-03 00:00 UTC"
    assert scale == "per hour: 48 periods, one per column; by provider/role"


def test_calls_sparkline_follows_the_data():
    """Calls are scaled per series: the busiest period shows a full block, quiet ones low."""
    text = render_trend_text(
        trend(
            {"claude/coder": [stats(1), stats(4), stats(8), stats(2)], "gpt/coder": [stats(1)] * 4}
        )
    )
    assert rows(text, "claude/coder")["calls"] == "▁▄█▂"
    assert rows(text, "gpt/coder")["calls"] == "████"
    assert "peak 8/hour" in text


def test_periods_without_calls_are_blank_in_every_row():
    """A period where the series made no call shows the no-call mark in all three sparklines."""
    text = render_trend_text(trend({"claude/coder": [stats(5), None, stats(5)]}))
    sparks = rows(text, "claude/coder")
    assert [spark[1] for spark in sparks.values()] == [NO_CALLS] * 3
    assert all(spark[0] in BLOCKS and spark[2] in BLOCKS for spark in sparks.values())


def test_success_rate_uses_a_fixed_scale_and_prints_min_and_overall():
    """0% success is the lowest block, 100% the highest, 50% the middle; min and overall shown."""
    text = render_trend_text(
        trend({"claude/coder": [stats(10, 10), stats(10, 0, p95=None), stats(10, 5)]})
    )
    assert rows(text, "claude/coder")["ok"] == "█▁▅"
    assert "min 0.0%" in text
    assert "claude/coder: 30 calls, 50.0% ok" in text


def test_perfect_success_is_full_everywhere():
    """A series that never failed shows full blocks whatever its volume."""
    text = render_trend_text(trend({"claude/coder": [stats(1), stats(1000)]}))
    assert rows(text, "claude/coder")["ok"] == "██"
    assert "min 100.0%" in text


def test_p95_sparkline_and_range_in_seconds():
    """p95 is scaled from zero to the slowest period and its range printed in seconds."""
    text = render_trend_text(trend({"claude/coder": [stats(3, p95=800.0), stats(3, p95=4100.0)]}))
    assert rows(text, "claude/coder")["p95"] == "▂█"
    line = next(line for line in text.splitlines() if line.lstrip().startswith("p95"))
    assert line.endswith("0.8 s … 4.1 s")


def test_p95_range_in_milliseconds_and_periods_without_answers():
    """Sub-second ranges print in ms; a period whose calls all failed has no p95 mark."""
    text = render_trend_text(
        trend({"claude/coder": [stats(3, p95=120.0), stats(3, 0, p95=None), stats(3, p95=480.0)]})
    )
    assert rows(text, "claude/coder")["p95"] == f"▂{NO_CALLS}█"
    assert "120 ms … 480 ms" in text


def test_streamed_series_get_a_time_to_first_token_sparkline():
    """A series with streamed answers gets a fourth row, p95 time to first token; others not."""
    streamed = [stats(3, p95=900.0, ttft=100.0), stats(3, 0, p95=None), stats(3, ttft=400.0)]
    text = render_trend_text(trend({"claude/coder": streamed, "gpt/coder": [stats(3)] * 3}))
    lines = text.splitlines()
    ttft_lines = [line for line in lines if line.lstrip().startswith("ttft")]
    assert len(ttft_lines) == 1
    assert ttft_lines[0].split()[1] == f"▂{NO_CALLS}█"
    assert ttft_lines[0].endswith("p95 100 ms … 400 ms")
    gpt = lines.index(next(line for line in lines if line.startswith("gpt/coder: ")))
    assert lines.index(ttft_lines[0]) < gpt


def test_merging_keeps_the_highest_time_to_first_token():
    """Merged periods draw the highest of their p95 times to first token."""
    points = [stats(1, ttft=50.0), stats(1, ttft=300.0), stats(1), None]
    first, second = _merge(points, 2)
    assert first is not None
    assert first.ttft_p95_ms == 300.0
    assert second is not None
    assert second.ttft_p95_ms is None


def test_cost_is_summed_and_unpriced_calls_counted():
    """Known costs add up; calls without a price are counted, not taken as free."""
    series = [stats(2, cost=1.25), stats(2, cost=2.5, unpriced=1), stats(1, cost=None, unpriced=1)]
    text = render_trend_text(trend({"claude/coder": series}))
    assert "claude/coder: 5 calls, 100.0% ok, cost $3.75 +2 unpriced calls" in text


def test_small_costs_keep_their_digits():
    """A total below a dollar keeps four decimals rather than rounding to $0.00."""
    text = render_trend_text(trend({"claude/coder": [stats(2, cost=0.0042)]}))
    assert "cost $0.0042" in text


def test_unknown_cost_when_no_call_had_a_price():
    """A series none of whose calls had a price says its cost is unknown."""
    text = render_trend_text(trend({"claude/coder": [stats(2), None, stats(3)]}))
    assert "claude/coder: 5 calls, 100.0% ok, cost unknown" in text


def test_time_axis_marks_first_and_last_period_under_their_columns():
    """The axis line puts └ under the first column and ┘ under the last, with their starts."""
    text = render_trend_text(trend({"claude/coder": [stats(1)] * 48}))
    lines = text.splitlines()
    calls_row = next(line for line in lines if line.lstrip().startswith("calls"))
    axis = next(line for line in lines if "└" in line)
    first_column = calls_row.index(BLOCKS[-1])
    assert axis.index("└") == first_column
    assert axis.index("┘") == first_column + 47
    assert "└ 2026-11-01 00:00" in axis
    assert "2026-11-02 23:00 ┘" in axis


def test_daily_trend_dates_the_axis_by_day():
    """A daily trend says so and labels its axis with dates."""
    text = render_trend_text(trend({"claude/coder": [stats(1)] * 3}, every="day"))
    assert text.splitlines()[1].startswith("per day: 3 periods")
    assert "└ 2026-11-01 … 2026-11-03" in text


@pytest.mark.parametrize("width", [30, 40, 60, 80, 120])
def test_no_line_is_longer_than_the_width(width):
    """Every line fits the width, whatever the number of periods or the figures' length."""
    series = {"claude/coder": [stats(i % 9 + 1, p95=100.0 * (i % 50 + 1)) for i in range(500)]}
    series["a-very-long-provider-name/and-an-even-longer-role-name"] = [stats(1)] * 500
    text = render_trend_text(trend(series), width=width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert len(text.splitlines()) >= 2 * 4


def test_long_titles_wrap_instead_of_losing_the_cost():
    """A title too long for the width goes on over an indented line, cost included."""
    label = "anthropic-claude-sonnet/code-reviewer"
    text = render_trend_text(trend({label: [stats(5, 4, cost=2.0, unpriced=1)] * 24}), width=60)
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(label))
    title = lines[first] + lines[first + 1].removeprefix(" ")
    assert title == f"{label}: 120 calls, 80.0% ok, cost $48.00 +24 unpriced calls"
    assert max(len(line) for line in lines) <= 60


def test_axis_drops_the_year_when_the_dates_do_not_fit():
    """In a narrow chart the axis keeps both period starts by leaving out their year."""
    text = render_trend_text(trend({"claude/coder": [stats(1)] * 48}), width=40)
    assert "└ 11-01 00:00 … 11-02 21:00" in text


def test_many_periods_are_merged_to_fit():
    """500 hourly periods in 80 columns merge adjacent hours, keeping the busiest and slowest."""
    points = [stats(1, p95=200.0) for _ in range(500)]
    points[250] = stats(100, p95=9000.0)
    text = render_trend_text(trend({"claude/coder": points}), width=80)
    sparks = rows(text, "claude/coder")
    per_column = int(text.splitlines()[1].split(", ")[1].split()[0])
    assert per_column > 1
    assert f"{per_column} per column (p95: the highest of them)" in text
    assert len(sparks["calls"]) == math.ceil(500 / per_column)
    assert sparks["calls"].count(BLOCKS[-1]) == 1
    assert sparks["p95"].count(BLOCKS[-1]) == 1
    assert "200 ms" not in text
    assert "0.2 s … 9.0 s" in text


def test_narrow_width_puts_figures_under_their_sparklines():
    """When figures beside the sparklines would leave too few columns, they go underneath."""
    points = [stats(1, p95=800.0), stats(2, p95=4100.0)]
    text = render_trend_text(trend({"claude/coder": points}), width=24)
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if line.lstrip().startswith("p95"))
    assert lines[index].split() == ["p95", "▂█"]
    assert lines[index + 1].strip() == "0.8 s … 4.1 s"


def test_merging_adds_calls_and_keeps_the_highest_p95():
    """Merged columns sum calls and successes, take the highest p95, and stay empty if all were."""
    points = [stats(3, p95=100.0), None, stats(2, 0, p95=None), stats(4, 1, p95=900.0), None, None]
    columns = _merge(points, 2)
    assert [(c.calls, c.successes, c.p95_ms) if c else None for c in columns] == [
        (3, 3, 100.0),
        (6, 1, 900.0),
        None,
    ]


def test_empty_trend_is_one_line():
    """A trend without calls says so, with its window, in one line."""
    text = render_trend_text(trend({}))
    assert text == "callboard trend: no calls from 2026-11-01 00:00 to 2026-11-02 00:00 UTC\n"
    assert render_trend_text(trend({"claude/coder": [None, None]})).count("\n") == 1


def test_width_below_one_is_refused():
    """A width below one column is a caller's mistake, not a chart."""
    with pytest.raises(ValueError, match="width"):
        render_trend_text(trend({"claude/coder": [stats(1)]}), width=0)


def image_size(path: Path) -> tuple[int, int]:
    """Return a PNG's (width, height) in pixels, read by matplotlib."""
    image = pytest.importorskip("matplotlib.image").imread(path)
    return image.shape[1], image.shape[0]


def test_png_is_written_with_parent_folders(tmp_path):
    """The chart is a real PNG at the path asked for, its folders created."""
    pytest.importorskip("matplotlib")
    path = tmp_path / "charts" / "nested" / "trend.png"
    assert render_trend_png(realistic_trend(), path) == path
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    width, height = image_size(path)
    assert width > 500
    assert height > 500


def test_png_adds_a_cost_panel_only_when_a_cost_is_known(tmp_path):
    """A fourth panel, for cost, makes the chart taller when any call had a price."""
    pytest.importorskip("matplotlib")
    unpriced = render_trend_png(trend({"claude/coder": [stats(3), None]}), tmp_path / "a.png")
    priced = render_trend_png(
        trend({"claude/coder": [stats(3, cost=0.1), None]}), tmp_path / "b.png"
    )
    assert image_size(priced)[1] > image_size(unpriced)[1]


def test_png_adds_a_time_to_first_token_panel_only_for_streamed_answers(tmp_path):
    """A panel for p95 time to first token makes the chart taller when any answer streamed."""
    pytest.importorskip("matplotlib")
    whole = render_trend_png(trend({"claude/coder": [stats(3), None]}), tmp_path / "a.png")
    streamed = render_trend_png(
        trend({"claude/coder": [stats(3, ttft=120.0), None]}), tmp_path / "b.png"
    )
    assert image_size(streamed)[1] > image_size(whole)[1]


def test_png_of_an_empty_trend_is_still_drawn(tmp_path):
    """A trend without calls still gives a readable PNG rather than an error."""
    pytest.importorskip("matplotlib")
    path = render_trend_png(trend({}), tmp_path / "empty.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_png_without_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    """Without matplotlib, the error is a CallboardError naming the charts extra."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ChartUnavailableError, match=r"pip install 'callboard\[charts\]'") as info:
        render_trend_png(trend({"claude/coder": [stats(1)]}), tmp_path / "trend.png")
    assert isinstance(info.value, CallboardError)
    assert not (tmp_path / "trend.png").exists()
