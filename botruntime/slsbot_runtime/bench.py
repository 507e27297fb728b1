"""``python -m slsbot_runtime.bench`` (``make bench``): speed and memory on the full shared market data.

One figure per line, ``name value target verdict`` (verdict ``met``, ``not-met`` or ``-`` without a target);
lines starting with ``#`` say what was measured. The data folder is ``$SLSBOT_MARKET_DATA``, else
``../shared/data/market`` beside the repository (CI's layout).

* ``decision_latency_p50_ms`` / ``_p99_ms``: wall time of ``TradingLoop.process`` for one candle (gap
  bookkeeping, paper matching, the twelve-member ensemble, the risk manager with every rule on, planning,
  orders and state staging: the whole live per-candle path, so an upper bound of the decision alone), over
  the eight 1h pairs of ``examples/backtest/ensemble-8-symbols.yaml`` from ``ENSEMBLE_START``.
  ``decision_cpu_p99_ms`` is the same in CPU time of the loop's thread: the part that is work, not waiting
  for a core on a shared machine.
* ``ensemble_step_candles_per_s``: the same run's candles per second.
* ``step_candles_per_s`` / ``fast_candles_per_s``: ``examples/backtest/sma-cross-btc.yaml`` on BTC/USDT 5m
  (the longest single series), in each mode; step is the best of ``STEP_REPEATS`` runs, fast of ``FAST_REPEATS``.
  Data loading excluded. ``backtrader_candles_per_s``: backtrader's ``CrossOver`` strategy making the same trades on
  the same series in the same run (``backtrader_sma_cross``, the reference the backtest tests compare trades with;
  ``cerebro.run`` timed, best of ``STEP_REPEATS``, each run right after a step run), and ``step_vs_backtrader``: how
  many times faster step mode is.
* ``ensemble_backtest_step_candles_per_s`` / ``ensemble_backtest_fast_candles_per_s``: the full ensemble,
  ``examples/backtest/ensemble-8-symbols.yaml`` as committed (twelve members on eight 1h pairs, Kelly sizing, the
  breaker, the loss limits, the volatility halt) over the whole 2024-09 .. 2026-02 span, as a backtest in each mode;
  fast is the best of ``FAST_REPEATS`` runs; ``ensemble_fast_identical`` is 1 when both give the same trades,
  fingerprint and equity curve. Data loading excluded.
* ``runtime_peak_rss_mb``: ``slsbot runtime --until-end`` as a child process over the eight 1h pairs with the
  ensemble config, its peak resident memory from ``getrusage(RUSAGE_CHILDREN)``.
* ``anomaly_score_p50_us`` / ``_p99_us``: ``AnomalyMonitor.update`` for one BTC/USDT 1h candle with the default
  anomaly model (market-state features, the 100-tree forest, drift bookkeeping), candles that refit excluded;
  ``anomaly_fit_ms``: the mean refit (scikit-learn on 2,000 rows, out-of-bag reference), which happens once per
  ``retrainEvery`` and on drift; ``anomaly_score_cpu_p99_us`` is the p99 in CPU time of the thread (the work, not
  the wait for a core on a shared machine); ``anomaly_status_us``: one status publish's drift figures (PSI of
  every series, the KS test of one); ``anomaly_history_candles_per_s``: ``AnomalyDetector.score_history`` over the
  whole series.
* the model figures (training time per kind, decision latency with models in the vote, a runtime's memory with
  models): ``bench_models``. ``python -m slsbot_runtime.bench models`` prints only those, ``... runtime`` only the
  ones above, ``... ensemble`` only the full ensemble's backtest figures, ``... step`` only the one-strategy figures
  (step, fast and backtrader side by side).
"""

from __future__ import annotations

import calendar
import gc
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

from slsbot_runtime.app import RuntimeOptions, build_runtime
from slsbot_runtime.backtest.runner import run_backtest
from slsbot_runtime.config_loading import load_runtime_config, parse_runtime_config
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.data.replay import ReplayFeed
from slsbot_runtime.features.base import OHLCV

REPO = Path(__file__).resolve().parents[2]
SPOT_1H_2024 = "Harthor_marketlab/binance"  # 8 pairs, 1h and 5m, 2024-09 .. 2026-02
ENSEMBLE_START = datetime(2025, 6, 1, tzinfo=UTC)
FAST_REPEATS = 5
STEP_REPEATS = 3

