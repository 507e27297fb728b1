"""The volatility halt's windows keep exact sums: their mean and variance are the exact ones rounded once, a
window rebuilt from its values answers as the one that slid there, equal values have no spread. The risk
snapshot is the dict ``RiskSnapshot`` would dump."""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction

from slsbot.api import RiskPolicySpec
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.risk.snapshot import RiskSnapshot
from slsbot_runtime.risk.volatility import ExactWindow, VolatilityHalt

HOUR = 3_600_000


def exact(values: list[float]) -> tuple[float, float]:
    fractions = [Fraction(v) for v in values]
    mean = sum(fractions) / len(fractions)
    variance = sum((v - mean) ** 2 for v in fractions) / (len(fractions) - 1)
    return float(mean), float(variance)


def test_mean_and_variance_are_exact_while_the_window_slides() -> None:
    rng = random.Random(11)
    window = ExactWindow(40)
    for i in range(2_000):
        window.append(rng.gauss(0.0, 0.01) * 10.0 ** rng.randint(-12, 3))
        if i >= 1 and i % 37 == 0:
            assert (window.mean(), window.variance()) == exact(list(window.values)), i


def test_a_window_rebuilt_from_its_values_answers_as_the_slid_one() -> None:
    rng = random.Random(3)
    slid = ExactWindow(24)
    for _ in range(500):
        slid.append(rng.lognormvariate(-5.0, 1.0))
    rebuilt = ExactWindow(24)
    for value in slid.values:
        rebuilt.append(value)
    assert (rebuilt.mean(), rebuilt.variance()) == (slid.mean(), slid.variance())


def test_equal_values_have_exactly_no_spread_after_other_values_left() -> None:
    window = ExactWindow(10)
    for value in [0.3, 1e-9, 7.5, 0.1] * 5 + [0.1] * 10:
        window.append(value)
    assert window.variance() == 0.0 and window.mean() == 0.1


def test_a_non_finite_value_poisons_the_window_only_while_it_is_in_it() -> None:
    window = ExactWindow(3)
    for value in (1.0, math.inf, 2.0):
        window.append(value)
    assert math.isnan(window.mean()) and math.isnan(window.variance())
    for value in (3.0, 4.0):
        window.append(value)
    assert (window.mean(), window.variance()) == exact([2.0, 3.0, 4.0])


def test_halted_symbols_follow_each_symbols_own_halt() -> None:
    halt = VolatilityHalt(enabled=True, window=3, threshold=4.0, cooldown_ms=2 * HOUR)
    closes = {
        "A/USDT": [100.0 + (i % 2) * 0.1 for i in range(60)],
        "B/USDT": [100.0 + (i % 2) * 0.1 for i in range(60)],
    }
    closes["A/USDT"][40:] = [close / 2 for close in closes["A/USDT"][40:]]  # A crashes at 40h, B at 47h
    closes["B/USDT"][47:] = [close / 2 for close in closes["B/USDT"][47:]]
    seen = set()
    for i in range(60):
        halt.observe(i * HOUR, {symbol: series[i] for symbol, series in closes.items()})
        for ts in (i * HOUR, i * HOUR + HOUR // 2):
            expected = tuple(sorted(s for s in halt.symbols if halt.halted_until(s, ts) is not None))
            assert halt.halted_symbols(ts) == expected, ts
            seen.add(expected)
    assert seen == {(), ("A/USDT",), ("B/USDT",)}
    rebuilt = halt.restored(RiskSnapshot.model_validate({"volatility": halt.snapshot()}).volatility)
    assert rebuilt.halted_symbols(60 * HOUR) == halt.halted_symbols(60 * HOUR)


def test_the_snapshot_is_what_the_snapshot_model_dumps() -> None:
    policy = RiskPolicySpec(
        volatility_halt={"window": 3, "cooldown": "2h"},
        circuit_breaker={"levels": [{"action": "reduceSize", "drawdownPercent": 5, "sizeMultiplier": 0.5}]},
    )
    risk = RiskManager(policy, None, True)
    closes = [100.0] * 12 + [140.0]  # flat, then a jump: an infinite z-score
    for i, close in enumerate(closes):
        risk.on_candle(i * HOUR, 10_000 - 80 * i, {"BTC/USDT": close, "ETH/USDT": 10})
    snapshot = risk.snapshot()
    assert snapshot["breaker"]["tripped"] and snapshot["volatility"]["BTC/USDT"]["zscore"] == math.inf
    assert RiskSnapshot.model_validate(snapshot).model_dump(mode="json") == snapshot
    assert isinstance(snapshot["equity"], float) and isinstance(snapshot["volatility"]["ETH/USDT"]["last_close"], float)


def test_the_snapshot_text_is_what_json_dumps_writes(btc_hourly: list[tuple[int, float]]) -> None:
    policy = RiskPolicySpec(
        volatility_halt={"window": 6, "cooldown": "2h"},
        circuit_breaker={"levels": [{"action": "stopEntries", "drawdownPercent": 3, "cooldown": "1h"}]},
    )
    risk = RiskManager(policy, None, True)
    assert risk.snapshot_json() == json.dumps(risk.snapshot(), sort_keys=True)  # before any candle
    symbols = ["BTC/USDT", "ÉTH/USDT", "FLAT/USDT"]
    tripped_seen = False
    for i, (ts, close) in enumerate(btc_hourly[:400]):
        closes = {"BTC/USDT": close, "ÉTH/USDT": close / 20 + i % 3, "FLAT/USDT": 1.0 if i < 300 else 2.0}
        risk.on_candle(ts, 10_000.0 - (i % 50) * 9, {s: closes[s] for s in symbols})
        if i % 37 == 0 or i in (300, 301):
            assert risk.snapshot_json() == json.dumps(risk.snapshot(), sort_keys=True), i
        if i == 300:  # FLAT jumped from a flat history: an infinite z-score, written as Infinity
            assert "Infinity" in risk.snapshot_json()
        if risk.snapshot()["breaker"]["tripped"]:
            assert risk.snapshot_json() == json.dumps(risk.snapshot(), sort_keys=True), i
            tripped_seen = True
    assert tripped_seen
    whole = RiskManager(policy, None, True)  # integer equity and closes are written as the floats they are
    whole.on_candle(0, 10_000, {"BTC/USDT": 100})
    whole.on_candle(3_600_000, 9_000, {"BTC/USDT": 90})
    assert whole.snapshot_json() == json.dumps(whole.snapshot(), sort_keys=True)
    restored = RiskManager(policy, None, True)
    restored.restore(json.loads(risk.snapshot_json()))
    assert restored.snapshot_json() == risk.snapshot_json()
