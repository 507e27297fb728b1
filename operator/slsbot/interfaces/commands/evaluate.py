"""``slsbot evaluate``: walk-forward out-of-sample evaluation of a RuntimeConfig on recorded candles.

    slsbot evaluate --config examples/evaluate/ensemble-ml-btc-eth.yaml --json
    slsbot evaluate --config FILE --from 2025-01-01 --to 2025-07-01 --folds 4 --plot evaluation.png

The ensemble, each member alone and buy-and-hold of the same symbols, all net of fees, per fold and overall;
every candidate's deflated Sharpe ratio and the probability of backtest overfitting of picking the best; the
lookahead check; and the record (data fingerprint, config, parameters, seeds, code version). ``--json``
prints it all; without it a summary. Running it again on the same data and code prints the same JSON, bit for
bit (nothing in it depends on the clock). ``--plot`` draws the equity curves and the drawdowns. On a terminal,
a long evaluation shows a progress bar on stderr (never with ``--json``, never when stderr is not a terminal).

A strategy that fails the lookahead check is not evaluated: the command says which decision changed, prints
only the check's report with ``--json``, and exits 2.

Exit codes: 0 done, 1 unusable market data or an output that cannot be written, 2 bad config or arguments
(the message names the field or option), or a failed lookahead check.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from slsbot.interfaces.commands.backtest import METRIC_FORMATS, check_output, parse_date

HELP = "Evaluate a RuntimeConfig out of sample, walk-forward, against buy-and-hold"
#: A progress bar appears only once a stage has taken this long.
PROGRESS_DELAY_S = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="RuntimeConfig YAML file")
    parser.add_argument("--data", metavar="PATH", help="folder of recorded candles (overrides marketData.dataDir)")
    parser.add_argument("--from", dest="start", metavar="DATE", help="start of the held-out period, UTC (2025-01-01)")
    parser.add_argument("--to", dest="end", metavar="DATE", help="end of the held-out period, UTC (exclusive)")
    parser.add_argument("--folds", type=int, default=6, metavar="N", help="walk-forward folds (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the lookahead check's random cuts (default 0)")
    parser.add_argument(
        "--lookahead-cuts", type=int, default=20, metavar="N", help="evenly spaced cuts per symbol (default 20)"
    )
    parser.add_argument(
        "--lookahead-random-cuts", type=int, default=10, metavar="N", help="random cuts per symbol (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print the full evaluation as JSON")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the equity curves and drawdowns")


def run(args: argparse.Namespace) -> int:
    from slsbot_runtime.config_loading import load_runtime_config
    from slsbot_runtime.domain.errors import ConfigError, SlsbotRuntimeError
    from slsbot_runtime.evaluation.runner import EvaluationSettings, LookaheadFailed, run_evaluation

    progress, close_progress = progress_bars(sys.stderr, enabled=not args.json)
    try:
        for option, value in (
            ("--folds", args.folds),
            ("--lookahead-cuts", args.lookahead_cuts),
            ("--lookahead-random-cuts", args.lookahead_random_cuts),
        ):
            if value < (1 if option == "--folds" else 0):
                raise ValueError(f"{option}: {value} is too small")
        settings = EvaluationSettings(
            folds=args.folds,
            start=parse_date(args.start, "--from") if args.start else None,
            end=parse_date(args.end, "--to") if args.end else None,
            seed=args.seed,
            lookahead_cuts=args.lookahead_cuts,
            lookahead_random_cuts=args.lookahead_random_cuts,
        )
        check_output(args.plot, "--plot", suffix=".png")
        config = load_runtime_config(args.config)
        evaluation = run_evaluation(config, data_dir=args.data, settings=settings, progress=progress)
    except LookaheadFailed as failure:
        close_progress()
        print(f"slsbot evaluate: {failure}", file=sys.stderr)
        if args.json:
            json.dump({"lookahead": failure.report.to_json()}, sys.stdout, indent=1)
            sys.stdout.write("\n")
        return 2
    except (ValueError, ConfigError) as error:
        print(f"slsbot evaluate: {error}", file=sys.stderr)
        return 2
    except SlsbotRuntimeError as error:
        print(f"slsbot evaluate: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    finally:
        close_progress()
    data = evaluation.to_json()
    if args.plot is not None:
        try:
            plot_evaluation(args.plot, evaluation)
        except OSError as error:
            print(f"slsbot evaluate: cannot write {error.filename} ({error.strerror})", file=sys.stderr)
            return 1
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(render_summary(data))
    return 0


def progress_bars(
    stream: IO[str], *, enabled: bool, delay: float = PROGRESS_DELAY_S
) -> tuple[Callable[[str, int, int], None] | None, Callable[[], None]]:
    """``(progress, close)``: one tqdm bar per stage on ``stream`` (the lookahead check, then the backtests), fed
    by ``progress(stage, done, total)``; shown only when ``enabled``, ``stream`` is a terminal and the stage has
    lasted ``delay`` seconds. ``(None, no-op)`` otherwise."""
    if not enabled or not stream.isatty():
        return None, lambda: None
    from tqdm import tqdm

    units = {"lookahead": " runs", "backtests": " candles"}
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(
                total=total,
                file=stream,
                delay=delay,
                unit=units.get(stage, ""),
                unit_scale=True,
                leave=False,
                desc=stage,
            )
        bar.update(max(done - bar.n, 0))

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return progress, close


SUMMARY_COLUMNS = ("total_return_pct", "sharpe", "max_drawdown_pct", "trades", "exposure_pct")


def render_summary(data: dict[str, Any]) -> str:
    """A few lines for a terminal: every candidate overall and per fold, buy-and-hold, the selection statistics."""
    head, selection, lookahead = data["evaluation"], data["selection"], data["lookahead"]
    forms = sorted({form for unit in lookahead["units"].values() for form in unit})
    cuts = ", ".join(f"{n} cuts of {symbol}" for symbol, n in lookahead["cuts"].items())
    lines = [
        f"{head['name']}: {', '.join(head['symbols'])} {head['timeframe']}, held out {head['held_out']['from']} -> "
        f"{head['held_out']['to']}, {len(head['folds'])} folds, each after a warm-up of {head['warmup_candles']} "
        "candles",
        f"lookahead check: passed ({lookahead['decisions_compared']:,} decisions compared at {cuts}; "
        f"{' and '.join(forms)} forms)",
        "",
        f"  {'overall, out of sample':<28}"
        + "".join(f"{METRIC_FORMATS[name][0]:>15}" for name in SUMMARY_COLUMNS)
        + f"{'DSR':>8}",
    ]
    rows = [("ensemble", "ensemble", data["ensemble"])]
    rows += [(name, f"ensemble.members[{name}]", result) for name, result in data["members"].items()]
    rows.append(("buy-and-hold", None, data["buy_and_hold"]))
    for name, label, result in rows:
        dsr = selection["deflated_sharpe"].get(label, {}).get("dsr") if label else None
        lines.append(
            f"  {name:<28}"
            + "".join(f"{_shown(column, result['overall'].get(column)):>15}" for column in SUMMARY_COLUMNS)
            + f"{'' if dsr is None else f'{dsr:.3f}':>8}"
        )
    fold_names = ["fold " + str(fold["index"]) for fold in head["folds"]]
    lines += ["", f"  {'total return per fold':<28}" + "".join(f"{name:>11}" for name in fold_names)]
    for name, _, result in rows:
        returns = [_shown("total_return_pct", fold["metrics"].get("total_return_pct")) for fold in result["folds"]]
        lines.append(f"  {name:<28}" + "".join(f"{shown:>11}" for shown in returns))
    pbo = selection.get("pbo")
    lines.append("")
    lines.append(f"  selected by out-of-sample Sharpe: {selection['selected']}")
    if pbo is not None:
        lines.append(
            f"  probability of backtest overfitting (CSCV, {pbo['blocks']} blocks, {pbo['splits']:,} splits): "
            f"{pbo['pbo']:.3f}"
        )
    lines.append(f"  {'data fingerprint':<17} {data['record']['data']['fingerprint']}")
    lines.append(f"  {'fingerprint':<17} {data['fingerprint']}")
    return "\n".join(lines)


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "n/a"
    return METRIC_FORMATS[name][1].format(value).replace(" per trade", "")


#: Colours of the plot: the ensemble and buy-and-hold stand out, members are thin.
ENSEMBLE_COLOUR, HOLD_COLOUR = "tab:blue", "black"


def plot_evaluation(path: Path, evaluation: Any) -> None:
    """A PNG: the out-of-sample equity curves (folds chained) of the ensemble, each member and buy-and-hold
    above, with the fold boundaries; the drawdowns of the ensemble and buy-and-hold (in %) below. matplotlib is
    imported only here and draws off screen (Agg)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def drawdown(values: np.ndarray) -> np.ndarray:
        return 100.0 * (1.0 - values / np.maximum.accumulate(values))

    figure = Figure(figsize=(11, 7), layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    first, *members = evaluation.candidates
    for candidate in members:
        curve = evaluation.results[candidate.name].curve
        top.plot(curve.ts.astype("datetime64[ms]"), curve.equity, linewidth=0.7, alpha=0.6, label=candidate.name)
    for name, result, colour, style in (
        ("ensemble", evaluation.results[first.name], ENSEMBLE_COLOUR, "-"),
        ("buy-and-hold", evaluation.benchmark, HOLD_COLOUR, "--"),
    ):
        times = result.curve.ts.astype("datetime64[ms]")
        top.plot(times, result.curve.equity, linewidth=1.8, color=colour, linestyle=style, label=name)
        bottom.plot(times, -drawdown(result.curve.equity), linewidth=1.0, color=colour, linestyle=style, label=name)
    for fold in evaluation.folds[1:]:
        for axis in (top, bottom):
            axis.axvline(np.datetime64(fold.start_ms, "ms"), color="grey", linewidth=0.6, linestyle=":")
    data = evaluation.to_json()
    head = data["evaluation"]
    top.set_title(
        f"{evaluation.config.name}: {', '.join(head['symbols'])} {head['timeframe']}, out of sample "
        f"{head['held_out']['from'][:10]} to {head['held_out']['to'][:10]}, {len(head['folds'])} folds, net of fees"
    )
    top.set_ylabel("equity (quote currency)")
    top.grid(alpha=0.3)
    top.legend(fontsize="small", ncol=4, loc="upper left")
    bottom.set_ylabel("drawdown (%)")
    bottom.grid(alpha=0.3)
    bottom.legend(fontsize="small", loc="lower left")
    figure.savefig(path, format="png", dpi=100)