TARGETS = {
    "decision_latency_p99_ms": ("<", 5.0),
    "anomaly_score_p99_us": ("<", 500.0),
    "step_candles_per_s": (">", 50_000.0),
    "step_vs_backtrader": (">=", 10.0),
    "fast_candles_per_s": (">", 1_000_000.0),
    "ensemble_fast_identical": (">=", 1.0),
    "runtime_peak_rss_mb": ("<", 300.0),
}


def market_data_root() -> Path:
    configured = os.environ.get("SLSBOT_MARKET_DATA")
    return Path(configured) if configured else (REPO / ".." / "shared" / "data" / "market").resolve()


def report(name: str, value: float, target: tuple[str, float] | None = None) -> None:
    """Print one figure as ``name value target verdict``; ``target`` (e.g. ``("<", 5.0)``, ``("<=", 60.0)``)
    defaults to the one in ``TARGETS``. The control plane's benchmarks (``slsbot.bench``) print through this too."""
    target = target or TARGETS.get(name)
    shown = f"{value:.3f}" if value < 100 else f"{value:,.0f}".replace(",", "")
    if target is None:
        print(f"{name} {shown} - -", flush=True)
        return
    sign, limit = target
    met = {"<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit}[sign]
    print(f"{name} {shown} target{sign}{limit:.0f} {'met' if met else 'not-met'}", flush=True)


def bench_ensemble_latency(data: Path) -> None:
    config = load_runtime_config(REPO / "examples/backtest/ensemble-8-symbols.yaml")
    config = config.model_copy(
        update={"market_data": config.market_data.model_copy(update={"data_dir": str(data), "start": ENSEMBLE_START})}
    )
    built = build_runtime(config, RuntimeOptions(state_path=":memory:"))
    assert isinstance(built.feed, ReplayFeed)
    candles = list(built.feed)
    loop = built.loop
    samples = np.empty(len(candles))
    cpu = np.empty(len(candles))
    loop.start()
    started = time.perf_counter()
    for index, candle in enumerate(candles):
        before, before_cpu = time.perf_counter(), time.thread_time()
        loop.process(candle)
        samples[index] = time.perf_counter() - before
        cpu[index] = time.thread_time() - before_cpu
    loop.finish()
    elapsed = time.perf_counter() - started
    built.store.close()
    print(
        f"# ensemble: 12 members x {len(config.symbols)} symbols 1h from {ENSEMBLE_START:%Y-%m-%d}, "
        f"{len(candles):,} candles, risk with breakers and volatility halt",
        flush=True,
    )
    report("decision_latency_p50_ms", float(np.percentile(samples, 50)) * 1000)
    report("decision_latency_p99_ms", float(np.percentile(samples, 99)) * 1000)
    report("decision_cpu_p99_ms", float(np.percentile(cpu, 99)) * 1000)
    report("ensemble_step_candles_per_s", len(candles) / elapsed)


def bench_one_strategy(data: Path) -> None:
    config = load_runtime_config(REPO / "examples/backtest/sma-cross-btc.yaml")
    config = config.model_copy(update={"timeframe": "5m"})
    history = load_history(data, "BTC/USDT", "5m", interval_ms=300_000)
    steps, references = [], []
    for _ in range(STEP_REPEATS):  # one after the other, so that both see the same load on a shared machine
        steps.append(run_backtest(config, data_dir=data, mode="step"))
        references.append(backtrader_sma_cross(history))
    step = min(steps, key=lambda result: result.elapsed_s)
    reference = min(references, key=lambda run: run.elapsed_s)
    fast = min(
        (run_backtest(config, data_dir=data, mode="fast") for _ in range(FAST_REPEATS)),
        key=lambda result: result.elapsed_s,
    )
    same = "identical" if fast.fingerprint == step.fingerprint else "DIFFERENT"
    print(
        f"# one strategy: sma_cross 10/30 on BTC/USDT 5m, {step.candles:,} candles, {len(step.trades)} trades; "
        f"fast and step results {same}; backtrader {len(reference.trades)} trades on {len(history):,} candles",
        flush=True,
    )
    backtrader_rate = len(history) / reference.elapsed_s
    report("step_candles_per_s", step.candles_per_second)
    report("fast_candles_per_s", fast.candles_per_second)
    report("backtrader_candles_per_s", backtrader_rate)
    report("step_vs_backtrader", step.candles_per_second / backtrader_rate)


@dataclass(frozen=True, slots=True)
class ReferenceRun:
    trades: list[dict[str, float]]  # entry_ts, exit_ts (ms), entry_price, pnl (after commission), one per round trip
    elapsed_s: float  # cerebro.run


def backtrader_sma_cross(
    history: OHLCV, *, fast: int = 10, slow: int = 30, size: float = 0.1, cash: float = 100_000.0, fee: float = 0.001
) -> ReferenceRun:
    """backtrader's ``CrossOver`` strategy as ``examples/backtest/sma-cross-btc.yaml`` describes it: buy ``size`` when
    the ``fast`` SMA crosses above the ``slow`` one, close when it crosses back below, market orders filled at the
    next open, ``fee`` commission per side. backtrader is a development dependency (the benchmarks and the tests)."""
    import pandas as pd

    with warnings.catch_warnings():  # backtrader 1.9.78's docstrings hold invalid escape sequences
        warnings.simplefilter("ignore", DeprecationWarning)
        import backtrader as bt

    class SmaCrossover(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.crossover = bt.indicators.CrossOver(
                bt.indicators.SMA(self.data.close, period=fast), bt.indicators.SMA(self.data.close, period=slow)
            )
            self.trades: list[dict[str, float]] = []

        def next(self) -> None:
            if not self.position:
                if self.crossover > 0:
                    self.buy(size=size)
            elif self.crossover < 0:
                self.close()

        def notify_trade(self, trade: bt.Trade) -> None:
            if trade.isclosed:
                self.trades.append(
                    {
                        "entry_ts": _epoch_ms(bt.num2date(trade.dtopen)),
                        "exit_ts": _epoch_ms(bt.num2date(trade.dtclose)),
                        "entry_price": trade.price,
                        "pnl": trade.pnlcomm,
                    }
                )

    columns = {name: getattr(history, name) for name in ("open", "high", "low", "close", "volume")}
    frame = pd.DataFrame(columns, index=pd.to_datetime(history.ts, unit="ms"))
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(SmaCrossover)
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=fee)
    started = time.perf_counter()
    (strategy,) = cerebro.run()
    return ReferenceRun(strategy.trades, time.perf_counter() - started)


def _epoch_ms(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple()) * 1000


def bench_ensemble_backtest(data: Path) -> None:
    config = load_runtime_config(REPO / "examples/backtest/ensemble-8-symbols.yaml")
    step = run_backtest(config, data_dir=data, mode="step")
    fast = min(
        (run_backtest(config, data_dir=data, mode="fast") for _ in range(FAST_REPEATS)),
        key=lambda result: result.elapsed_s,
    )
    same = (
        fast.fingerprint == step.fingerprint
        and fast.trades == step.trades
        and np.array_equal(fast.equity_ts, step.equity_ts)
        and np.array_equal(fast.equity, step.equity)
    )
    print(
        f"# full ensemble backtest: 12 members x {len(config.symbols)} symbols 1h, {step.candles:,} candles, "
        f"{len(step.trades)} trades, Kelly sizing, breakers, loss limits, volatility halt; "
        f"fast {fast.candles_per_second / step.candles_per_second:.0f}x step; "
        f"results {'identical' if same else 'DIFFERENT'}",
        flush=True,
    )
    report("ensemble_backtest_step_candles_per_s", step.candles_per_second)
    report("ensemble_backtest_fast_candles_per_s", fast.candles_per_second)
    report("ensemble_fast_identical", 1.0 if same else 0.0)


_PEAK_OF_CHILD = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def bench_runtime_memory(data: Path) -> None:
    from slsbot_runtime.bench_models import replay_command

    raw = yaml.safe_load((REPO / "examples/backtest/ensemble-8-symbols.yaml").read_text())
    raw["marketData"].update({"dataDir": str(data), "start": ENSEMBLE_START.isoformat()})
    config = parse_runtime_config(raw)
    with tempfile.TemporaryDirectory(prefix="slsbot-bench-") as folder:
        path = Path(folder) / "runtime.yaml"
        path.write_text(yaml.safe_dump(config.to_wire()))
        command = replay_command(path, Path(folder) / "state.db")
        started = time.perf_counter()
        # Started from a small launcher that reports its children's peak: a child forked from this process would count
        # this process's own resident memory (the data the sections before loaded) until it execs the runtime.
        finished = subprocess.run(
            [sys.executable, "-c", _PEAK_OF_CHILD, *command], capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - started
    *_, last = finished.stdout.strip().splitlines() or ["0 0"]
    code, peak_kib = (int(x) for x in last.split())
    if code != 0:
        print(f"# runtime exited {code}: {finished.stderr.strip()[-400:]}", flush=True)
    peak_mb = peak_kib / 1024  # KiB on Linux
    print(
        f"# runtime: slsbot runtime --until-end over {len(config.symbols)} symbols 1h from "
        f"{ENSEMBLE_START:%Y-%m-%d} with the 12-member ensemble, {elapsed:.1f}s",
        flush=True,
    )
    report("runtime_peak_rss_mb", peak_mb)


def bench_anomaly(data: Path) -> None:
    from slsbot.api.strategy import MLModel
    from slsbot_runtime.monitoring.anomaly import AnomalyDetector, AnomalyMonitor, AnomalySettings

    history = load_history(data, "BTC/USDT", "1h", interval_ms=3_600_000)
    model = MLModel(name="anomaly", kind="isolationForest", role="anomaly")  # the defaults
    settings = AnomalySettings.from_spec(model, interval_ms=3_600_000, drift_threshold=0.2)
    monitor = AnomalyMonitor("BTC/USDT", settings)
    candles = [history.candle(i) for i in range(len(history))]
    scored, cpu, fits, status = [], [], [], []
    for candle in candles:
        before, started, started_cpu = monitor.fits, time.perf_counter(), time.thread_time()
        score = monitor.update(candle)
        elapsed, elapsed_cpu = time.perf_counter() - started, time.thread_time() - started_cpu
        if monitor.fits > before:
            fits.append(elapsed)
        elif score is not None:
            scored.append(elapsed)
            cpu.append(elapsed_cpu)
            if len(scored) % 100 == 0:
                started = time.perf_counter()
                monitor.figures(refresh_ks=1)
                status.append(time.perf_counter() - started)
    detector = AnomalyDetector(settings)
    detector.forest = monitor.detector.forest
    started = time.perf_counter()
    detector.score_history(history)
    whole = time.perf_counter() - started
    print(
        f"# anomaly: default model on BTC/USDT 1h, {len(candles):,} candles, {len(scored):,} scored, "
        f"{len(fits)} fits ({', '.join(f'{k} {v}' for k, v in sorted(monitor.fit_counts.items()))})",
        flush=True,
    )
    report("anomaly_score_p50_us", float(np.percentile(scored, 50)) * 1e6)
    report("anomaly_score_p99_us", float(np.percentile(scored, 99)) * 1e6)
    report("anomaly_score_cpu_p99_us", float(np.percentile(cpu, 99)) * 1e6)
    report("anomaly_fit_ms", float(np.mean(fits)) * 1000)
    report("anomaly_status_us", float(np.percentile(status, 50)) * 1e6)
    report("anomaly_history_candles_per_s", len(candles) / whole)


def main(argv: list[str] | None = None) -> int:
    wanted = set(sys.argv[1:] if argv is None else argv) or {"runtime", "models"}
    root = market_data_root()
    data = root / SPOT_1H_2024
    if not data.is_dir():
        print(
            f"bench: no market data at {data}; set SLSBOT_MARKET_DATA to the shared data/market folder", file=sys.stderr
        )
        return 1
    load = os.getloadavg()[0]
    print(f"# data {root}; {os.cpu_count()} cores, load average {load:.2f} at start", flush=True)
    if "runtime" in wanted:
        sections = (bench_ensemble_latency, bench_one_strategy, bench_ensemble_backtest, bench_runtime_memory)
        for section in (*sections, bench_anomaly):
            gc.collect()  # each section pays for its own garbage, not for the cycles the one before left behind
            section(data)
    elif "ensemble" in wanted:  # the full ensemble's backtest alone, fast against step
        bench_ensemble_backtest(data)
    elif "step" in wanted:
        bench_one_strategy(data)
    if "models" in wanted:
        from slsbot_runtime import bench_models

        gc.collect()
        bench_models.main(root, report)
    print(f"# load average {os.getloadavg()[0]:.2f} at the end", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
