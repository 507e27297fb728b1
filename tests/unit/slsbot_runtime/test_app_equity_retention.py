"""A looping replay left on (what ``make run`` starts) keeps a bounded state file: ``state.equityRetention``
thins the equity rows older than its window, with the defaults when the config says nothing."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

from slsbot.api import RuntimeConfig
from slsbot_runtime.app import RuntimeOptions, build_runtime

REPO = Path(__file__).resolve().parents[3]
HOUR = 3_600_000


def looping_replay(**state: object) -> RuntimeConfig:
    return RuntimeConfig.model_validate(
        {
            "name": "looping",
            "account": {"name": "paper", "exchange": "binance"},
            "symbols": ["BTC/USDT"],
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            "marketData": {
                "source": "replay",
                "dataDir": str(REPO / "data/market/binance-spot-1h-2024"),
                "secondsPerCandle": 0,
                "loop": True,
            },
            "state": state,
        }
    )


def equity_rows(path: Path) -> list[tuple[int, float]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT ts, equity FROM equity ORDER BY rowid").fetchall()


def run(config: RuntimeConfig, state: Path, candles: int) -> None:
    built = build_runtime(config, RuntimeOptions(state_path=str(state)))
    try:
        built.loop.start()
        for candle in itertools.islice(built.feed, candles):
            built.loop.process(candle)
        built.loop.commit()
    finally:
        built.store.close()


def test_a_looping_replay_keeps_its_equity_rows_bounded_with_the_defaults(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    run(looping_replay(), state, 30_000)  # 2.4 passes over the 12,560 recorded hours
    rows = equity_rows(state)
    # the defaults: 7 days at full resolution, then one row per hour, at most 10,000 of them (1h candles: the
    # hourly rows are every row, so the interval doubled once the older rows passed 10,000)
    assert len(rows) <= 7 * 24 + 25 + 10_000
    newest = rows[-1][0]
    window = [ts for ts, _ in rows if ts > newest - 7 * 24 * HOUR]
    assert window == list(range(newest - (len(window) - 1) * HOUR, newest + 1, HOUR))  # every hour, none missing


def test_a_restarted_looping_replay_thins_like_an_uninterrupted_one(tmp_path: Path) -> None:
    config = looping_replay(
        equityRetention={"fullResolution": "2d", "downsampleInterval": "6h", "maxDownsampledRows": 200}
    )
    run(config, tmp_path / "whole.db", 16_000)
    run(config, tmp_path / "parts.db", 9_000)
    run(config, tmp_path / "parts.db", 16_000)  # replays the 9,000 it did, then goes on
    assert equity_rows(tmp_path / "parts.db") == equity_rows(tmp_path / "whole.db")
    assert len(equity_rows(tmp_path / "whole.db")) <= 48 + 24 * 6 + 200
