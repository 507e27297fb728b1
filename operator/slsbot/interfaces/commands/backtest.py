"""``slsbot backtest``: a RuntimeConfig over recorded candles, on the live loop's code path.

    slsbot backtest --config examples/backtest/sma-cross-btc.yaml --json
    slsbot backtest --config FILE --data data/market/binance-spot-1h-2024 --from 2025-01-01 --to 2025-07-01 --mode step
    slsbot backtest --config FILE --equity-csv equity.csv --plot equity.png

``--json`` prints ``{"trades": [...], "metrics": {...}, "fingerprint": "...", "run": {...}}``; without it a
short summary. Returns, drawdowns, the win rate and the exposure are in percent everywhere (JSON keys ending in
``_pct``). ``--equity-csv`` writes the equity curve (``ts`` in ISO 8601 UTC, ``equity``), ``--plot`` a PNG of it
with its drawdown. On a terminal, a run that takes more than a second shows a progress bar on stderr (never with
``--json``, never when stderr is not a terminal).

Exit codes: 0 done, 1 unusable market data or an output that cannot be written, 2 bad config or arguments
(including ``--mode fast`` on a config fast mode cannot reproduce; the message names why).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

HELP = "Backtest a RuntimeConfig over recorded candles"
#: A progress bar appears only once a run has taken this long.
PROGRESS_DELAY_S = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="RuntimeConfig YAML file")
    parser.add_argument("--data", metavar="PATH", help="folder of recorded candles (overrides marketData.dataDir)")
    parser.add_argument("--from", dest="start", metavar="DATE", help="first candle open time, UTC (2021-01-01)")
    parser.add_argument("--to", dest="end", metavar="DATE", help="candles opening before this, UTC (exclusive)")
    parser.add_argument(
        "--mode",
        choices=["step", "fast", "auto"],
        default="auto",
        help="step: the live loop; fast: vectorized, same trades, refuses what it cannot reproduce; auto: fast "
        "when it can, else step (default)",
    )
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument(
        "--equity-csv", type=Path, metavar="FILE", help="write the equity curve as CSV: ts (ISO 8601 UTC), equity"
    )
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the equity curve and its drawdown")


def parse_date(text: str, option: str) -> datetime:
    """``2021-01-01`` or an ISO date-time; without a zone it is UTC. ValueError naming the option."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a date; write it like 2021-01-01 or 2021-01-01T12:00") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_output(path: Path | None, option: str, *, suffix: str | None = None) -> None:
    """Refuse, before anything runs, an output the run could not write at the end. ValueError naming the option."""
    if path is None:
        return
    if suffix is not None and path.suffix.lower() != suffix:
        raise ValueError(f"{option}: {str(path)!r} must end in {suffix}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{option}: the folder {str(folder)!r} does not exist; create it or write elsewhere")


def run(args: argparse.Namespace) -> int:
    from slsbot_runtime.backtest.inputs import BacktestWindow
    from slsbot_runtime.backtest.runner import run_backtest
    from slsbot_runtime.config_loading import load_runtime_config
    from slsbot_runtime.domain.errors import ConfigError, SlsbotRuntimeError

    progress, close_progress = progress_bar(sys.stderr, enabled=not args.json)
    try:
        start = parse_date(args.start, "--from") if args.start else None
        end = parse_date(args.end, "--to") if args.end else None
        check_output(args.equity_csv, "--equity-csv")
        check_output(args.plot, "--plot", suffix=".png")
        config = load_runtime_config(args.config)
        result = run_backtest(
            config, data_dir=args.data, window=BacktestWindow(start, end), mode=args.mode, progress=progress
        )
    except (ValueError, ConfigError) as error:
        print(f"slsbot backtest: {error}", file=sys.stderr)
        return 2
    except SlsbotRuntimeError as error:
        print(f"slsbot backtest: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        close_progress()
    data = result.to_json()
    try:
        if args.equity_csv is not None:
            write_equity_csv(args.equity_csv, result.equity_ts, result.equity)
        if args.plot is not None:
            plot_equity(args.plot, result.equity_ts, result.equity, title=plot_title(data))
    except OSError as error:
        print(f"slsbot backtest: cannot write {error.filename} ({error.strerror})", file=sys.stderr)
        return 1
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(render_summary(data))
    return 0


def progress_bar(
    stream: IO[str], *, enabled: bool, delay: float = PROGRESS_DELAY_S
) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """``(progress, close)``: a tqdm bar on ``stream`` fed by the run's ``progress(done, total)``, shown only when
    ``enabled``, ``stream`` is a terminal and the run has lasted ``delay`` seconds; ``(None, no-op)`` otherwise."""
    if not enabled or not stream.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bars: list[tqdm] = []

    def progress(done: int, total: int) -> None:
        if not bars or done < bars[-1].n or total != bars[-1].total:  # the first report, or auto mode's fallback
            close()
            bars.append(
                tqdm(
                    total=total,
                    file=stream,
                    delay=delay,
                    unit=" candles",
                    unit_scale=True,
                    leave=False,
                    desc="backtest",
                )
            )
        bars[-1].update(done - bars[-1].n)

    def close() -> None:
        for bar in bars:
            bar.close()

    return progress, close


def write_equity_csv(path: Path, ts: Any, equity: Any) -> None:
    """One row per candle open time: ``ts`` in ISO 8601 UTC, ``equity`` in the quote currency (full precision)."""
    from slsbot_runtime.domain.timeframes import utc_iso

    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["ts", "equity"])
        writer.writerows((utc_iso(int(t)), repr(float(e))) for t, e in zip(ts, equity, strict=True))


