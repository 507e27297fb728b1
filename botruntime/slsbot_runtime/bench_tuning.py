"""``python -m slsbot_runtime.bench_tuning`` (``make bench``): a walk-forward tuning run at the size the issue sets.

200 trials over 4 walk-forward folds (365 training days, then 90 test days each: two years in all) on 4 symbols
of Binance spot 1h candles (BTC, ETH, BNB, LTC /USDT, to 2022-10-01) from the shared market data, tuning an
ensemble of an SMA crossover (fast, slow) and an RSI reversion (period, oversold) with fixed sizes: a config the
fast backtest mode reproduces exactly. TPE with pruning, 2 worker processes (``tuning.worker``, as the controller
starts them) on one journal-file study, then ``tuning.finalize``.

Printed (``name value target verdict``, as ``slsbot_runtime.bench``):

* ``tuning_wall_s``: from starting the two workers to both exiting (target <= 300 s on the 2 shared cores);
* ``tuning_trials_per_s``: finished trials over that wall time;
* ``tuning_backtest_share``: wall time inside the backtester (every trial's ``timing.backtest_seconds``: window
  cut, decisions, simulation, metrics) over the workers' wall time (2 x ``tuning_wall_s``); the rest is Optuna,
  the storage, loading the candles once per worker, and waiting for a core;
* ``tuning_backtest_share_of_trials``: the same over the trials' own wall time (``timing.trial_seconds``): what a
  trial spends outside the backtester (sampling, counting, storage writes);
* ``tuning_finalize_s``: the out-of-sample runs, DSR, PBO, result and report.

The machine is shared with other work: the load average is printed beside the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from slsbot_runtime.bench import market_data_root, report
from slsbot_runtime.tuning.accounting import count_trials
from slsbot_runtime.tuning.storage import open_storage

DATA = "djienne_3EMA_SRSI_ATR/binance"  # Binance spot 1h, 8 pairs, 2017-08 .. 2022-10
WORKERS = 2
TRIALS = 200

BASE: dict[str, Any] = {
    "apiVersion": "slsbot.io/v1alpha1",
    "kind": "RuntimeConfig",
    "name": "bench-tuning",
    "account": {
        "name": "backtest",
        "exchange": "binance",
        "paper": {"startingBalance": 100000, "feeRate": 0.001, "spreadBps": 1, "slippageBps": 2},
    },
    "symbols": ["BTC/USDT", "ETH/USDT", "BNB/USDT", "LTC/USDT"],
    "timeframe": "1h",
    "ensemble": {
        "voting": "majority",
        "members": [
            {"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30, "mode": "level"}},
            {"name": "rsi", "strategy": "rsi_reversion", "params": {"period": 14, "oversold": 30}},
        ],
    },
    "sizing": {"method": "fixedQuantity", "quantity": 0.5},
    "risk": {
        "perTrade": {"minPercent": 0.001, "maxPercent": 100},
        "maxSymbolExposurePercent": 1000,
        "maxTotalExposurePercent": 1000,
        "maxLeverage": 1,
        "dailyLossLimitPercent": 100,
        "maxDrawdownPercent": 100,
        "circuitBreaker": {"levels": []},
        "volatilityHalt": {"enabled": False},
    },
    "marketData": {"source": "replay", "warmupCandles": 200},
}


def bench_plan(data_dir: Path) -> dict[str, Any]:
    base = json.loads(json.dumps(BASE))
    base["marketData"]["dataDir"] = str(data_dir)
    return {
        "base": base,
        "searchSpace": [
            {"name": "sma.fast", "type": "int", "low": 5, "high": 50},
            {"name": "sma.slow", "type": "int", "low": 60, "high": 200, "step": 5},
            {"name": "rsi.period", "type": "int", "low": 7, "high": 28},
            {"name": "rsi.oversold", "type": "float", "low": 15.0, "high": 40.0},
        ],
        "objectives": [{"metric": "sharpe", "direction": "maximize"}],
        "sampler": "tpe",
        "pruning": True,
        "walkForward": {"trainDays": 365, "testDays": 90, "folds": 4},
        "windowEnd": "2022-10-01T00:00:00Z",
        "maxTrials": TRIALS,
        "seed": 7,
    }


def main() -> int:
    data = market_data_root() / DATA
    with tempfile.TemporaryDirectory(prefix="slsbot-bench-tuning-") as folder:
        work = Path(folder)
        plan_file = work / "plan.json"
        plan_file.write_text(json.dumps(bench_plan(data)))
        storage = f"journal:///{work / 'study.log'}".replace("////", "///")
        command = [sys.executable, "-m", "slsbot_runtime.tuning.worker", "--plan", str(plan_file)]
        command += ["--storage", storage, "--study", "bench"]
        started = time.perf_counter()
        workers = []
        for index in range(WORKERS):
            log = (work / f"worker-{index}.log").open("w")
            workers.append((subprocess.Popen([*command, "--worker-index", str(index)], stderr=log, stdout=log), log))
        codes = []
        for process, log in workers:
            codes.append(process.wait())
            log.close()
        wall = time.perf_counter() - started
        if any(codes):
            tail = (work / "worker-0.log").read_text()[-600:]
            print(f"# tuning workers exited {codes}: {tail}", flush=True)
            return 1
        study = optuna.load_study(study_name="bench", storage=open_storage(storage))
        trials = study.get_trials(deepcopy=False)
        counts = count_trials(trials)
        inside = sum(t.user_attrs.get("timing", {}).get("backtest_seconds", 0.0) for t in trials)
        in_trials = sum(t.user_attrs.get("timing", {}).get("trial_seconds", 0.0) for t in trials)
        modes: dict[str, int] = {}
        for trial in trials:
            for mode, runs in trial.user_attrs.get("timing", {}).get("modes", {}).items():
                modes[mode] = modes.get(mode, 0) + runs
        started = time.perf_counter()
        finalize = [sys.executable, "-m", "slsbot_runtime.tuning.finalize", "--plan", str(plan_file)]
        finalize += ["--storage", storage, "--study", "bench", "--out", str(work / "out")]
        finished = subprocess.run(finalize, capture_output=True, text=True, check=False)
        finalize_s = time.perf_counter() - started
        verdict = json.loads((work / "out" / "result.json").read_text()) if finished.returncode == 0 else {}
    print(
        f"# tuning: {TRIALS} trials x 4 folds (365 training + 90 test days) on 4 symbols 1h, TPE + median pruning, "
        f"{WORKERS} worker processes on a journal-file study; {counts.complete} complete, {counts.pruned} pruned, "
        f"{counts.failed} failed; fold backtests by mode {modes}",
        flush=True,
    )
    if verdict:
        print(
            f"# finalize: out of sample {verdict['outOfSample']['total_return_pct']:.1f} % vs buy-and-hold "
            f"{verdict['buyAndHold']['total_return_pct']:.1f} %, DSR {verdict['dsr']}, PBO {verdict['pbo']}",
            flush=True,
        )
    else:
        print(f"# finalize exited {finished.returncode}: {finished.stderr.strip()[-400:]}", flush=True)
    report("tuning_wall_s", wall, ("<=", 300.0))
    report("tuning_trials_per_s", counts.finished / wall)
    report("tuning_backtest_share", inside / (WORKERS * wall))
    report("tuning_backtest_share_of_trials", inside / in_trials)
    report("tuning_finalize_s", finalize_s)
    print(f"# load average {os.getloadavg()[0]:.2f} at the end (a shared machine)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
