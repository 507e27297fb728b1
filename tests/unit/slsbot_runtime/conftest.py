"""Real recorded candles for the runtime unit tests (data/market, committed with the repository)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slsbot_runtime.features.base import OHLCV

MARKET = Path(__file__).resolve().parents[3] / "data" / "market"


def _feather(name: str, symbol: str) -> OHLCV:
    frame = pd.read_feather(MARKET / "binance-spot-1h-2024" / name)
    ts = frame["date"].astype("datetime64[ns, UTC]").array.asi8 // 1_000_000
    cols = [frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")]
    return OHLCV(symbol, np.asarray(ts, dtype=np.int64), *cols)


def _json_rows(path: Path, symbol: str) -> OHLCV:
    rows = np.array([[float(v) for v in row[:6]] for row in json.loads(path.read_text())])
    return OHLCV(symbol, rows[:, 0].astype(np.int64), *(rows[:, i].copy() for i in range(1, 6)))


@pytest.fixture(scope="session")
def btc_2024() -> OHLCV:
    return _feather("BTC_USDT-1h.feather", "BTC/USDT")


@pytest.fixture(scope="session")
def eth_2017() -> OHLCV:
    """ETH 2017-2022 with its real gaps; the first 12,000 candles keep the tests fast."""
    return _json_rows(MARKET / "binance-spot-1h-2017" / "ETH_USDT-1h.json", "ETH/USDT").slice(0, 12_000)


@pytest.fixture(scope="session")
def mark_klines() -> OHLCV:
    """Futures mark-price candles: volume is always 0."""
    return _json_rows(MARKET / "binance-futures-mark-klines" / "BTCUSDT-1h-2020-01-12.json", "BTC/USDT")


@pytest.fixture(scope="session")
def btc_2018() -> OHLCV:
    """800 hours of BTC/USDT from 2018-01-20, across the real 33 h outage of 2018-02-08 (the trading loop's tests)."""
    from slsbot_runtime.data.discovery import load_history

    history = load_history(
        MARKET / "binance-spot-1h-2017",
        "BTC/USDT",
        "1h",
        interval_ms=3_600_000,
        start=datetime(2018, 1, 20, tzinfo=UTC),
    )
    return history.slice(0, 800)


@pytest.fixture(scope="session", params=["btc_2024", "eth_2017", "mark_klines"])
def market(request: pytest.FixtureRequest) -> OHLCV:
    return request.getfixturevalue(request.param)
