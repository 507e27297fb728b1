"""Finding a symbol's files in a data folder and joining Binance kline chunks."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slsbot_runtime.data.discovery import find_candle_files, load_history
from slsbot_runtime.domain.errors import DataError

HOUR = 3_600_000


def test_freqtrade_names(market_data_dir: Path) -> None:
    assert find_candle_files(market_data_dir / "binance-spot-1h-2024", "BTC/USDT", "1h") == [
        market_data_dir / "binance-spot-1h-2024" / "BTC_USDT-1h.feather"
    ]
    assert find_candle_files(market_data_dir / "binance-spot-1h-2017", "ETH/USDT", "1h")[0].name == "ETH_USDT-1h.json"


def test_feather_wins_over_json(tmp_path: Path, market_data_dir: Path) -> None:
    shutil.copy(market_data_dir / "binance-spot-1h-2024" / "BTC_USDT-1h.feather", tmp_path)
    (tmp_path / "BTC_USDT-1h.json").write_text("[]")
    assert [p.name for p in find_candle_files(tmp_path, "BTC/USDT", "1h")] == ["BTC_USDT-1h.feather"]


def test_missing_symbol_lists_what_was_looked_for(market_data_dir: Path) -> None:
    with pytest.raises(DataError, match=r"no candles for SOL/USDT 1h .*SOL_USDT-1h.feather, SOL_USDT-1h.json"):
        find_candle_files(market_data_dir / "binance-spot-1h-2017", "SOL/USDT", "1h")


def test_kline_chunks_join_in_order_without_the_repeated_boundary(tmp_path: Path, market_data_dir: Path) -> None:
    rows = json.loads((market_data_dir / "binance-futures-mark-klines" / "BTCUSDT-1h-2020-01-12.json").read_text())
    (tmp_path / "BTCUSDT-1h-2020-01-01.json").write_text(json.dumps(rows[:300]))
    (tmp_path / "BTCUSDT-1h-2020-01-12.json").write_text(json.dumps(rows[299:]))  # one candle repeated
    history = load_history(tmp_path, "BTC/USDT", "1h", interval_ms=HOUR)
    assert history.ts.tolist() == [row[0] for row in rows]
    assert history.close.tolist() == [float(row[4]) for row in rows]


def test_another_timeframe_is_refused(tmp_path: Path, market_data_dir: Path) -> None:
    shutil.copy(market_data_dir / "binance-spot-1h-2024" / "BTC_USDT-1h.feather", tmp_path / "BTC_USDT-4h.feather")
    with pytest.raises(DataError, match=r"row 1: candles 3600000 ms apart, less than the 4h timeframe"):
        load_history(tmp_path, "BTC/USDT", "4h", interval_ms=4 * HOUR)


def test_start_skips_earlier_candles(market_data_dir: Path) -> None:
    start = datetime(2018, 2, 8, tzinfo=UTC)
    history = load_history(market_data_dir / "binance-spot-1h-2017", "BTC/USDT", "1h", interval_ms=HOUR, start=start)
    assert int(history.ts[0]) == int(start.timestamp() * 1000)
    with pytest.raises(DataError, match=r"no candles at or after marketData\.start"):
        load_history(
            market_data_dir / "binance-spot-1h-2017",
            "BTC/USDT",
            "1h",
            interval_ms=HOUR,
            start=datetime(2030, 1, 1, tzinfo=UTC),
        )
