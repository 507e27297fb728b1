"""Fixtures for the risk manager's tests: real BTC candles around the March 2020 crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BTC_2017_FILE = Path("binance-spot-1h-2017") / "BTC_USDT-1h.json"


@pytest.fixture(scope="session")
def btc_hourly(market_data_dir: Path) -> list[tuple[int, float]]:
    """(open time ms, close) of every recorded BTC/USDT hour from 2017-08 to 2022-10."""
    rows = json.loads((market_data_dir / BTC_2017_FILE).read_text())
    return [(int(row[0]), float(row[4])) for row in rows]
