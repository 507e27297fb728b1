"""The anomaly rule: the veto of one candle, the halt after repeated anomalies, and its place in the snapshot."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from slsbot.api import RiskPolicySpec
from slsbot.api.strategy import MLModel
from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.types import PortfolioSnapshot, Position, Side
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.monitoring.anomaly import AnomalyDetector, AnomalySettings
from slsbot_runtime.risk.base import RiskAction, RiskRule, TradeProposal
from slsbot_runtime.risk.manager import RiskManager

HOUR = 3_600_000
EQUITY = 10_000.0
# only the anomaly rule speaks: the other limits are lifted
LIFTED = {
    "dailyLossLimitPercent": 100,
    "maxDrawdownPercent": 100,
    "circuitBreaker": {"levels": []},
    "volatilityHalt": {"enabled": False},
}


def policy(**anomaly: object) -> RiskPolicySpec:
    return RiskPolicySpec.model_validate({**LIFTED, "anomaly": {"threshold": 0.7, **anomaly}})


def book(ts: int, btc: float = 0.0) -> PortfolioSnapshot:
    positions = {"BTC/USDT": Position("BTC/USDT", btc, 20_000.0)} if btc else {}
    return PortfolioSnapshot(ts=ts, cash=EQUITY, equity=EQUITY, positions=positions)


def entry(symbol: str = "BTC/USDT") -> TradeProposal:
    return TradeProposal(symbol, Side.BUY, 20_000.0 if symbol == "BTC/USDT" else 1_000.0, 0.4, True)


def candle(risk: RiskManager, hour: int, **scores: float | None) -> None:
    closes = {"BTC/USDT": 20_000.0, "ETH/USDT": 1_000.0}
    risk.on_candle(hour * HOUR, EQUITY, closes, {s.replace("_", "/"): v for s, v in scores.items()})


def rules(risk: RiskManager, hour: int, symbol: str = "BTC/USDT") -> list[str]:
    decision = risk.evaluate(entry(symbol), book(hour * HOUR))
    return [event.rule for event in decision.events if decision.action is RiskAction.REJECTED]


def test_an_entry_on_a_candle_scoring_above_the_threshold_is_refused_naming_score_and_threshold() -> None:
    risk = RiskManager(policy(), None, True)
    candle(risk, 0, BTC_USDT=0.71, ETH_USDT=0.45)
    decision = risk.evaluate(entry(), book(0))
    assert decision.action is RiskAction.REJECTED and [e.rule for e in decision.events] == [RiskRule.ANOMALY]
    assert decision.events[0].message == (
        "anomaly score 0.710 of the 1970-01-01T00:00Z candle on BTC/USDT is above the 0.700 threshold "
        "(riskPolicy anomaly.threshold): no new entry on this candle"
    )
    assert rules(risk, 0, "ETH/USDT") == []  # the other symbol's candle was ordinary
    exit_ = TradeProposal("BTC/USDT", Side.SELL, 20_000.0, 1.0, False)
    assert risk.evaluate(exit_, book(0, btc=0.1)).quantity == 0.1  # exits always pass
    candle(risk, 1, BTC_USDT=0.70)  # at the threshold is not above it
    assert rules(risk, 1) == []
    candle(risk, 2, BTC_USDT=None)  # the detector has no score (warming up again): nothing to veto
    assert rules(risk, 2) == [] and risk.anomaly_scores() == {"BTC/USDT": None, "ETH/USDT": 0.45}
    candle(risk, 3, BTC_USDT=0.70004)  # just above it: the message shows the digits that tell them apart
    assert "anomaly score 0.70004 of the 1970-01-01T03:00Z candle on BTC/USDT is above the 0.70000 threshold" in (
        risk.evaluate(entry(), book(3 * HOUR)).events[0].message
    )


def test_a_disabled_rule_keeps_the_scores_but_refuses_nothing() -> None:
    risk = RiskManager(policy(enabled=False, count=1), None, True)
    candle(risk, 0, BTC_USDT=0.99)
    assert rules(risk, 0) == [] and risk.anomaly_score("BTC/USDT") == 0.99 and risk.state().entries_allowed


def test_repeated_anomalies_halt_every_entry_until_the_cooldown_after_the_last() -> None:
    risk = RiskManager(policy(count=3, window="6h", cooldown="4h"), None, True)
    candle(risk, 0, BTC_USDT=0.8)
    candle(risk, 7, BTC_USDT=0.8)  # 7 h later: the first has left the 6 h window
    candle(risk, 8, BTC_USDT=0.5)
    assert rules(risk, 8, "ETH/USDT") == [] and risk.state().anomaly_halted_until is None
    candle(risk, 9, BTC_USDT=0.8)
    assert rules(risk, 9, "ETH/USDT") == []  # two within the window
    candle(risk, 12, BTC_USDT=0.9)  # the third within 6 h (hours 7, 9, 12): halted
    state = risk.state()
    assert not state.entries_allowed and state.anomaly_halted_until == 16 * HOUR and not risk.must_flatten
    assert rules(risk, 12) == [RiskRule.ANOMALY, RiskRule.ANOMALY_HALT]
    message = risk.evaluate(entry("ETH/USDT"), book(12 * HOUR)).events[0].message
    assert message.startswith("anomaly halt: BTC/USDT had 3 candles scoring above 0.700 within 6h (tripped at ")
    assert "no new entries until 1970-01-01T16:00Z" in message
    candle(risk, 13, BTC_USDT=0.8)  # still 3 within the window (hours 9, 12, 13): the halt extends
    candle(risk, 16, BTC_USDT=0.4)
    assert rules(risk, 16, "ETH/USDT") == [RiskRule.ANOMALY_HALT]
    candle(risk, 17, BTC_USDT=0.4)  # 4 h after the last anomalous candle
    assert rules(risk, 17, "ETH/USDT") == [] and risk.state().entries_allowed
    assert risk.anomaly_halts == 1


def test_a_flatten_and_halt_action_closes_every_position_during_the_halt() -> None:
    risk = RiskManager(policy(count=2, window="24h", cooldown="2h", action="flattenAndHalt"), None, True)
    candle(risk, 0, BTC_USDT=0.9)
    assert not risk.must_flatten
    candle(risk, 1, BTC_USDT=0.9)
    assert risk.must_flatten and risk.state().must_flatten
    assert risk.halt_message().startswith("risk halt: anomaly halt: BTC/USDT had 2 candles scoring above 0.700")
    candle(risk, 2, BTC_USDT=0.3)
    assert risk.must_flatten
    candle(risk, 3, BTC_USDT=0.3)
    assert not risk.must_flatten and risk.halt_message() is None


def test_a_candle_given_again_is_not_counted_twice() -> None:
    risk = RiskManager(policy(count=2, window="24h"), None, True)
    candle(risk, 0, BTC_USDT=0.9)
    candle(risk, 0, BTC_USDT=0.9)
    assert risk.state().entries_allowed


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def march_2020_scores(market_data_dir) -> tuple[OHLCV, np.ndarray]:
    """Real BTC hours from 2019-11 to 2020-03-20 and a real detector's scores (fitted before March 2020)."""
    rows = np.array(json.loads((market_data_dir / "binance-spot-1h-2017" / "BTC_USDT-1h.json").read_text()))
    first, last = np.searchsorted(rows[:, 0], [ms("2019-11-01"), ms("2020-03-20")])
    history = OHLCV("BTC/USDT", rows[first:last, 0].astype(np.int64), *(rows[first:last, i] for i in range(1, 6)))
    spec = MLModel(name="anomaly", kind="isolationForest", role="anomaly")
    detector = AnomalyDetector(AnomalySettings.from_spec(spec, interval_ms=HOUR, drift_threshold=0.2))
    matrix = detector.feature_matrix(history)
    fitted_until = int(np.searchsorted(history.ts, ms("2020-03-01")))
    train = matrix[:fitted_until]
    detector.fit(train[np.isfinite(train).all(axis=1)][-2000:])
    return history, detector.score_history(history)


