"""What a backtest runs on: the RuntimeConfig made ready for a replay, and the candles of the chosen window.

A backtest reads the same RuntimeConfig a runtime reads and changes only what makes it a backtest:

* the market data is a replay of ``--data`` (or ``marketData.dataDir``), as fast as it goes (pace 0), once;
* the account is the paper exchange with ``account.paper``'s settings, whatever ``account.mode`` says
  (a backtest never talks to an exchange);
* the state store is thrown away (in memory), and it keeps every equity row (``state.equityRetention`` is
  ``keepAll``): the step mode reads its results from them, so thinning would change them. It is opened with
  ``Durability.NONE`` (``backtest_store``): a backtest is never restarted from its state, it is run again, so
  nothing the loop stages is written: the results are read from the store's memory when the feed ends.

The window: candles whose open time is at or after ``--from`` (or ``marketData.start``) and before ``--to``.
The strategies warm up inside the window: nothing is traded before ``marketData.warmupCandles`` candles.
Relative data folders are taken from the current directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from slsbot.api import AccountMode, RuntimeConfig
from slsbot.api.runtime_config import EquityRetention, StateSettings
from slsbot.api.strategy import DataSource
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.domain.errors import ConfigError, DataError
from slsbot_runtime.domain.timeframes import interval_ms as timeframe_ms
from slsbot_runtime.domain.types import split_symbol
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.persistence.store import Durability, StateStore

THROWAWAY_STATE = ":memory:"


@dataclass(frozen=True, slots=True)
class BacktestWindow:
    """Open times kept: ``start <= ts < end``; None leaves that side open (naive datetimes are UTC)."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and _ms(self.start) >= _ms(self.end):
            raise ConfigError(f"--from: {self.start.isoformat()} is not before --to {self.end.isoformat()}")


def interval_ms(config: RuntimeConfig) -> int:
    return timeframe_ms(str(config.timeframe))


def backtest_config(config: RuntimeConfig, *, data_dir: str | Path | None, window: BacktestWindow) -> RuntimeConfig:
    """The config as a backtest runs it (see the module doc); ConfigError when no data folder is known."""
    folder = data_dir if data_dir is not None else config.market_data.data_dir
    if folder is None:
        raise ConfigError("marketData.dataDir: a backtest needs the folder of recorded candles; set it or pass --data")
    if not Path(folder).is_dir():
        raise ConfigError(f"--data: {folder} is not a folder (relative paths start at {Path.cwd()})")
    quote = config.account.paper.quote_currency
    foreign = [symbol for symbol in config.symbols if split_symbol(symbol)[1] != quote]
    if foreign:
        raise ConfigError(
            f"symbols: {', '.join(foreign)} not quoted in {quote}; the paper account holds {quote} "
            "(account.paper.quoteCurrency)"
        )
    for model in config.ml.models:
        if model.pinned_version is not None:
            raise ConfigError(
                f"ml.models[{model.name}].pinnedVersion: a backtest retrains its models as it walks forward, so it "
                "never trades on a model trained on its own candles; unset pinnedVersion to backtest this config"
            )
    start = window.start if window.start is not None else config.market_data.start
    market_data = config.market_data.model_copy(
        update={
            "source": DataSource.REPLAY.value,
            "data_dir": str(folder),
            "start": _utc(start) if start is not None else None,
            "seconds_per_candle": 0.0,
            "loop": False,
        }
    )
    account = config.account.model_copy(update={"mode": AccountMode.PAPER.value, "credentials_dir": None})
    state = StateSettings(path=THROWAWAY_STATE, equity_retention=EquityRetention(keep_all=True))
    return config.model_copy(update={"market_data": market_data, "account": account, "state": state})


def backtest_store() -> StateStore:
    """The state store a backtest's loop runs over: in memory, and never written (see the module doc)."""
    return StateStore.open(THROWAWAY_STATE, durability=Durability.NONE)


def load_window(config: RuntimeConfig, window: BacktestWindow) -> list[OHLCV]:
    """Each symbol's candles in the window, loaded as the runtime's replay loads them.

    ``config`` is a ``backtest_config``: its ``marketData.start`` is the window's start already.
    """
    assert config.market_data.data_dir is not None
    folder = Path(config.market_data.data_dir)
    step = interval_ms(config)
    histories = []
    for symbol in config.symbols:
        history = load_history(folder, symbol, str(config.timeframe), interval_ms=step, start=config.market_data.start)
        if window.end is not None:
            history = history.slice(0, int(np.searchsorted(history.ts, _ms(window.end), side="left")))
        if len(history) == 0:
            raise DataError(
                f"--to: no {symbol} candles between {_describe(config.market_data.start)} and "
                f"{_describe(window.end)} in {folder}"
            )
        histories.append(history)
    return histories


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _ms(moment: datetime) -> int:
    return int(_utc(moment).timestamp() * 1000)


def _describe(moment: datetime | None) -> str:
    return "the open end" if moment is None else _utc(moment).isoformat()
