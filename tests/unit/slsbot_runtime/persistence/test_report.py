"""``slsbot report``'s summary from a state file: returns, drawdown and win rate in percent, keys ending in _pct,
the same convention as the backtest's metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from slsbot.interfaces.commands.report import render_summary
from slsbot_runtime.persistence.report import build_report
from slsbot_runtime.persistence.store import PositionRow, StateStore

H = 3_600_000


def test_the_summary_gives_returns_drawdown_and_win_rate_in_percent(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path)
    store.stage_meta("starting_cash", 1000.0)
    for hour, equity in enumerate((1000.0, 1100.0, 990.0, 1050.0)):
        store.stage_equity(hour * H, "BTC/USDT", equity, equity)
    store.stage_position(PositionRow("BTC/USDT", realized_pnl=50.0, wins=3, losses=1))
    store.commit()
    store.close()
    summary = build_report(str(path))["summary"]
    assert summary["return_pct"] == pytest.approx(5.0)
    assert summary["max_drawdown_pct"] == pytest.approx(10.0)
    assert summary["win_rate_pct"] == pytest.approx(75.0)
    assert summary["closed_trades"] == 4
    assert not {"return_percent", "max_drawdown_percent", "win_rate"} & set(summary)
    text = render_summary(summary)
    assert "              return_pct: 5.00 %" in text and "            win_rate_pct: 75.00 %" in text