def test_restore_gives_identical_anomaly_decisions_through_the_march_2020_crash(market_data_dir) -> None:
    history, scores = march_2020_scores(market_data_dir)
    risk_policy = RiskPolicySpec.model_validate({**LIFTED, "anomaly": {}})  # the defaults: 0.75, 3 in 24h, 12h
    start = int(np.searchsorted(history.ts, ms("2020-03-05")))
    cut = int(np.searchsorted(history.ts, ms("2020-03-13T02:00")))

    def step(risk: RiskManager, i: int) -> list[object]:
        ts, close = int(history.ts[i]), float(history.close[i])
        score = None if np.isnan(scores[i]) else float(scores[i])
        state = risk.on_candle(ts, EQUITY, {"BTC/USDT": close}, {"BTC/USDT": score})
        proposal = TradeProposal("BTC/USDT", Side.BUY, close, 0.4, True)
        return [state, risk.evaluate(proposal, PortfolioSnapshot(ts=ts, cash=EQUITY, equity=EQUITY))]

    original = RiskManager(risk_policy, None, True)
    for i in range(start, cut):
        step(original, i)
    saved = json.loads(original.snapshot_json())
    assert saved == original.snapshot() and saved["version"] == 2
    assert saved["anomaly"]["halted_until"] is not None, "the crash should have halted entries before the cut"
    restored = RiskManager(risk_policy, None, True)
    restored.restore(saved)
    seen = set()
    for i in range(cut, len(history)):
        expected = step(original, i)
        assert step(restored, i) == expected
        seen.add(tuple(event.rule for event in expected[1].events))
    assert {(), (RiskRule.ANOMALY_HALT,)} <= seen  # the replay crossed the halt and its release
    assert restored.snapshot() == original.snapshot()
    assert json.loads(restored.snapshot_json()) == restored.snapshot()


def test_a_version_1_snapshot_restores_with_no_anomaly_state() -> None:
    risk = RiskManager(policy(), None, True)
    candle(risk, 0, BTC_USDT=0.9)
    data = json.loads(risk.snapshot_json())
    del data["anomaly"]
    data["version"] = 1
    restored = RiskManager(policy(), None, True)
    restored.restore(data)
    assert restored.anomaly_scores() == {} and restored.snapshot()["version"] == 2
    data["anomaly"] = {}
    with pytest.raises(StateError, match="risk snapshot field anomaly: a version 1 snapshot has no anomaly state"):
        restored.restore(data)
