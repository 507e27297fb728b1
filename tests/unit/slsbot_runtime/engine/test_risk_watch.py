"""``RiskWatch``: one line per breaker level tripped or released and per flatten verdict change, and the levels
still tripped said again after a restart."""

from __future__ import annotations

import logging

from slsbot.api import RiskPolicySpec
from slsbot.api.strategy import Sizing
from slsbot_runtime.domain.strategy_log import StrategyLog
from slsbot_runtime.engine.risk_watch import RiskWatch
from slsbot_runtime.risk.manager import RiskManager

HOUR = 3_600_000
T0 = 1_700_000_000_000 // HOUR * HOUR
POLICY = RiskPolicySpec.model_validate(
    {
        "circuitBreaker": {"levels": [{"action": "reduceSize", "drawdownPercent": 1, "sizeMultiplier": 0.5}]},
        "maxDrawdownPercent": 50,
        "dailyLossLimitPercent": 50,
        "volatilityHalt": {"enabled": False},
    }
)
LOG = StrategyLog(logging.getLogger("slsbot_runtime.engine.loop"), "default/t")


def feed(risk: RiskManager, watch: RiskWatch, equities: list[float]) -> None:
    for hour, equity in enumerate(equities):
        risk.observe(T0 + hour * HOUR, equity, {"BTC/USDT": 100.0})
        if risk.breaker_changes != watch.seen:
            watch.changed(T0 + hour * HOUR, risk.must_flatten, False)


def test_a_level_is_said_when_it_trips_and_when_it_releases(caplog) -> None:
    risk = RiskManager(POLICY, Sizing(), True)
    watch = RiskWatch(risk, LOG)
    with caplog.at_level("INFO", logger="slsbot_runtime"):
        feed(risk, watch, [10_000.0, 9_850.0, 9_840.0, 10_100.0])
    lines = [r.getMessage() for r in caplog.records]
    tripped, released = lines
    assert tripped.startswith("default/t: circuit breaker level 1 (") and tripped.endswith(
        "tripped: drawdown 1.50% from the peak"
    )
    assert released.startswith("default/t: circuit breaker level 1 released at 2023-11-15T01:00Z: drawdown 0.00% (was")


def test_a_restored_risk_manager_says_which_levels_are_still_tripped(caplog) -> None:
    risk = RiskManager(POLICY, Sizing(), True)
    feed(risk, RiskWatch(risk, LOG), [10_000.0, 9_850.0])
    restored = RiskManager(POLICY, Sizing(), True)
    restored.restore(risk.snapshot())
    watch = RiskWatch(restored, LOG)
    with caplog.at_level("INFO", logger="slsbot_runtime"):
        watch.resume()
        feed(restored, watch, [])  # nothing moved: nothing more said
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("default/t: circuit breaker level 1") and line.endswith(": still tripped")
    assert watch.seen == restored.breaker_changes


def test_the_flatten_verdict_is_said_when_it_starts_and_ends(caplog) -> None:
    risk = RiskManager(RiskPolicySpec(kill_switch=True), Sizing(), True)
    watch = RiskWatch(risk, LOG)
    with caplog.at_level("INFO", logger="slsbot_runtime"):
        watch.changed(T0, True, False)
        watch.changed(T0 + HOUR, False, True)
        watch.changed(T0 + 2 * HOUR, False, False)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "default/t: the kill switch is on (riskPolicy killSwitch): every position is closed, no entry is opened",
        "default/t: the risk halt is over at 2023-11-14T23:00Z: entries are allowed again",
    ]
