"""A RuntimeConfig's models become the runtime's bank: bad model settings are refused naming the field, with nothing
started or written; a runtime shows its models in its status."""

from __future__ import annotations

from pathlib import Path

from slsbot.api import RuntimeConfig
from slsbot_runtime.app import RuntimeOptions, build_runtime, config_problems

REPO = Path(__file__).resolve().parents[4]


def _config(**model: object) -> RuntimeConfig:
    return RuntimeConfig.model_validate(
        {
            "name": "models",
            "account": {"name": "paper", "exchange": "binance"},
            "symbols": ["BTC/USDT"],
            "ensemble": {"members": [{"name": "trend", "strategy": "sma_cross"}]},
            "ml": {"models": [{"name": "gbm", "kind": "gradientBoosting", **model}]},
            "marketData": {"dataDir": str(REPO / "data/market/binance-spot-1h-2024"), "secondsPerCandle": 0},
        }
    )


def test_bad_model_settings_are_refused_naming_the_field(tmp_path: Path) -> None:
    assert config_problems(_config(features=["rsi_14", "rsi14"])) == [
        "ml.models[gbm].features: unknown feature(s) 'rsi14' (did you mean rsi_14?); the engine has 79, e.g. "
        "logret_1, logret_3, logret_6, logret_12, logret_24, logret_72 (see docs/concepts/strategies.md)"
    ]
    (problem,) = config_problems(_config(params={"max_depth": -2}))
    assert problem.startswith("ml.models[gbm].params: ") and "max_depth" in problem
    # one symbol, 300 candles, 4 ahead: at most 296 labelled samples, under the 300 a retrain needs, so it would
    # stay missing for ever
    assert config_problems(_config(lookback=300, horizon=4)) == [
        "ml.models[gbm].lookback: 300 candles per symbol over 1 symbol(s) leave at most 296 labelled samples "
        "(horizon 4), under the 300 a retrain needs, so the model would never train; set lookback to at least 304"
    ]
    assert config_problems(_config(lookback=304, horizon=4)) == []
    assert config_problems(_config()) == []
    assert list(tmp_path.iterdir()) == []  # nothing written, no process started


def test_a_runtime_shows_its_models_and_beats_while_it_waits(tmp_path: Path) -> None:
    built = build_runtime(_config(), RuntimeOptions(state_path=str(tmp_path / "state.db")))
    try:
        bank = built.loop.models
        assert bank is not None and bank.on_wait == built.loop.beat
        built.loop.start()
        before = built.loop.status.heartbeat
        built.loop.beat()
        assert built.loop.status.heartbeat >= before
        status = built.loop.status.to_json()["models"]["gbm"]
        assert status == {
            "version": None,
            "trained_at": None,
            "state": "missing",
            "in_vote": False,
            "metric": {"log_loss": None},
            "accuracy": None,
            "baseline_accuracy": None,
            "accuracy_scored": 0,
            "retrains": 0,
            "replaced": 0,
            "decision": "",
            "reason": None,
        }
    finally:
        bank.close()
        built.store.close()


def test_the_live_accuracy_settings_reach_every_model(tmp_path: Path) -> None:
    config = _config().model_copy(deep=True)
    config.ml.accuracy = config.ml.accuracy.model_validate({"window": 30, "minScored": 10})
    built = build_runtime(config, RuntimeOptions(state_path=str(tmp_path / "state.db")))
    try:
        bank = built.loop.models
        assert bank is not None
        accuracy = bank.models["gbm"].accuracy
        assert (accuracy.window, accuracy.min_scored, accuracy.horizon) == (30, 10, 1)
    finally:
        bank.close()
        built.store.close()
