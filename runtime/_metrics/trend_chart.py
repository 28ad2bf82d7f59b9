"""Trends as charts: a text chart for the terminal, and a PNG for people.

`render_trend_text` draws each series as sparklines (calls, success rate, p95 latency,
and p95 time to first token for a series with streamed answers) with their figures,
using the standard library alone. `render_trend_png` draws
the same as stacked panels with matplotlib, an optional dependency (the ``charts``
extra); without it, it raises `ChartUnavailableError`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from runtime._errors import ChartUnavailableError
from runtime._metrics.report import PERIOD_S, GroupStats, Trend

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BLOCKS = "▁▂▃▄▅▆▇█"
"""Sparkline characters, lowest to highest."""
NO_CALLS = "·"
"""What a sparkline shows where a series made no call (for p95: got no answer)."""
_ROWS = ("calls", "ok", "p95", "ttft")
_INDENT = "  "
_GAP = "  "
_PREFIX = len(_INDENT) + max(len(name) for name in _ROWS) + len(_GAP)
_MIN_COLUMNS = 12
"""With fewer sparkline columns than this beside the figures, the figures go underneath."""
_ONE_SECOND_MS = 1000.0

_Series = Mapping[str, Sequence[GroupStats | None]]


@dataclass(frozen=True, slots=True)
class _Column:
    """One sparkline column: one period, or several adjacent periods merged."""

    calls: int
    successes: int
    p95_ms: float | None
    ttft_p95_ms: float | None = None


def render_trend_text(trend: Trend, *, width: int = 80) -> str:
    """Return the trend as a terminal chart with no line longer than ``width``.

    A header gives the window (UTC), the period and the number of periods. Each series
    then gets a block: its label with total calls, overall success rate and cost, then
    sparklines, one character per column, `NO_CALLS` where it made no call:

    - calls, scaled to the series' busiest column, which shows ``█``;
    - success rate on a fixed 0-100% scale (``▁`` is 0%, ``█`` 100%), with the lowest;
    - p95 latency, scaled from zero to the series' highest column, with its range;
    - for a series with streamed answers, p95 time to first token (``ttft``), drawn
      the same way;

    and a time axis marking the start of the first and last column. The figures beside
    the sparklines are those of single periods. When there are more periods than
    columns fit in ``width``, adjacent periods are merged: calls and successes add up,
    and each p95 drawn is the highest of the merged periods' p95s (the p95 of the merged
    calls cannot be had from percentiles), so a slow hour stays visible. A trend
    without calls is one line.

    Raises:
        ValueError: ``width`` is below 1.
    """
    if width < 1:
        raise ValueError(f"width must be at least 1, not {width}")
    window = f"{_minute(trend.since)} to {_minute(trend.until)} UTC"
    if not any(g is not None and g.calls for points in trend.series.values() for g in points):
        return _clip(f"callboard trend: no calls from {window}", width) + "\n"
    notes = {label: _notes(points, trend.every) for label, points in trend.series.items()}
    note_width = max(len(note) for row_notes in notes.values() for note in row_notes)
    columns = width - _PREFIX - len(_GAP) - note_width
    beside = columns >= _MIN_COLUMNS
    per_column = math.ceil(len(trend.starts) / max(columns if beside else width - _PREFIX, 1))
    lines = _wrap(_header(trend, window, per_column), width)
    for label, points in trend.series.items():
        lines += ["", *_wrap([_title(label, points)], width)]
        lines += _sparkline_rows(_merge(points, per_column), notes[label], beside)
        lines.append(_axis(trend, per_column, width - _PREFIX))
    return "\n".join(_clip(line, width) for line in lines) + "\n"


def _header(trend: Trend, window: str, per_column: int) -> list[str]:
    every = trend.every
    if per_column > 1:
        scale = f"{per_column} per column (p95: the highest of them)"
    else:
        scale = "one per column"
    grouping = trend.by.replace(",", "/") + "".join(f", {k} {v}" for k, v in trend.filters.items())
    return [
        f"callboard trend {window}",
        f"per {every}: {len(trend.starts)} periods, {scale}; by {grouping}",
    ]


def _title(label: str, points: Sequence[GroupStats | None]) -> str:
    present = [g for g in points if g is not None]
    calls = sum(g.calls for g in present)
    successes = sum(g.successes for g in present)
    ok = f", {successes / calls:.1%} ok" if calls else ""
    return f"{label}: {calls:,} calls{ok}, {_cost(present)}"


def _cost(groups: Sequence[GroupStats]) -> str:
    known = [g.cost_usd for g in groups if g.cost_usd is not None]
    if not known:
        return "cost unknown"
    total = sum(known)
    text = f"cost ${total:,.2f}" if total >= 1 else f"cost ${total:.4f}"
    unpriced = sum(g.unpriced_calls for g in groups)
    return f"{text} +{unpriced:,} unpriced calls" if unpriced else text


def _notes(points: Sequence[GroupStats | None], every: str) -> tuple[str, ...]:
    """Return the figures beside each sparkline, per single period.

    There are three, and a fourth (time to first token) when the series has any.
    """
    present = [g for g in points if g is not None and g.calls]
    peak = max((g.calls for g in present), default=0)
    lowest = min((g.successes / g.calls for g in present), default=None)
    p95s = [g.latency_ms["p95"] for g in present if "p95" in g.latency_ms]
    notes: tuple[str, ...] = (
        f"peak {peak:,}/{every}",
        "-" if lowest is None else f"min {lowest:.1%}",
        _latency_range(min(p95s), max(p95s)) if p95s else "no answers",
    )
    ttfts = [g.ttft_ms["p95"] for g in present if "p95" in g.ttft_ms]
    if ttfts:
        notes += (f"p95 {_latency_range(min(ttfts), max(ttfts))}",)
    return notes


def _latency_range(low_ms: float, high_ms: float) -> str:
    if high_ms < _ONE_SECOND_MS:
        low, high = f"{low_ms:.0f} ms", f"{high_ms:.0f} ms"
    else:
        low, high = _seconds(low_ms), _seconds(high_ms)
    return high if low == high else f"{low} … {high}"


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 100 else f"{ms / 1000:.2f} s"  # noqa: PLR2004


def _merge(points: Sequence[GroupStats | None], per_column: int) -> list[_Column | None]:
    """Merge each run of ``per_column`` periods into one column, ``None`` if it had no call."""
    return [_merged(points[i : i + per_column]) for i in range(0, len(points), per_column)]


def _merged(points: Sequence[GroupStats | None]) -> _Column | None:
    present = [g for g in points if g is not None and g.calls]
    if not present:
        return None
    p95s = [g.latency_ms["p95"] for g in present if "p95" in g.latency_ms]
    ttfts = [g.ttft_ms["p95"] for g in present if "p95" in g.ttft_ms]
    return _Column(
        calls=sum(g.calls for g in present),
        successes=sum(g.successes for g in present),
        p95_ms=max(p95s, default=None),
        ttft_p95_ms=max(ttfts, default=None),
    )


def _sparkline_rows(
    columns: Sequence[_Column | None], notes: tuple[str, ...], beside: bool
) -> list[str]:
    present = [c for c in columns if c is not None]
    peak_calls = max((c.calls for c in present), default=0)
    sparks = [
        "".join(NO_CALLS if c is None else _scaled(c.calls, peak_calls) for c in columns),
        "".join(NO_CALLS if c is None else _rate_block(c.successes / c.calls) for c in columns),
        _latency_spark(columns, lambda c: c.p95_ms),
    ]
    if len(notes) > len(sparks):
        sparks.append(_latency_spark(columns, lambda c: c.ttft_p95_ms))
    lines = []
    for name, spark, note in zip(_ROWS, sparks, notes, strict=False):
        row = f"{_INDENT}{name:<{_PREFIX - len(_INDENT) - len(_GAP)}}{_GAP}{spark}"
        lines += [f"{row}{_GAP}{note}"] if beside else [row, " " * _PREFIX + note]
    return lines


def _latency_spark(
    columns: Sequence[_Column | None], value: Callable[[_Column], float | None]
) -> str:
    """Return a sparkline of one latency figure, scaled to its highest column."""
    values = [None if c is None else value(c) for c in columns]
    peak = max((v for v in values if v is not None), default=0.0)
    return "".join(NO_CALLS if v is None else _scaled(v, peak) for v in values)


def _scaled(value: float, peak: float) -> str:
    """Return the block for ``value`` out of ``peak``; any value above zero shows."""
    if peak <= 0 or value <= 0:
        return BLOCKS[0]
    return BLOCKS[min(math.ceil(value / peak * len(BLOCKS)) - 1, len(BLOCKS) - 1)]


def _rate_block(rate: float) -> str:
    """Return the block for a success rate on a fixed scale: 0% is ``▁``, 100% ``█``."""
    return BLOCKS[int(rate * (len(BLOCKS) - 1) + 0.5)]


def _axis(trend: Trend, per_column: int, room: int) -> str:
    """Return a line marking the start of the first column (``└``) and the last (``┘``).

    When the dates do not fit under the columns, they lose their year; failing that,
    they are written one after the other, and only the first column is marked.
    """
    column_starts = trend.starts[::per_column]
    count = len(column_starts)
    full = (_axis_time(column_starts[0], trend.every), _axis_time(column_starts[-1], trend.every))
    if count == 1:
        return " " * _PREFIX + f"└ {full[0]}"
    short = (full[0][5:], full[1][5:])
    for first, last in (full, short):
        gap = count - len(first) - len(last) - 4
        if gap >= 1:
            return " " * _PREFIX + f"└ {first}" + " " * gap + f"{last} ┘"
    first, last = full if len(full[0]) + len(full[1]) + 5 <= room else short
    return " " * _PREFIX + f"└ {first} … {last}"


def _axis_time(seconds: float, every: str) -> str:
    text = _minute(seconds)
    return text[:10] if every == "day" else text


def _minute(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def _wrap(paragraphs: Sequence[str], width: int) -> list[str]:
    """Wrap lines of prose to ``width``, continuations indented."""
    wrapper = textwrap.TextWrapper(width, subsequent_indent=_INDENT, break_on_hyphens=False)
    return [line for paragraph in paragraphs for line in wrapper.wrap(paragraph)]


def _clip(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


@dataclass(frozen=True, slots=True)
class _Panel:
    """One panel of the PNG: its y label and one line of values per series."""

    ylabel: str
    lines: dict[str, list[float]]


def render_trend_png(trend: Trend, path: Path) -> Path:
    """Draw the trend as a PNG at ``path``, creating its folders, and return ``path``.

    Stacked panels share the time axis (UTC): calls per period, success rate (%), p95
    latency (ms, or s when a period reaches a second), p95 time to first token when any
    answer was streamed (in the same unit) and, when any call had a known price, cost
    (USD) per period. Each series is one line, with the same colour in every
    panel, and a gap where it made no call (for p95: got no answer). Each point sits at
    its period's start. Drawn with matplotlib's Agg backend, leaving pyplot alone.

    Raises:
        ChartUnavailableError: matplotlib is not installed.
    """
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional dependency
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError as exc:
        raise ChartUnavailableError(
            "PNG charts need matplotlib: pip install 'callboard[charts]'"
        ) from exc
    panels = _panels(trend)
    with mpl.rc_context({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3}):
        figure = Figure(figsize=(11.0, 1.2 + 2.2 * len(panels)), layout="constrained")
        FigureCanvasAgg(figure)
        _draw(figure, trend, panels)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=100)
    return path


def _panels(trend: Trend) -> list[_Panel]:
    series, every = trend.series, trend.every
    p95s = [g.latency_ms.get("p95", 0.0) for pts in series.values() for g in pts if g is not None]
    unit, scale = ("s", 1000.0) if max(p95s, default=0.0) >= _ONE_SECOND_MS else ("ms", 1.0)
    panels = [
        _Panel(f"calls per {every}", _lines(series, lambda g: g.calls, empty=0.0)),
        _Panel("success rate (%)", _lines(series, lambda g: _percent(g.successes, g.calls))),
        _Panel(f"p95 latency ({unit})", _lines(series, lambda g: _scale(g.latency_ms, scale))),
    ]
    if any(g is not None and "p95" in g.ttft_ms for pts in series.values() for g in pts):
        ttft = _lines(series, lambda g: _scale(g.ttft_ms, scale))
        panels.append(_Panel(f"p95 time to first token ({unit})", ttft))
    if any(g is not None and g.cost_usd is not None for pts in series.values() for g in pts):
        panels.append(_Panel(f"cost per {every} (USD)", _lines(series, lambda g: g.cost_usd)))
    return panels


def _lines(
    series: _Series, value: Callable[[GroupStats], float | None], empty: float = math.nan
) -> dict[str, list[float]]:
    """Return each series' values, ``empty`` without calls and NaN (a gap) without a value."""

    def one(group: GroupStats | None) -> float:
        if group is None or not group.calls:
            return empty
        found = value(group)
        return math.nan if found is None else float(found)

    return {label: [one(g) for g in points] for label, points in series.items()}


