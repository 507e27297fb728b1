"""``slsbot backtest`` argument handling; the runs themselves are in tests/integration/backtest."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slsbot.interfaces.cli import main
from slsbot.interfaces.commands.backtest import parse_date, render_summary


def test_dates_are_utc_unless_they_say_otherwise():
    assert parse_date("2021-01-01", "--from") == datetime(2021, 1, 1, tzinfo=UTC)
    assert parse_date("2021-01-01T12:30", "--to") == datetime(2021, 1, 1, 12, 30, tzinfo=UTC)
    assert parse_date("2021-01-01T12:30+02:00", "--to") == datetime(2021, 1, 1, 10, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="--from: 'yesterday' is not a date"):
        parse_date("yesterday", "--from")


def test_a_bad_date_exits_2_naming_the_option(capsys, repo_root):
    config = str(repo_root / "examples/backtest/sma-cross-btc.yaml")
    assert main(["backtest", "--config", config, "--to", "2021-13-01"]) == 2
    assert "--to: '2021-13-01' is not a date" in capsys.readouterr().err


def test_a_missing_config_exits_2_naming_the_option(capsys, tmp_path):
    assert main(["backtest", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "--config: cannot read" in capsys.readouterr().err


def test_an_invalid_config_exits_2_naming_the_field(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\naccount: {name: a, exchange: binance}\nsymbols: [BTC/USDT]\nensemble: {members: []}\n")
    assert main(["backtest", "--config", str(path)]) == 2
    assert "ensemble.members" in capsys.readouterr().err


def test_an_unknown_mode_is_refused_by_the_parser(capsys, repo_root):
    with pytest.raises(SystemExit) as exit_info:
        main(["backtest", "--config", str(repo_root / "examples/backtest/sma-cross-btc.yaml"), "--mode", "turbo"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'turbo'" in capsys.readouterr().err


def test_the_summary_shows_mode_metrics_and_fingerprint():
    text = render_summary(
        {
            "trades": [],
            "metrics": {"total_return": 0.25, "sharpe": None, "trades": 1234},
            "fingerprint": "abc",
            "run": {
                "mode": "step",
                "fallback_reason": "fast mode cannot ...",
                "symbols": ["BTC/USDT"],
                "timeframe": "1h",
                "candles": 45024,
                "first_candle": "2017-08-17T04:00:00Z",
                "last_candle": "2022-10-11T10:00:00Z",
                "elapsed_s": 1.5,
            },
        }
    )
    assert "45,024 candles in 1.50s (step mode)" in text
    assert "step mode because fast mode cannot" in text
    assert "total_return   0.2500" in text and "sharpe         n/a" in text and "trades         1,234" in text
    assert text.endswith("fingerprint    abc")