def plot_title(data: dict[str, Any]) -> str:
    run, metrics = data["run"], data["metrics"]
    total = metrics.get("total_return_pct")
    shown = "n/a" if total is None else f"{total:+.2f} %"
    return f"{', '.join(run['symbols'])} {run['timeframe']} ({run['mode']} mode): total return {shown}"


def plot_equity(path: Path, ts: Any, equity: Any, *, title: str) -> None:
    """A PNG: the equity curve above, the drawdown from its running peak (in %) below. matplotlib is imported
    only here, and draws off screen (Agg): no display is needed."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    times = np.asarray(ts, dtype="datetime64[ms]")
    values = np.asarray(equity, dtype=np.float64)
    drawdown = 100.0 * (1.0 - values / np.maximum.accumulate(values)) if len(values) else values
    figure = Figure(figsize=(10, 6), layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot(times, values, linewidth=1.0, color="tab:blue")
    top.set_ylabel("equity (quote currency)")
    top.set_title(title)
    top.grid(alpha=0.3)
    bottom.fill_between(times, -drawdown, 0.0, color="tab:red", alpha=0.4, linewidth=0)
    bottom.set_ylabel("drawdown (%)")
    bottom.grid(alpha=0.3)
    figure.savefig(path, format="png", dpi=100)


#: How the summary shows each metric: its label and format (percentages say so).
METRIC_FORMATS: dict[str, tuple[str, str]] = {
    "total_return_pct": ("total return", "{:+.2f} %"),
    "cagr_pct": ("CAGR", "{:+.2f} %"),
    "sharpe": ("Sharpe", "{:.2f}"),
    "sortino": ("Sortino", "{:.2f}"),
    "calmar": ("Calmar", "{:.2f}"),
    "max_drawdown_pct": ("max drawdown", "{:.2f} %"),
    "profit_factor": ("profit factor", "{:.2f}"),
    "win_rate_pct": ("win rate", "{:.1f} %"),
    "expectancy": ("expectancy", "{:+,.2f} per trade"),
    "exposure_pct": ("exposure", "{:.1f} %"),
    "trades": ("trades", "{:,}"),
    "final_equity": ("final equity", "{:,.2f}"),
}


def render_summary(data: dict) -> str:
    """A few lines for a terminal; returns, drawdowns and rates in percent."""
    run, metrics = data["run"], data["metrics"]
    lines = [
        f"{', '.join(run['symbols'])} {run['timeframe']}, {run['first_candle']} -> {run['last_candle']}, "
        f"{run['candles']:,} candles in {run['elapsed_s']:.2f}s ({run['mode']} mode)",
    ]
    if run["fallback_reason"]:
        lines.append(f"  step mode because {run['fallback_reason']}")
    for name, value in metrics.items():
        label, form = METRIC_FORMATS.get(name, (name, "{:,.4f}" if isinstance(value, float) else "{:,}"))
        lines.append(f"  {label:<15} {'n/a' if value is None else form.format(value)}")
    lines.append(f"  {'fingerprint':<15} {data['fingerprint']}")
    return "\n".join(lines)