def _percent(part: int, whole: int) -> float | None:
    return 100 * part / whole if whole else None


def _scale(figures: Mapping[str, float], divisor: float) -> float | None:
    p95 = figures.get("p95")
    return None if p95 is None else p95 / divisor


def _draw(figure: Figure, trend: Trend, panels: Sequence[_Panel]) -> None:
    times = [datetime.fromtimestamp(s, UTC) for s in trend.starts]
    axes = list(figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0])
    for ax, panel in zip(axes, panels, strict=True):
        for index, (label, values) in enumerate(panel.lines.items()):
            ax.plot(times, values, color=f"C{index % 10}", marker=".", markersize=4, label=label)
        ax.set_ylabel(panel.ylabel)
        ax.set_ylim(bottom=0)
    axes[1].set_ylim(0, 105)
    _format_time_axis(axes[-1], trend)
    by = trend.by.replace(",", "/")
    figure.suptitle(
        f"callboard trend {_minute(trend.since)} to {_minute(trend.until)} UTC, "
        f"per {trend.every}, by {by}"
    )
    if trend.series:
        figure.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper")
    else:
        axes[0].text(0.5, 0.5, "no calls in this window", ha="center", transform=axes[0].transAxes)


def _format_time_axis(axes: Axes, trend: Trend) -> None:
    from matplotlib import dates  # noqa: PLC0415 - optional dependency, present by now

    if trend.starts:
        span = (trend.starts[0], trend.starts[-1] + PERIOD_S[trend.every])
    else:
        span = (trend.since, trend.until)
    left, right = (datetime.fromtimestamp(s, UTC) for s in span)
    axes.set_xlim(left, right)  # type: ignore[arg-type]  # stubs say float; dates convert
    locator = dates.AutoDateLocator(tz=UTC, maxticks=12)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    offsets = ["", "%Y", "%Y", "%Y", "%Y", "%Y-%m-%d"]  # the title has the window already
    formatter = dates.ConciseDateFormatter(  # type: ignore[no-untyped-call]
        locator, tz=UTC, offset_formats=offsets
    )
    axes.xaxis.set_major_formatter(formatter)
    axes.set_xlabel("period start (UTC)")
