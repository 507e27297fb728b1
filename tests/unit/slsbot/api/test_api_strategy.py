"""Strategy: ensemble member names are unique, fixedQuantity sizing needs a quantity, symbols are markets."""

from __future__ import annotations

import pydantic
import pytest

from slsbot.api import StrategySpec
from slsbot.api.strategy import Ensemble, Sizing


def _spec(**changes) -> dict:
    spec = {
        "accountRef": {"name": "paper-binance"},
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}]},
    }
    spec.update(changes)
    return spec


def test_a_minimal_strategy_gets_the_documented_defaults():
    spec = StrategySpec.model_validate(_spec())
    assert spec.timeframe == "1h" and spec.long_only and not spec.paused
    assert spec.sizing.method == "risk" and spec.market_data.source == "replay"
    assert spec.ensemble.members[0].params == {"fast": 10, "slow": 30}


def test_ensemble_member_names_must_be_unique():
    members = [
        {"name": "sma", "strategy": "sma_cross"},
        {"name": "sma", "strategy": "ema_cross"},
        {"name": "rsi", "strategy": "rsi_reversion"},
    ]
    with pytest.raises(pydantic.ValidationError, match=r"ensemble\.members: names must be unique, sma repeated"):
        Ensemble.model_validate({"members": members})


def test_an_ensemble_needs_a_member():
    with pytest.raises(pydantic.ValidationError) as caught:
        StrategySpec.model_validate(_spec(ensemble={"members": []}))
    assert "ensemble.members" in str(caught.value)


def test_fixed_quantity_sizing_needs_a_quantity():
    with pytest.raises(pydantic.ValidationError, match=r"sizing\.quantity: fixedQuantity sizing needs a quantity"):
        Sizing.model_validate({"method": "fixedQuantity"})
    assert Sizing.model_validate({"method": "fixedQuantity", "quantity": 0.01}).quantity == 0.01


def test_risk_sizing_needs_no_quantity():
    assert Sizing.model_validate({"method": "risk"}).quantity is None


def test_each_symbol_may_appear_once():
    with pytest.raises(pydantic.ValidationError, match=r"symbols: each symbol may appear once"):
        StrategySpec.model_validate(_spec(symbols=["BTC/USDT", "BTC/USDT"]))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symbols": ["BTCUSDT"]}, "symbols.0"),
        ({"symbols": ["btc/usdt"]}, "symbols.0"),
        ({"timeframe": "2h"}, "timeframe"),
        ({"accountRef": {}}, "accountRef.name"),
        ({"marketData": {"secondsPerCandle": -1}}, "marketData.secondsPerCandle"),
        ({"risk": {"maxDrawdownPercent": -5}}, "risk.maxDrawdownPercent"),
        ({"runtime": {"imagePullPolicy": "Sometimes"}}, "runtime.imagePullPolicy"),
        ({"paused": "maybe"}, "paused"),
        ({"sizng": {}}, "sizng"),
    ],
)
def test_bad_values_are_rejected_naming_the_field(change, field):
    with pytest.raises(pydantic.ValidationError) as caught:
        StrategySpec.model_validate(_spec(**change))
    assert field in str(caught.value)


def test_futures_symbols_with_a_settle_currency_are_markets():
    assert StrategySpec.model_validate(_spec(symbols=["BTC/USDT:USDT"])).symbols == ["BTC/USDT:USDT"]


def test_a_rejected_assignment_leaves_the_sizing_as_it_was():
    sizing = Sizing.model_validate({"method": "risk"})
    with pytest.raises(pydantic.ValidationError, match=r"sizing\.quantity"):
        sizing.method = "fixedQuantity"
    assert sizing.method == "risk"
    assert sizing.model_fields_set == {"method"}
    sizing.quantity = 0.5
    sizing.method = "fixedQuantity"
    assert (sizing.method, sizing.quantity) == ("fixedQuantity", 0.5)
