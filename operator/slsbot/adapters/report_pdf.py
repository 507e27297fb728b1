"""The daily account report as a PDF, drawn with matplotlib: for each account, in order, four pages:

1. the title and the headline figures (``domain.daily_report.summary_lines``);
2. the account's equity over the day, and each Strategy's;
3. a table of its Strategies;
4. the incidents opened and resolved in the day, and the risk decisions by action and rule.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot: nothing global, safe on a scheduler's thread). Text is
embedded as TrueType (``pdf.fonttype`` 42), so a PDF reader can extract and search it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from slsbot.domain.daily_report import AccountDay, decision_lines, money, percent, summary_lines, title

PAGE = (8.27, 11.69)  # A4 portrait, inches
LANDSCAPE = (11.69, 8.27)
MAX_TABLE_ROWS = 40  # strategies or incidents on one page; the rest are counted


def write_report_pdf(reports: Sequence[AccountDay], path: Path) -> int:
    """Write every account's pages to ``path`` (replaced); returns the number of pages."""
    pages = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"pdf.fonttype": 42, "font.size": 10}), PdfPages(path) as pdf:
        info = pdf.infodict()
        info["Title"] = "slsbot daily report"
        info["Creator"] = "slsbot"
        for report in reports:
            for figure in (title_page(report), equity_page(report), strategies_page(report), events_page(report)):
                pdf.savefig(figure)
                pages += 1
    return pages


def title_page(report: AccountDay) -> Figure:
    figure = Figure(figsize=PAGE)
    figure.text(0.08, 0.92, title(report), fontsize=16, weight="bold")
    figure.text(0.08, 0.89, "UTC day, on the runtimes' clock (candle times)", fontsize=9, color="0.4")
    y = 0.84
    for label, value in summary_lines(report):
        figure.text(0.08, y, f"{label}:", weight="bold")
        figure.text(0.38, y, value)
        y -= 0.035
    return figure


def equity_page(report: AccountDay) -> Figure:
    figure = Figure(figsize=LANDSCAPE)
    axes = figure.add_subplot(2, 1, 1)
    axes.set_title(f"{report.namespace}/{report.account}: account equity, {report.day.isoformat()}")
    if report.curve:
        axes.plot(_times(report.curve), [e for _, e in report.curve], color="tab:blue", label="account")
        axes.axhline(report.equity_start, color="0.6", linestyle="--", linewidth=0.8, label="start of day")
        axes.legend(loc="best")
    else:
        axes.text(0.5, 0.5, "no equity recorded in the day", ha="center", va="center", transform=axes.transAxes)
    axes.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=UTC))
    axes.set_ylabel("equity")
    strategies = figure.add_subplot(2, 1, 2)
    strategies.set_title("equity per strategy")
    for strategy in report.strategies:
        if strategy.curve:
            marker = "o" if len(strategy.curve) == 1 else None  # one point draws no line
            strategies.plot(_times(strategy.curve), [e for _, e in strategy.curve], marker=marker, label=strategy.name)
    if any(s.curve for s in report.strategies):
        strategies.legend(loc="best", fontsize=8)
    strategies.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=UTC))
    strategies.set_xlabel("time (UTC)")
    figure.tight_layout()
    return figure


def strategies_page(report: AccountDay) -> Figure:
    figure = Figure(figsize=LANDSCAPE)
    figure.text(0.05, 0.94, f"Strategies of {report.namespace}/{report.account}", fontsize=14, weight="bold")
    columns = ["strategy", "PnL", "realised", "unrealised", "fees", "trades", "win rate", "max drawdown"]
    rows = [
        [
            s.name,
            money(s.pnl),
            money(s.realised_pnl),
            money(s.unrealised_change),
            f"{s.fees:,.2f}",
            str(s.closed_trades),
            percent(s.win_rate_pct),
            percent(s.max_drawdown_pct),
        ]
        for s in report.strategies[:MAX_TABLE_ROWS]
    ]
    if rows:
        _table(figure, columns, rows, top=0.9)
    else:
        figure.text(0.05, 0.85, "no strategies")
    if len(report.strategies) > MAX_TABLE_ROWS:
        figure.text(0.05, 0.03, f"... and {len(report.strategies) - MAX_TABLE_ROWS} more strategies")
    return figure


def events_page(report: AccountDay) -> Figure:
    figure = Figure(figsize=PAGE)
    figure.text(0.08, 0.94, "Incidents", fontsize=14, weight="bold")
    y = 0.91
    for heading, lines in (("opened", report.incidents_opened), ("resolved", report.incidents_resolved)):
        figure.text(0.08, y, f"{heading}: {len(lines)}", weight="bold")
        y -= 0.025
        for line in lines[: MAX_TABLE_ROWS // 2]:
            when = line.opened_at if heading == "opened" else line.resolved_at
            stamp = when.astimezone(UTC).strftime("%H:%M") if when else ""
            figure.text(0.1, y, f"{stamp} {line.id} severity {line.severity} {line.rule} ({line.state})", fontsize=9)
            y -= 0.022
        if len(lines) > MAX_TABLE_ROWS // 2:
            figure.text(0.1, y, f"... and {len(lines) - MAX_TABLE_ROWS // 2} more", fontsize=9)
            y -= 0.022
        y -= 0.01
    y -= 0.02
    figure.text(0.08, y, "Risk decisions", fontsize=14, weight="bold")
    y -= 0.03
    figure.text(0.08, y, f"{report.refusals} refusals, {report.cuts} cuts", weight="bold")
    y -= 0.025
    for line in decision_lines(report)[:MAX_TABLE_ROWS]:
        figure.text(0.1, y, line, fontsize=9)
        y -= 0.022
    return figure


def _table(figure: Figure, columns: list[str], rows: list[list[str]], *, top: float) -> None:
    height = min(0.04 * (len(rows) + 1), top - 0.05)
    axes = figure.add_axes((0.05, top - height, 0.9, height))
    axes.axis("off")
    table = axes.table(cellText=rows, colLabels=columns, loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.2)


def _times(curve: Sequence[tuple[int, float]]) -> list[datetime]:
    return [datetime.fromtimestamp(ts / 1000, UTC) for ts, _ in curve]
