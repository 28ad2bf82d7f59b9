"""Reports as text tables for the terminal."""

from __future__ import annotations

from runtime._metrics.report import GroupStats, Report
from runtime._rows import iso


def render_report(report: Report) -> str:
    """Return the report as an aligned table, then its flags."""
    head = (
        f"callboard metrics {_when(report.since)} to {_when(report.until)} UTC, "
        f"by {report.by}" + _filters(report.filters)
    )
    if not report.groups:
        return f"{head}\nno calls in this window\n"
    header = [
        report.by.replace(",", "/"), "calls", "ok", "failures", "p50", "p95", "p99",
        "ttft p50", "tokens in/out/cached", "cost", "per call", "by fallback",
    ]  # fmt: skip
    rows = [header, *(_row(g) for g in report.groups)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [head, ""]
    for row in rows:
        cells = [
            cell.ljust(width) if i in (0, 3) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    if report.flags:
        lines += ["", "doing worse than another provider of the same role:"]
        lines += [f"  {flag}" for flag in report.flags]
    return "\n".join(lines) + "\n"


def _row(group: GroupStats) -> list[str]:
    failures = " ".join(f"{k}={v}" for k, v in group.failures.items()) or "-"
    return [
        group.label(),
        f"{group.calls:,}",
        _percent(group.success_rate),
        failures,
        _ms(group.latency_ms.get("p50")),
        _ms(group.latency_ms.get("p95")),
        _ms(group.latency_ms.get("p99")),
        _ms(group.ttft_ms.get("p50")),
        f"{_count(group.input_tokens)}/{_count(group.output_tokens)}/{_count(group.cached_tokens)}",
        _cost(group),
        f"${group.cost_per_call:.4f}" if group.cost_per_call is not None else "-",
        _percent(group.fallback_share),
    ]


def _cost(group: GroupStats) -> str:
    if group.cost_usd is None:
        return "unknown"
    text = f"${group.cost_usd:,.2f}" if group.cost_usd >= 1 else f"${group.cost_usd:.4f}"
    return f"{text} +{group.unpriced_calls} unpriced" if group.unpriced_calls else text


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"  # noqa: PLR2004


def _count(value: int) -> str:
    for limit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= limit:
            return f"{value / limit:.1f}{suffix}"
    return str(value)


def _when(seconds: float) -> str:
    return iso(seconds)[:16].replace("T", " ")


def _filters(filters: dict[str, str]) -> str:
    return "".join(f", {k} {v}" for k, v in filters.items())
