"""The config a backtest runs and the candles of its window."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slsbot_runtime.backtest.inputs import BacktestWindow, backtest_config, backtest_store, load_window
from slsbot_runtime.domain.errors import ConfigError, DataError

H = 3_600_000


def test_a_backtest_replays_at_full_speed_on_paper_with_a_throwaway_state(sma_config, market_data_dir):
    config = sma_config(
        **{
            "account.mode": "live",
            "account.credentialsDir": "/secrets",
            "marketData.secondsPerCandle": 5,
            "marketData.loop": True,
            "state.path": "/var/lib/state.db",
        }
    )
    prepared = backtest_config(config, data_dir=market_data_dir / "binance-spot-1h-2024", window=BacktestWindow())
    assert prepared.account.mode == "paper" and prepared.account.credentials_dir is None
    assert prepared.account.paper == config.account.paper
    assert prepared.market_data.seconds_per_candle == 0 and prepared.market_data.loop is False
    assert prepared.market_data.data_dir == str(market_data_dir / "binance-spot-1h-2024")
    assert prepared.state.path == ":memory:"
    assert prepared.state.equity_retention.keep_all  # the step mode reads its results from every equity row
    assert (prepared.ensemble, prepared.risk, prepared.sizing) == (config.ensemble, config.risk, config.sizing)
    assert config.state.path == "/var/lib/state.db", "the caller's config is left as it was"


def test_a_backtest_store_writes_nothing_and_keeps_what_the_loop_staged():
    store = backtest_store()
    store.stage_equity(0, "BTC/USDT", 100.0, 100.0)
    store.stage_cursor("BTC/USDT", 0)
    store.commit()  # what the loop does twice per order and every thousand candles
    store.flush()  # what the loop does when the feed ends
    assert store.load_cursor() == {} and store.load_equity() == []
    assert store.staged_equity() == ([0], [100.0])  # where the step mode reads its results


def test_the_window_keeps_open_times_from_start_up_to_but_not_including_end(sma_config):
    window = BacktestWindow(datetime(2020, 3, 1), datetime(2020, 3, 2, 6, tzinfo=UTC))
    prepared = backtest_config(sma_config(), data_dir=None, window=window)
    (history,) = load_window(prepared, window)
    assert int(history.ts[0]) == int(datetime(2020, 3, 1, tzinfo=UTC).timestamp() * 1000)
    assert int(history.ts[-1]) == int(datetime(2020, 3, 2, 5, tzinfo=UTC).timestamp() * 1000)
    assert len(history) == 30


def test_without_from_the_configs_replay_start_is_used(sma_config):
    config = sma_config(**{"marketData.start": "2022-10-11T00:00:00Z"})
    prepared = backtest_config(config, data_dir=None, window=BacktestWindow())
    (history,) = load_window(prepared, BacktestWindow())
    assert len(history) == 11  # 00:00 .. 10:00, the end of the recording


def test_from_after_to_is_refused():
    with pytest.raises(ConfigError, match="--from"):
        BacktestWindow(datetime(2021, 1, 2, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC))


def test_a_missing_data_folder_is_named(sma_config, tmp_path):
    with pytest.raises(ConfigError, match="--data"):
        backtest_config(sma_config(), data_dir=tmp_path / "nowhere", window=BacktestWindow())
    with pytest.raises(ConfigError, match=r"marketData\.dataDir"):
        backtest_config(sma_config(**{"marketData.dataDir": None}), data_dir=None, window=BacktestWindow())


def test_a_window_with_no_candles_is_a_data_error(sma_config):
    window = BacktestWindow(None, datetime(2010, 1, 1, tzinfo=UTC))
    prepared = backtest_config(sma_config(), data_dir=None, window=window)
    with pytest.raises(DataError, match="--to"):
        load_window(prepared, window)


def test_symbols_quoted_in_another_currency_than_the_account_are_refused(sma_config):
    with pytest.raises(ConfigError, match=r"symbols: ETH/BTC not quoted in USDT"):
        backtest_config(sma_config(symbols=["BTC/USDT", "ETH/BTC"]), data_dir=None, window=BacktestWindow())
