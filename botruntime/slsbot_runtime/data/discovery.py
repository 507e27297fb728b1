"""Finding and loading the recorded candles of one symbol and timeframe in a data folder.

Names looked for, in this order (the first that exists wins):

1. freqtrade feather: ``BTC_USDT-1h.feather``
2. freqtrade JSON: ``BTC_USDT-1h.json``
3. Binance kline chunks: ``BTCUSDT-1h-*.json``, read in name order and joined; a candle repeated at a
   chunk boundary is kept once.

A futures symbol ``BTC/USDT:USDT`` maps to ``BTC_USDT_USDT`` (freqtrade's spelling).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from slsbot_runtime.data.loaders import load_candle_file
from slsbot_runtime.domain.errors import DataError
from slsbot_runtime.domain.ohlcv import OHLCV


def freqtrade_stem(symbol: str, timeframe: str) -> str:
    return f"{symbol.replace('/', '_').replace(':', '_')}-{timeframe}"


def find_candle_files(data_dir: Path, symbol: str, timeframe: str) -> list[Path]:
    """The files holding ``symbol`` at ``timeframe`` in ``data_dir``; DataError naming what was looked for."""
    if not data_dir.is_dir():
        raise DataError(f"marketData.dataDir: {data_dir} is not a folder")
    stem = freqtrade_stem(symbol, timeframe)
    for name in (f"{stem}.feather", f"{stem}.json"):
        if (data_dir / name).is_file():
            return [data_dir / name]
    chunks = sorted(data_dir.glob(f"{symbol.split(':')[0].replace('/', '')}-{timeframe}-*.json"))
    if chunks:
        return chunks
    raise DataError(
        f"marketData.dataDir: no candles for {symbol} {timeframe} in {data_dir}; looked for {stem}.feather, "
        f"{stem}.json and {symbol.split(':')[0].replace('/', '')}-{timeframe}-*.json"
    )


def load_history(
    data_dir: Path, symbol: str, timeframe: str, *, interval_ms: int, start: datetime | None = None
) -> OHLCV:
    """Every recorded candle of ``symbol`` from ``start`` on, as one OHLCV.

    Candles closer together than the timeframe mean the file holds another timeframe: DataError. Wider
    steps are gaps; they are kept (the trading loop detects and handles them).
    """
    parts = [load_candle_file(path, symbol) for path in find_candle_files(data_dir, symbol, timeframe)]
    history = _join(parts)
    if len(history) > 1:
        steps = np.diff(history.ts)
        short = np.flatnonzero(steps < interval_ms)
        if short.size:
            row = int(short[0]) + 1
            raise DataError(
                f"{symbol} {timeframe} in {data_dir}: row {row}: candles {int(steps[short[0]])} ms apart, less than "
                f"the {timeframe} timeframe ({interval_ms} ms); is this file another timeframe?"
            )
    if start is not None:
        first = int(np.searchsorted(history.ts, int(start.timestamp() * 1000), side="left"))
        history = history.slice(first, len(history))
    if len(history) == 0:
        raise DataError(f"{symbol} {timeframe} in {data_dir}: no candles at or after marketData.start {start}")
    return history


def _join(parts: list[OHLCV]) -> OHLCV:
    if len(parts) == 1:
        return parts[0]
    kept: list[OHLCV] = []
    last_ts: int | None = None
    for part in parts:
        if last_ts is not None and len(part):
            part = part.slice(int(np.searchsorted(part.ts, last_ts, side="right")), len(part))
        if len(part):
            kept.append(part)
            last_ts = int(part.ts[-1])
    symbol = parts[0].symbol
    return OHLCV(
        symbol,
        np.concatenate([p.ts for p in kept]) if kept else np.empty(0, np.int64),
        *(
            np.concatenate([getattr(p, c) for p in kept]) if kept else np.empty(0)
            for c in ("open", "high", "low", "close", "volume")
        ),
    )
