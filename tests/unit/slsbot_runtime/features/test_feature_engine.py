from __future__ import annotations

import numpy as np
import pytest

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.features.engine import ALL_FEATURES, CATALOGUE, FeatureEngine


def _step(engine: FeatureEngine, history: OHLCV) -> dict[str, np.ndarray]:
    live = engine.incremental()
    rows = [live.update(history.candle(i)) for i in range(len(history))]
    return {name: np.array([row[name] for row in rows]) for name in engine.names}


@pytest.fixture(scope="module")
def stepped(market: OHLCV) -> tuple[OHLCV, dict[str, np.ndarray]]:
    return market, _step(FeatureEngine(), market)


def test_the_catalogue_has_at_least_60_uniquely_named_features_in_five_families() -> None:
    engine = FeatureEngine()
    assert len(engine.names) >= 60
    assert len(set(engine.names)) == len(engine.names)
    assert set(engine.families().values()) == {"momentum", "volatility", "volume", "statistical", "calendar"}
    for block in CATALOGUE:
        assert block.__doc__, f"{type(block).__name__} documents its features"


def test_incremental_values_equal_batch_values_for_every_feature(stepped) -> None:
    history, live = stepped
    batch = FeatureEngine().compute(history)
    assert set(batch) == set(live) == set(ALL_FEATURES)
    for name in ALL_FEATURES:
        np.testing.assert_array_equal(np.isnan(batch[name]), np.isnan(live[name]), err_msg=f"{name}: NaN pattern")
        np.testing.assert_allclose(live[name], batch[name], rtol=1e-8, atol=1e-9, err_msg=name)


def test_every_feature_is_defined_and_finite_from_its_blocks_warmup_on(stepped) -> None:
    _, live = stepped
    for block in CATALOGUE:
        for name in block.names:
            values = live[name]
            assert np.isfinite(values[block.warmup - 1 :]).all(), f"{name} undefined after warmup {block.warmup}"
        first = [int(np.flatnonzero(~np.isnan(live[name]))[0]) for name in block.names]
        assert max(first) == block.warmup - 1, f"{type(block).__name__} declares warmup {block.warmup}"
    assert FeatureEngine().warmup == max(block.warmup for block in CATALOGUE)


@pytest.mark.parametrize("cut", [1, 150, 1_000, 4_321])
def test_no_lookahead_values_at_t_do_not_change_when_later_candles_arrive(market: OHLCV, cut: int) -> None:
    engine = FeatureEngine()
    full = engine.compute(market)
    prefix = engine.compute(market.slice(0, cut))
    for name in engine.names:
        np.testing.assert_array_equal(prefix[name], full[name][: min(cut, len(market))], err_msg=name)


def test_a_selection_computes_only_the_named_features(btc_2024: OHLCV) -> None:
    engine = FeatureEngine(["rsi_14", "atr_14_pct", "rsi_14"])
    assert engine.names == ("rsi_14", "atr_14_pct")
    assert len(engine.blocks) == 2
    history = btc_2024.slice(0, 300)
    batch = engine.compute(history)
    assert set(batch) == {"rsi_14", "atr_14_pct"}
    np.testing.assert_array_equal(batch["rsi_14"], FeatureEngine().compute(history)["rsi_14"])
    assert set(engine.incremental().update(history.candle(0))) == {"rsi_14", "atr_14_pct"}


def test_an_unknown_feature_is_refused_with_the_field_and_a_suggestion() -> None:
    with pytest.raises(
        ConfigError, match=r"^ml\.models\[m\]\.features: unknown feature\(s\) 'rsi14' \(did you mean rsi_14\?\)"
    ):
        FeatureEngine(["rsi_14", "rsi14"], field="ml.models[m].features")


def test_incremental_updates_return_a_fresh_mapping_the_caller_may_keep(btc_2024: OHLCV) -> None:
    live = FeatureEngine().incremental()
    first = live.update(btc_2024.candle(0))
    kept = dict(first)
    second = live.update(btc_2024.candle(1))
    assert first == kept
    assert first is not second


def test_zero_volume_candles_give_neutral_volume_features(mark_klines: OHLCV) -> None:
    values = FeatureEngine().compute(mark_klines)
    start = 200
    assert (values["volume_z_24"][start:] == 0).all()
    assert (values["mfi_14"][start:] == 50).all()
    assert (values["vwap_dist_24"][start:] == 0).all()
    assert (values["volume_ratio_24"][start:] == 1).all()
