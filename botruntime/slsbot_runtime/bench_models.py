"""The model figures of ``make bench`` (``python -m slsbot_runtime.bench models`` prints only these).

* ``train_<kind>_s``: one retrain of each model kind alone (default parameters, all 79 features: the table, the
  fit, the calibration and the holdout scores) on two years of hourly candles of eight symbols pooled (2020-10-11 ..
  2022-10-11, ``djienne_3EMA_SRSI_ATR``), single-threaded as the training process runs it; ``train_features_s`` is
  the table alone (features and labels), ``train_all_four_s`` one retrain of the three kinds and the stacking model
  over them together, as the training process runs a retrain of such a config.
* ``models_decision_latency_p50_ms`` / ``_p99_ms`` (target <= 2 ms) and ``models_decision_cpu_p99_ms``: wall and CPU
  time of ``TradingLoop.process`` per candle, the ensemble of ``examples/backtest/ensemble-8-symbols.yaml`` (12
  rule-based members, every risk rule) plus the three kinds and the stacking model voting (all 79 features), eight
  1h pairs from ``ENSEMBLE_START``, the models trained on the candles before it and found in the registry at start;
  a retrain runs in the training process during the run, as live (the loop does not wait for it);
  ``rules_decision_latency_p99_ms`` and ``rules_decision_cpu_p99_ms`` are the same candles without models.
* ``models_runtime_peak_rss_mb`` (target <= 400): ``slsbot runtime --until-end`` trading the eight pairs with that
  ensemble and models, its own peak resident memory (``VmHWM``); ``models_training_peak_rss_mb`` the training
  process's (the largest process the runtime leaves behind, ``RUSAGE_CHILDREN``).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
TWO_YEARS = "djienne_3EMA_SRSI_ATR/binance"
TWO_YEARS_FROM = datetime(2020, 10, 11, tzinfo=UTC)
SYMBOLS = ("BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "LTC/USDT", "DOGE/USDT")
ENSEMBLE_START = datetime(2025, 6, 1, tzinfo=UTC)
#: The models are trained at this point on the candles before it, and the runtime starts here with them in its registry.
PRETRAINED_AT = ENSEMBLE_START
MEMORY_START = datetime(2025, 11, 15, tzinfo=UTC)
HOUR = 3_600_000
KINDS = {"gbm": "gradientBoosting", "forest": "randomForest", "logit": "logisticRegression"}
TARGETS = {"models_decision_latency_p99_ms": ("<=", 2.0), "models_runtime_peak_rss_mb": ("<=", 400.0)}


def _models(**fields: Any) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = [{"name": name, "kind": kind, **fields} for name, kind in KINDS.items()]
    models.append({"name": "stack", "kind": "stacking", "inputs": list(KINDS), **fields})
    return models


def bench_training(root: Path, report: Any) -> None:
    from threadpoolctl import threadpool_limits

    from slsbot.api.strategy import MLModel
    from slsbot_runtime.data.discovery import load_history
    from slsbot_runtime.ml.dataset import build_dataset, feature_warmup
    from slsbot_runtime.ml.training import ModelSpec, TrainingJob, run_training

    folder = root / TWO_YEARS
    histories = [load_history(folder, s, "1h", interval_ms=HOUR, start=TWO_YEARS_FROM) for s in SYMBOLS]
    lookback = max(len(h) for h in histories)
    specs = [ModelSpec.from_api(MLModel.model_validate({**m, "lookback": lookback})) for m in _models()]
    point = max(int(h.ts[-1]) for h in histories) + HOUR
    windows = tuple(histories)
    with threadpool_limits(limits=1):
        started = time.perf_counter()
        data = build_dataset(windows, specs[0].features, horizon=1, lookback=lookback)
        report("train_features_s", time.perf_counter() - started)
        timings = {}
        for spec in specs[:3]:
            started = time.perf_counter()
            (outcome,) = run_training(TrainingJob(point, windows, (spec,)))
            timings[spec.kind] = time.perf_counter() - started
            if not outcome.ok:
                print(f"# {spec.name} failed: {outcome.error}", flush=True)
        started = time.perf_counter()
        outcomes = run_training(TrainingJob(point, windows, tuple(specs)))
        together = time.perf_counter() - started
    print(
        f"# training: {len(SYMBOLS)} symbols 1h {TWO_YEARS_FROM:%Y-%m-%d} .. 2022-10-11, {len(data):,} rows x "
        f"{len(data.features)} features (warmup {feature_warmup(specs[0].features)}), one thread; holdout log loss "
        + ", ".join(f"{o.name} {o.metrics.get('log_loss', float('nan')):.4f}" for o in outcomes),
        flush=True,
    )
    for kind, seconds in timings.items():
        report(f"train_{kind}_s", seconds)
    report("train_all_four_s", together)


def _config(data: Path, *, models: bool, start: datetime, **fields: Any) -> Any:
    from slsbot_runtime.config_loading import parse_runtime_config

    raw = yaml.safe_load((REPO / "examples/backtest/ensemble-8-symbols.yaml").read_text())
    raw["marketData"].update({"dataDir": str(data), "start": start.isoformat()})
    if models:
        raw["ml"] = {"models": _models(**fields)}
    return parse_runtime_config(raw)


def _pretrain(config: Any, data: Path, registry_root: Path, point: int) -> None:
    """The models as a runtime started at ``point`` finds them: trained on the candles before it, in the registry."""
    from threadpoolctl import threadpool_limits

    from slsbot_runtime.data.discovery import load_history
    from slsbot_runtime.ml.registry import ModelRegistry
    from slsbot_runtime.ml.training import TrainingJob
    from slsbot_runtime.ml.wiring import model_specs
    from slsbot_runtime.ml.worker import complete_job

    specs = model_specs(config)
    depth = max(spec.history_needed([s for s in specs if s.name in spec.inputs]) for spec in specs)
    windows = []
    for symbol in config.symbols:
        history = load_history(data, symbol, "1h", interval_ms=HOUR)
        end = int(np.searchsorted(history.ts, point))
        windows.append(history.slice(max(0, end - depth), end))
    with threadpool_limits(limits=1):
        complete_job(TrainingJob(point, tuple(windows), tuple(specs)), ModelRegistry(registry_root))


def bench_latency(root: Path, report: Any) -> None:
    from slsbot_runtime.app import RuntimeOptions, build_runtime
    from slsbot_runtime.data.replay import ReplayFeed

    data = root / "Harthor_marketlab/binance"
    point = int(PRETRAINED_AT.timestamp() * 1000)
    measured_from = int(ENSEMBLE_START.timestamp() * 1000)
    figures: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="slsbot-bench-models-") as folder:
        # A replay at full speed passes a week of eight symbols in a second or two, faster than a retrain: with a weekly
        # schedule the models would spend the run stale. Retrained yearly here, they are predicted on every candle;
        # drift takes them out of the vote for most of the run (the market leaves their training window within weeks)
        # and asks for retrains that finish in the background, but a drifted model is still predicted and watched, so
        # the latency is that of all four models on every candle. What a retrain costs is the train_* figures.
        fields = {"lookback": 2000, "retrainEvery": "8760h", "staleAfter": "8760h"}
        config = _config(data, models=True, start=PRETRAINED_AT, **fields)
        _pretrain(config, data, Path(folder) / "models", point)
        for name, with_models in (("rules", False), ("models", True)):
            chosen = config if with_models else _config(data, models=False, start=PRETRAINED_AT)
            built = build_runtime(chosen, RuntimeOptions(state_path=str(Path(folder) / f"{name}.db")))
            bank = built.loop.models
            if bank is not None:
                bank.wait_for_training = False  # live: the loop never waits for a retrain
            assert isinstance(built.feed, ReplayFeed)
            candles = list(built.feed)
            loop = built.loop
            loop.start()
            candles = [candle for candle in candles if candle.ts >= measured_from]
            wall, cpu = np.empty(len(candles)), np.empty(len(candles))
            voting = 0
            for index, candle in enumerate(candles):
                before, before_cpu = time.perf_counter(), time.thread_time()
                loop.process(candle)
                wall[index] = time.perf_counter() - before
                cpu[index] = time.thread_time() - before_cpu
                if bank is not None:
                    voting += not bank.out_of_vote()
            loop.finish()
            if bank is not None:
                retrains = sum(record.retrains for record in bank.models.values())
                print(
                    f"# with models: {len(candles):,} candles, all 4 models predicted on each and in the vote at "
                    f"{voting / len(candles):.0%} of them (the others drifted), {retrains} model retrains finished in "
                    "the training process during the run",
                    flush=True,
                )
                bank.close()
            built.store.close()
            figures[name] = wall
            figures[f"{name}_cpu"] = cpu
    print(
        f"# latency: ensemble-8-symbols (12 members, every risk rule) from {ENSEMBLE_START:%Y-%m-%d}, "
        "with and without gbm, forest, logit and stack on all 79 features",
        flush=True,
    )
    report("rules_decision_latency_p99_ms", float(np.percentile(figures["rules"], 99)) * 1000)
    report("rules_decision_cpu_p99_ms", float(np.percentile(figures["rules_cpu"], 99)) * 1000)
    report("models_decision_latency_p50_ms", float(np.percentile(figures["models"], 50)) * 1000)
    report(
        "models_decision_latency_p99_ms",
        float(np.percentile(figures["models"], 99)) * 1000,
        TARGETS["models_decision_latency_p99_ms"],
    )
    report("models_decision_cpu_p99_ms", float(np.percentile(figures["models_cpu"], 99)) * 1000)


def replay_command(config: Path, state: Path) -> list[str]:
    """``slsbot runtime`` replaying ``config`` to its end, quietly, on a free port: what the memory figures run."""
    options = ["--until-end", "--port", "0", "--log-level", "WARNING"]
    return [
        sys.executable,
        "-m",
        "slsbot.interfaces.cli",
        "runtime",
        "--config",
        str(config),
        "--state",
        str(state),
        *options,
    ]


def bench_memory(root: Path, report: Any) -> None:
    data = root / "Harthor_marketlab/binance"
    config = _config(data, models=True, start=MEMORY_START, lookback=2000, retrainEvery="168h")
    with tempfile.TemporaryDirectory(prefix="slsbot-bench-models-") as folder:
        path = Path(folder) / "runtime.yaml"
        path.write_text(yaml.safe_dump(config.to_wire()))
        command = replay_command(path, Path(folder) / "state.db")
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak_kb = 0
        while process.poll() is None:
            peak_kb = max(peak_kb, _hwm_kb(process.pid))
            time.sleep(0.5)
        stderr = process.stderr.read() if process.stderr else ""
        elapsed = time.perf_counter() - started
        versions = sum(1 for _ in (Path(folder) / "models").glob("*/v*"))
    if process.returncode != 0:
        print(f"# runtime exited {process.returncode}: {stderr.strip()[-400:]}", flush=True)
    largest_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"# memory: slsbot runtime --until-end, {len(config.symbols)} symbols 1h from {MEMORY_START:%Y-%m-%d}, "
        f"ensemble-8-symbols plus 4 models (lookback 2000, weekly), {versions} model versions trained, {elapsed:.0f}s",
        flush=True,
    )
    report("models_runtime_peak_rss_mb", peak_kb / 1024, TARGETS["models_runtime_peak_rss_mb"])
    report("models_training_peak_rss_mb", largest_mb)


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main(root: Path, report: Any) -> None:
    print(f"# models: load average {os.getloadavg()[0]:.2f} at start", flush=True)
    for section in (bench_training, bench_latency, bench_memory):
        section(root, report)
