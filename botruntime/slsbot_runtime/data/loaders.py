"""Readers for the recorded candle formats slsbot meets, each returning a ``features.base.OHLCV``.

* freqtrade JSON: one array of rows ``[open_ms, open, high, low, close, volume]``.
* freqtrade feather: Arrow IPC with a UTC ``date`` column and ``open, high, low, close, volume``.
* raw Binance klines (REST ``/klines`` answers saved to disk): rows of 12 fields, prices as strings.

Every reader validates what it returns: six finite numbers per row, open times strictly increasing. A bad
file raises ``DataError`` naming the file and the row, so a broken download is found before it trades.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from slsbot_runtime.domain.errors import DataError
from slsbot_runtime.domain.ohlcv import OHLCV

COLUMNS = ("open", "high", "low", "close", "volume")


def load_freqtrade_json(path: Path, symbol: str) -> OHLCV:
    """Candles from a freqtrade JSON file of ``[open_ms, o, h, l, c, v]`` rows."""
    rows = _read_json_rows(path)
    return _rows_to_ohlcv(rows, path, symbol, width=6)


def load_binance_klines(path: Path, symbol: str) -> OHLCV:
    """Candles from saved Binance kline arrays ``[open_ms, "o", "h", "l", "c", "v", close_ms, ...]``."""
    rows = _read_json_rows(path)
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) < 6:
            raise DataError(f"{path}: row {index}: expected a Binance kline of at least 6 fields, got {row!r:.80}")
    return _rows_to_ohlcv([row[:6] for row in rows], path, symbol, width=6)


def load_freqtrade_feather(path: Path, symbol: str) -> OHLCV:
    """Candles from a freqtrade feather file (``date`` in UTC plus the five price and volume columns).

    Read with pyarrow straight into numpy, without pandas: importing pandas costs a runtime about a second of CPU
    and 50 MB of memory, for a table of six columns."""
    import pyarrow as pa  # imported here: the live runtime never reads feather files

    try:
        table = _read_feather(path)
    except (OSError, ValueError, pa.ArrowException) as error:
        raise DataError(f"{path}: cannot read as feather: {error}") from error
    missing = [name for name in ("date", *COLUMNS) if name not in table.column_names]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; a freqtrade feather file has date, "
            f"open, high, low, close, volume"
        )
    dates = table.column("date")
    if not pa.types.is_timestamp(dates.type) or dates.type.tz is None:
        raise DataError(f"{path}: column date has no time zone; freqtrade writes it in UTC")
    # Arrow keeps a timestamp as an integer count of ``unit`` since the epoch in UTC, whatever its zone says.
    counts = _column(path, "date", dates, pa.int64(), np.int64)
    ts = counts.view(f"datetime64[{dates.type.unit}]").astype("datetime64[ms]").astype(np.int64)
    arrays = [_column(path, name, table.column(name), pa.float64(), np.float64) for name in COLUMNS]
    return _validated(symbol, path, ts, *arrays)


def _read_feather(path: Path) -> Any:
    """The file as an Arrow table. Feather 2 is Arrow's IPC file format: read on this thread into plain malloc'd
    memory, which spares a runtime Arrow's reader threads and its jemalloc arenas (about 5 MB); feather 1 files go
    through pyarrow's feather reader."""
    import pyarrow as pa
    from pyarrow import feather, ipc

    try:
        with pa.OSFile(str(path)) as source:
            options = ipc.IpcReadOptions(use_threads=False)
            return ipc.open_file(source, options=options, memory_pool=pa.system_memory_pool()).read_all()
    except pa.ArrowInvalid:
        return feather.read_table(path, memory_map=False)


