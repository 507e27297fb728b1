"""Real recorded candles for the monitoring tests: every BTC/USDT hour from 2017-08 to 2022-10."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from slsbot_runtime.features.base import OHLCV


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="session")
def btc_hours(market_data_dir: Path) -> OHLCV:
    """45,024 real hours with their real gaps (the 33 h outage from 2018-02-08 01:00 among them)."""
    rows = np.array(json.loads((market_data_dir / "binance-spot-1h-2017" / "BTC_USDT-1h.json").read_text()))
    return OHLCV("BTC/USDT", rows[:, 0].astype(np.int64), *(rows[:, i].astype(np.float64) for i in range(1, 6)))


def between(history: OHLCV, start: str, end: str) -> OHLCV:
    """The candles with open times in [start, end)."""
    first, last = np.searchsorted(history.ts, [ms(start), ms(end)])
    return history.slice(int(first), int(last))
