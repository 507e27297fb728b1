"""Feature values reach the strategies the runtime builds (``app.build_deciders`` and ``app.build_runtime``):
a member that declares ``required_features`` receives, at each candle, exactly the feature engine's value
at that candle, in live and replay alike; a member-free of features costs no feature engine."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from slsbot.api import RuntimeConfig
from slsbot_runtime.app import RuntimeOptions, build_deciders, build_runtime
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.data.replay import ReplayFeed
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.domain.types import Candle, Signal
from slsbot_runtime.features.engine import FeatureEngine
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams
from slsbot_runtime.strategy.registry import LIBRARY

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data/market/binance-spot-1h-2024"
HOUR = 3_600_000
START = datetime(2025, 3, 1, tzinfo=UTC)


class RsiParams(StrategyParams):
    above: float = 55.0


class RsiProbe(StrategyComponent):
    """Long while the engine's ``rsi_14`` is above ``above``, short below ``100 - above``, else no view;
    keeps every features mapping it was given."""

    id = "rsi_probe"
    Params = RsiParams
    required_features: ClassVar[tuple[str, ...]] = ("rsi_14", "atr_14_pct")

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self.seen: list[dict[str, float]] = []

    @property
    def warmup(self) -> int:
        return 15

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        self.seen.append(dict(features))
        rsi = features["rsi_14"]
        above = self.params.above
        return Signal(1.0 if rsi > above else -1.0 if rsi < 100 - above else 0.0)  # NaN (warming up): 0


class UnknownFeatureProbe(RsiProbe):
    id = "unknown_feature_probe"
    required_features: ClassVar[tuple[str, ...]] = ("rsi_99",)


class FailingProbe(RsiProbe):
    id = "failing_probe"

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        raise RuntimeError("user code broke")


REGISTRY = LIBRARY.extended(RsiProbe, UnknownFeatureProbe, FailingProbe)


def config(*members: dict[str, Any], **extra: Any) -> RuntimeConfig:
    return RuntimeConfig.model_validate(
        {
            "name": "features",
            "account": {"name": "paper", "exchange": "binance"},
            "symbols": ["BTC/USDT"],
            "ensemble": {"members": list(members)},
            "sizing": {"method": "fixedQuantity", "quantity": 0.01},
            "marketData": {
                "source": "replay",
                "dataDir": str(DATA),
                "start": START.isoformat(),
                "secondsPerCandle": 0,
                "warmupCandles": 20,
            },
            **extra,
        }
    )


PROBE = {"name": "probe", "strategy": "rsi_probe"}
SMA = {"name": "sma", "strategy": "sma_cross", "params": {"fast": 5, "slow": 20}}


@pytest.fixture(scope="module")
def history() -> Any:
    return load_history(DATA, "BTC/USDT", "1h", interval_ms=HOUR, start=START).slice(0, 400)


def probe_of(decider: Any) -> RsiProbe:
    return next(m.component for m in decider.ensemble.members if isinstance(m.component, RsiProbe))


def test_a_member_that_declares_features_gets_the_engines_values_at_each_candle(history: Any) -> None:
    decider = build_deciders(config(PROBE, SMA), registry=REGISTRY)["BTC/USDT"]
    candles = list(ReplayFeed([history], interval_ms=HOUR))

    for candle in candles:
        decider.decide(candle)

    seen = probe_of(decider).seen
    expected = FeatureEngine(["rsi_14", "atr_14_pct"]).compute(history)
    assert len(seen) == len(candles)
    assert all(set(values) == {"rsi_14", "atr_14_pct"} for values in seen)
    for name in ("rsi_14", "atr_14_pct"):
        got = np.array([values[name] for values in seen])
        assert np.isfinite(got[50:]).all()
        np.testing.assert_allclose(got, expected[name], rtol=1e-9, atol=1e-12, equal_nan=True)


def test_an_ensemble_that_reads_no_feature_runs_no_feature_engine() -> None:
    decider: Any = build_deciders(config(SMA))["BTC/USDT"]
    assert decider.features is None


def test_each_symbol_gets_its_own_feature_state(history: Any) -> None:
    two = config(PROBE, symbols=["BTC/USDT", "ETH/USDT"])
    deciders = build_deciders(two, registry=REGISTRY)
    assert deciders["BTC/USDT"].features is not deciders["ETH/USDT"].features  # type: ignore[attr-defined]
    candle = next(iter(ReplayFeed([history], interval_ms=HOUR)))
    deciders["BTC/USDT"].decide(candle)
    assert probe_of(deciders["ETH/USDT"]).seen == []


def test_an_unknown_feature_is_a_config_error_naming_the_members_params() -> None:
    with pytest.raises(ConfigError, match=r"ensemble\.members\[\]\.params: unknown feature\(s\) 'rsi_99'"):
        build_deciders(config({"name": "bad", "strategy": "unknown_feature_probe"}), registry=REGISTRY)


def test_the_runtime_trades_on_decisions_made_from_features(history: Any, tmp_path: Path) -> None:
    built = build_runtime(config(PROBE), RuntimeOptions(state_path=str(tmp_path / "state.db")), registry=REGISTRY)
    built.loop.run(built.feed)

    probe = probe_of(built.loop.deciders["BTC/USDT"])
    assert len(probe.seen) > 1000 and math.isfinite(probe.seen[-1]["rsi_14"])
    assert built.loop.ledger.trade_count >= 10  # in above 55, out below 45: features drove them
    reasons = {o.reason for o in built.loop.orders.orders.values()}
    assert any("(probe)" in reason for reason in reasons)
    built.store.close()


def test_a_failing_member_is_counted_in_the_runtimes_strategy_errors(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry)
    failing = {"name": "broken", "strategy": "failing_probe"}
    built = build_runtime(
        config(failing, SMA), RuntimeOptions(state_path=":memory:"), metrics=metrics, registry=REGISTRY
    )
    built.loop.start()
    for candle, _ in zip(built.feed, range(30), strict=False):
        built.loop.process(candle)
    errors = registry.get_sample_value("slsbot_runtime_strategy_errors_total", {"member": "broken"})
    assert errors == 30