def _column(path: Path, name: str, column: Any, arrow_type: Any, dtype: type[np.generic]) -> np.ndarray:
    """One Arrow column as a numpy copy, read from its chunks' data buffers: pyarrow's ``to_numpy`` imports pandas,
    and its casts start the compute library (about 10 MB), which a column already of the right width needs not."""
    import pyarrow as pa

    chunks = column.chunks
    if column.type.bit_width != arrow_type.bit_width or not (
        pa.types.is_timestamp(column.type) or column.type == arrow_type
    ):
        try:
            chunks = column.cast(arrow_type).chunks
        except (ValueError, pa.ArrowException) as error:
            raise DataError(f"{path}: column {name} is {column.type}, not numbers: {error}") from error
    parts, seen = [], 0
    for chunk in chunks:
        if chunk.null_count:
            row = seen + chunk.is_valid().to_pylist().index(False)
            raise DataError(f"{path}: row {row}: {name} is missing")
        data = chunk.buffers()[1]
        parts.append(np.frombuffer(data, dtype=dtype, count=len(chunk), offset=chunk.offset * np.dtype(dtype).itemsize))
        seen += len(chunk)
    return np.concatenate(parts) if parts else np.empty(0, dtype)


def load_candle_file(path: Path, symbol: str) -> OHLCV:
    """Read one file, choosing the reader from its name: ``*.feather``, Binance kline chunks
    (``BTCUSDT-1h-*.json``) or freqtrade JSON."""
    if path.suffix == ".feather":
        return load_freqtrade_feather(path, symbol)
    if path.suffix != ".json":
        raise DataError(f"{path}: unknown candle file type {path.suffix!r}; use .json or .feather")
    rows = _read_json_rows(path)
    if rows and isinstance(rows[0], list) and len(rows[0]) >= 12 and isinstance(rows[0][1], str):
        return load_binance_klines(path, symbol)
    return _rows_to_ohlcv(rows, path, symbol, width=6)


def _read_json_rows(path: Path) -> list[Any]:
    try:
        with path.open("rb") as handle:
            rows = json.load(handle)
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from error
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON at line {error.lineno} column {error.colno}: {error.msg}") from error
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON array of candle rows, got {type(rows).__name__}")
    return rows


def _rows_to_ohlcv(rows: list[Any], path: Path, symbol: str, *, width: int) -> OHLCV:
    if not rows:
        return _validated(symbol, path, np.empty(0, np.int64), *(np.empty(0) for _ in COLUMNS))
    try:
        table = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        table = None
    if table is None or table.ndim != 2 or table.shape[1] != width:
        _raise_first_bad_row(rows, path, width)
    ts_float = table[:, 0]
    ts = ts_float.astype(np.int64)
    if not np.array_equal(ts.astype(np.float64), ts_float):
        bad = int(np.flatnonzero(ts.astype(np.float64) != ts_float)[0])
        raise DataError(f"{path}: row {bad}: open time {rows[bad][0]!r} is not a whole number of milliseconds")
    return _validated(symbol, path, ts, *(table[:, i].copy() for i in range(1, 6)))


def _raise_first_bad_row(rows: list[Any], path: Path, width: int) -> None:
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise DataError(f"{path}: row {index}: expected {width} fields [open_ms, o, h, l, c, v], got {row!r:.80}")
        for column, value in enumerate(row):
            try:
                float(value)
            except (TypeError, ValueError):
                raise DataError(f"{path}: row {index} column {column}: {value!r:.40} is not a number") from None
    raise DataError(f"{path}: rows are not a table of {width} numbers")  # pragma: no cover - defensive


def _validated(symbol: str, path: Path, ts: np.ndarray, *columns: np.ndarray) -> OHLCV:
    for name, column in zip(COLUMNS, columns, strict=True):
        bad = np.flatnonzero(~np.isfinite(column))
        if bad.size:
            raise DataError(f"{path}: row {int(bad[0])}: {name} is {column[bad[0]]}, not a finite number")
    if ts.size > 1:
        steps = np.diff(ts)
        bad = np.flatnonzero(steps <= 0)
        if bad.size:
            row = int(bad[0]) + 1
            raise DataError(
                f"{path}: row {row}: open time {int(ts[row])} is not after the previous row's "
                f"{int(ts[row - 1])}; candles must be in strictly increasing time order"
            )
    return OHLCV(symbol, ts, *columns)
