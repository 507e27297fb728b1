"""``slsbot backtest``: a RuntimeConfig over recorded candles, on the live loop's code path.

    slsbot backtest --config examples/backtest/sma-cross-btc.yaml --json
    slsbot backtest --config FILE --data data/market/binance-spot-1h-2024 --from 2025-01-01 --to 2025-07-01 --mode step

``--json`` prints ``{"trades": [...], "metrics": {...}, "fingerprint": "...", "run": {...}}``; without it a
short summary. Exit codes: 0 done, 1 unusable market data, 2 bad config or arguments (including ``--mode
fast`` on a config fast mode cannot reproduce; the message names why).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

HELP = "Backtest a RuntimeConfig over recorded candles"


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


def parse_date(text: str, option: str) -> datetime:
    """``2021-01-01`` or an ISO date-time; without a zone it is UTC. ValueError naming the option."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a date; write it like 2021-01-01 or 2021-01-01T12:00") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def run(args: argparse.Namespace) -> int:
    from slsbot_runtime.backtest.inputs import BacktestWindow
    from slsbot_runtime.backtest.runner import run_backtest
    from slsbot_runtime.config_loading import load_runtime_config
    from slsbot_runtime.domain.errors import ConfigError, SlsbotRuntimeError

    try:
        start = parse_date(args.start, "--from") if args.start else None
        end = parse_date(args.end, "--to") if args.end else None
        config = load_runtime_config(args.config)
        result = run_backtest(config, data_dir=args.data, window=BacktestWindow(start, end), mode=args.mode)
    except (ValueError, ConfigError) as error:
        print(f"slsbot backtest: {error}", file=sys.stderr)
        return 2
    except SlsbotRuntimeError as error:
        print(f"slsbot backtest: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(render_summary(result.to_json()))
    return 0


def render_summary(data: dict) -> str:
    """A few lines for a terminal."""
    run, metrics = data["run"], data["metrics"]
    lines = [
        f"{', '.join(run['symbols'])} {run['timeframe']}, {run['first_candle']} -> {run['last_candle']}, "
        f"{run['candles']:,} candles in {run['elapsed_s']:.2f}s ({run['mode']} mode)",
    ]
    if run["fallback_reason"]:
        lines.append(f"  step mode because {run['fallback_reason']}")
    for name, value in metrics.items():
        shown = "n/a" if value is None else (f"{value:,.4f}" if isinstance(value, float) else f"{value:,}")
        lines.append(f"  {name:<14} {shown}")
    lines.append(f"  fingerprint    {data['fingerprint']}")
    return "\n".join(lines)
