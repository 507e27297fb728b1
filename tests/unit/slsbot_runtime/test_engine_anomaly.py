"""The trading loop with an anomaly detector: vetoed entries are recorded risk decisions, the status and the
metrics show the score and the drift, and a restart decides exactly as the uninterrupted run."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from slsbot.api import PaperSettings, RiskPolicySpec
from slsbot.api.strategy import MLModel, Sizing, SizingMethod
from slsbot_runtime.data.replay import ReplayFeed
from slsbot_runtime.domain.types import Candle, Signal
from slsbot_runtime.engine import LoopSettings, TradingLoop
from slsbot_runtime.engine.signals import AnomalyScoringDecider, ComponentDecider
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.monitoring.anomaly import AnomalyMonitor, AnomalySettings
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams

HOUR = 3_600_000
SYMBOL = "BTC/USDT"
THRESHOLD = 0.55  # low, so that the 800 real hours of early 2018 hold a fair number of vetoes


class InAndOut(StrategyComponent):
    """Long for an hour, flat for the next: an entry is proposed every other candle."""

    id = "in_and_out"
    Params = StrategyParams

    def __init__(self) -> None:
        super().__init__({})

    @property
    def warmup(self) -> int:
        return 0

    def on_candle(self, candle: Candle, features: object) -> Signal:
        return Signal(1.0 if (candle.ts // HOUR) % 2 == 0 else -1.0, 1.0, "in and out")


def make_loop(store: StateStore, metrics: RuntimeMetrics | None = None) -> TradingLoop:
    model = MLModel(name="odd-candles", kind="isolationForest", role="anomaly", lookback=300, retrain_every="168h")
    anomaly = AnomalySettings.from_spec(model, interval_ms=HOUR, drift_threshold=0.2)
    policy = RiskPolicySpec.model_validate(
        {
            "perTrade": {"maxPercent": 100},
            "volatilityHalt": {"enabled": False},
            "circuitBreaker": {"levels": []},
            "maxDrawdownPercent": 100,
            "dailyLossLimitPercent": 100,
            "anomaly": {"threshold": THRESHOLD, "count": 2, "window": "3h", "cooldown": "2h"},
        }
    )
    settings = LoopSettings(
        name="t",
        strategy_key="default/t",
        symbols=(SYMBOL,),
        interval_ms=HOUR,
        warmup_candles=10,
        starting_cash=10_000.0,
        quote_currency="USDT",
        fixed_quantity=0.05,
    )
    return TradingLoop(
        settings,
        exchange=PaperExchange(PaperSettings(), interval_ms=HOUR),
        store=store,
        deciders={SYMBOL: AnomalyScoringDecider(ComponentDecider(InAndOut()), AnomalyMonitor(SYMBOL, anomaly))},
        risk=RiskManager(policy, Sizing(method=SizingMethod.FIXED_QUANTITY, quantity=0.05), True),
        metrics=metrics,
    )


def test_vetoed_entries_are_recorded_risk_decisions_and_the_status_shows_score_and_drift(btc_2018: OHLCV) -> None:
    registry = CollectorRegistry()
    loop = make_loop(StateStore.open(":memory:"), RuntimeMetrics(registry))
    loop.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    decisions = loop.store.load_risk_decisions()
    vetoes = [d for d in decisions if d.rule == "anomaly"]
    print(f"{len(vetoes)} vetoes, {len(decisions)} refusals")
    assert len(vetoes) >= 3 and {d.rule for d in decisions} <= {"anomaly", "anomaly_halt"}
    for veto in vetoes:
        score = float(re.match(r"anomaly score (\d\.\d+) of the", veto.message).group(1))
        assert score > THRESHOLD and f"above the {THRESHOLD:.3f} threshold" in veto.message
    assert any(d.rule == "anomaly_halt" for d in decisions)
    monitor = loop.deciders[SYMBOL].monitor
    status = loop.status.to_json()
    assert status["anomaly_score"] == round(monitor.last_score, 6) == status["anomaly_scores"][SYMBOL]
    drift = status["drift"]["odd-candles"]
    assert drift["threshold"] == 0.2 and drift["fits"]["first"] == 1 and drift["fits"]["schedule"] >= 2
    names = [series["name"] for series in drift["series"]]
    assert names == ["volume_spike", "volatility_jump", "price_gap", "range_anomaly", "output"]
    assert all(series["symbol"] == SYMBOL and series["live"] > 0 for series in drift["series"])
    assert drift["drifted"] is any(series["drifted"] for series in drift["series"])
    # acted on as its own tracker says (an early refit asked for this drift), not merely drifted
    assert drift["early_retrain"] is monitor.drift.early_retrain(monitor.settings.model)
    value = registry.get_sample_value
    assert value("slsbot_runtime_anomaly_score", {"symbol": SYMBOL}) == status["anomaly_score"]
    assert value("slsbot_runtime_model_fits_total", {"model": "odd-candles", "kind": "first"}) == 1
    assert value("slsbot_runtime_model_drifted", {"model": "odd-candles"}) == (1 if drift["drifted"] else 0)
    assert value("slsbot_runtime_risk_rejections_total", {"rule": "anomaly"}) == len(vetoes)


def test_a_restart_rebuilds_the_detector_by_replay_and_decides_as_the_uninterrupted_run(
    btc_2018: OHLCV, tmp_path: Path
) -> None:
    whole = make_loop(StateStore.open(":memory:"))
    whole.run(ReplayFeed([btc_2018], interval_ms=HOUR))
    path = tmp_path / "state.db"
    first = make_loop(StateStore.open(path))
    first.run(ReplayFeed([btc_2018.slice(0, 520)], interval_ms=HOUR))  # stops after the first fit, mid-run
    first.store.close()
    second = make_loop(StateStore.open(path))
    second.run(ReplayFeed([btc_2018], interval_ms=HOUR))  # its first 520 candles are replayed, not traded
    expected = [(d.ts, d.rule, d.message) for d in whole.store.load_risk_decisions()]
    assert [(d.ts, d.rule, d.message) for d in second.store.load_risk_decisions()] == expected
    assert any(ts > btc_2018.ts[519] for ts, _, _ in expected)  # decisions after the restart too
    assert second.risk.snapshot() == whole.risk.snapshot()
