"""Loaders on the real recorded files, and bad files rejected with the file and row named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slsbot_runtime.data.loaders import (
    load_binance_klines,
    load_candle_file,
    load_freqtrade_feather,
    load_freqtrade_json,
)
from slsbot_runtime.domain.errors import DataError

HOUR = 3_600_000


def test_freqtrade_json_real_file(market_data_dir: Path) -> None:
    history = load_freqtrade_json(market_data_dir / "binance-spot-1h-2017" / "BTC_USDT-1h.json", "BTC/USDT")
    assert len(history) == 45_024
    assert history.ts.dtype == np.int64
    assert int(history.ts[0]) == 1502942400000  # 2017-08-17 04:00 UTC
    first = history.candle(0)
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        4261.48,
        4313.62,
        4261.32,
        4308.83,
        47.181009,
    )


def test_freqtrade_feather_real_file(market_data_dir: Path) -> None:
    path = market_data_dir / "binance-spot-1h-2024" / "ETH_USDT-1h.feather"
    history = load_freqtrade_feather(path, "ETH/USDT")
    frame = pd.read_feather(path)
    assert len(history) == len(frame) > 12_000
    assert int(history.ts[0]) == int(frame["date"].iloc[0].timestamp() * 1000)
    assert int(history.ts[-1]) == int(frame["date"].iloc[-1].timestamp() * 1000)
    assert np.diff(history.ts).min() == HOUR
    assert history.close[-1] == frame["close"].iloc[-1]


def test_binance_klines_real_file(market_data_dir: Path) -> None:
    path = market_data_dir / "binance-futures-mark-klines" / "BTCUSDT-1h-2020-01-12.json"
    history = load_binance_klines(path, "BTC/USDT")
    raw = json.loads(path.read_text())
    assert len(history) == len(raw)
    assert history.open[0] == float(raw[0][1]) and history.close[-1] == float(raw[-1][4])
    assert load_candle_file(path, "BTC/USDT").ts.tolist() == history.ts.tolist()  # picked by shape


def _write(tmp_path: Path, rows: object) -> Path:
    path = tmp_path / "X_USDT-1h.json"
    path.write_text(json.dumps(rows))
    return path


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([[0, 1, 1, 1, 1, 1], [HOUR, 1, 1, 1, 1]], "row 1: expected 6 fields"),
        ([[0, 1, 1, 1, 1, 1], [HOUR, 1, "x", 1, 1, 1]], "row 1 column 2: 'x' is not a number"),
        ([[0, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]], "row 1: open time 0 is not after"),
        ([[0, 1, 1, 1, 1, 1], [HOUR, 1, 1, 1, None, 1]], "row 1: close is nan, not a finite number"),
        ([[0.5, 1, 1, 1, 1, 1]], "row 0: open time 0.5 is not a whole number"),
        ({"not": "rows"}, "expected a JSON array"),
    ],
)
def test_bad_rows_name_the_file_and_row(tmp_path: Path, rows: object, expected: str) -> None:
    path = _write(tmp_path, rows)
    with pytest.raises(DataError, match=expected) as caught:
        load_freqtrade_json(path, "X/USDT")
    assert str(path) in str(caught.value)


def test_non_finite_price_is_named(tmp_path: Path) -> None:
    path = tmp_path / "X_USDT-1h.json"
    path.write_text("[[0, 1, 1, 1, 1, 1], [3600000, 1, NaN, 1, 1, 1]]")
    with pytest.raises(DataError, match=r"row 1: high is nan"):
        load_freqtrade_json(path, "X/USDT")


def test_truncated_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "X_USDT-1h.json"
    path.write_text("[[0, 1, 1, 1, 1, 1], [36000")
    with pytest.raises(DataError, match="not valid JSON at line 1"):
        load_freqtrade_json(path, "X/USDT")


def test_feather_without_a_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "X_USDT-1h.feather"
    pd.DataFrame({"date": pd.to_datetime([0], unit="ms", utc=True), "open": [1.0]}).to_feather(path)
    with pytest.raises(DataError, match=r"missing column.*high, low, close, volume"):
        load_freqtrade_feather(path, "X/USDT")


def test_feather_dates_in_any_zone_and_unit_are_utc_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "X_USDT-1h.feather"
    dates = pd.to_datetime([0, HOUR], unit="ms", utc=True).tz_convert("Asia/Tokyo").as_unit("s")
    frame = pd.DataFrame({"date": dates, "open": [1.0, 2.0], "high": [1.0, 2.0], "low": [1.0, 2.0]})
    frame["close"], frame["volume"] = [1.0, 2.0], [3, 4]  # an integer volume column is read as numbers too
    frame.to_feather(path)
    history = load_freqtrade_feather(path, "X/USDT")
    assert history.ts.tolist() == [0, HOUR] and history.ts.dtype == np.int64
    assert history.volume.tolist() == [3.0, 4.0] and history.volume.dtype == np.float64


def test_feather_dates_without_a_zone_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "X_USDT-1h.feather"
    frame = pd.DataFrame({"date": pd.to_datetime([0], unit="ms")}).assign(open=1.0, high=1.0, low=1.0)
    frame.assign(close=1.0, volume=1.0).to_feather(path)
    with pytest.raises(DataError, match="column date has no time zone"):
        load_freqtrade_feather(path, "X/USDT")


def test_a_missing_feather_value_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "X_USDT-1h.feather"
    frame = pd.DataFrame({"date": pd.to_datetime([0, HOUR, 2 * HOUR], unit="ms", utc=True)})
    frame = frame.assign(open=1.0, high=1.0, low=1.0, close=1.0, volume=pd.array([1, None, 1], "Int64"))
    frame.to_feather(path)
    with pytest.raises(DataError, match=r"row 1: volume is missing"):
        load_freqtrade_feather(path, "X/USDT")
