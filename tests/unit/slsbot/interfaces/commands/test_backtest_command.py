"""``slsbot backtest``: argument handling, the summary, the equity CSV, the plot and the progress bar. The long
runs are in tests/integration/backtest."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import numpy as np
import pytest

from slsbot.interfaces.cli import main
from slsbot.interfaces.commands.backtest import (
    parse_date,
    plot_equity,
    progress_bar,
    render_summary,
    write_equity_csv,
)


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


def test_the_summary_shows_mode_metrics_in_percent_and_fingerprint():
    text = render_summary(
        {
            "trades": [],
            "metrics": {
                "total_return_pct": 25.0,
                "max_drawdown_pct": 3.77,
                "win_rate_pct": 32.0,
                "sharpe": None,
                "trades": 1234,
                "expectancy": 1.2845,
            },
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
    assert "  total return    +25.00 %\n" in text and "  max drawdown    3.77 %\n" in text
    assert "  win rate        32.0 %\n" in text and "  Sharpe          n/a\n" in text
    assert "  trades          1,234\n" in text and "  expectancy      +1.28 per trade\n" in text
    assert text.endswith("  fingerprint     abc")


def test_a_short_window_writes_the_equity_csv_and_the_plot_and_prints_percent(repo_root, tmp_path, capsys):
    config = str(repo_root / "examples/backtest/sma-cross-btc.yaml")
    csv_path, png_path = tmp_path / "equity.csv", tmp_path / "equity.png"
    window = ["--from", "2020-01-01", "--to", "2020-03-01"]
    code = main(
        ["backtest", "--config", config, *window, "--json", "--equity-csv", str(csv_path), "--plot", str(png_path)]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out)
    assert out.err == ""  # no progress bar: stderr is no terminal, and --json
    with csv_path.open() as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["ts", "equity"] and len(rows) == 1 + result["run"]["candles"]
    assert rows[1][0] == result["run"]["first_candle"] == "2020-01-01T00:00:00Z"
    assert rows[-1][0] == result["run"]["last_candle"]
    assert float(rows[-1][1]) == result["metrics"]["final_equity"]
    first = float(rows[1][1])
    assert result["metrics"]["total_return_pct"] == pytest.approx(100 * (result["metrics"]["final_equity"] / first - 1))
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png_path.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--plot", "equity.jpg", "--plot: 'equity.jpg' must end in .png"),
        ("--plot", "missing/equity.png", "--plot: the folder 'missing' does not exist"),
        ("--equity-csv", "missing/equity.csv", "--equity-csv: the folder 'missing' does not exist"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_the_run(
    repo_root, tmp_path, capsys, monkeypatch, option, value, message
):
    monkeypatch.chdir(tmp_path)
    assert main(["backtest", "--config", str(repo_root / "examples/backtest/sma-cross-btc.yaml"), option, value]) == 2
    assert message in capsys.readouterr().err


def test_the_equity_csv_keeps_full_precision(tmp_path):
    path = tmp_path / "curve.csv"
    values = np.array([100_000.0, 100_000.1 + 1 / 3])
    write_equity_csv(path, np.array([0, 3_600_000]), values)
    lines = path.read_text().splitlines()
    assert lines[:2] == ["ts,equity", "1970-01-01T00:00:00Z,100000.0"]
    stamp, text = lines[2].split(",")
    assert stamp == "1970-01-01T01:00:00Z" and float(text) == values[1]


def test_the_plot_draws_an_empty_run_without_failing(tmp_path):
    plot_equity(tmp_path / "empty.png", np.array([], dtype=np.int64), np.array([]), title="nothing")
    assert (tmp_path / "empty.png").read_bytes()[:4] == b"\x89PNG"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_on_a_terminal_once_the_run_has_lasted_its_delay():
    terminal = Terminal()
    progress, close = progress_bar(terminal, enabled=True, delay=0)  # a run already past the delay
    progress(4096, 10_000)
    shown = terminal.getvalue()
    assert "backtest:" in shown and "/10.0k" in shown and "candles/s" in shown
    progress(2048, 20_000)  # auto mode fell back to step mode: a new bar counts again, to the new total
    assert "/20.0k" in terminal.getvalue()
    close()


def test_no_progress_bar_for_a_quick_run_json_or_a_pipe():
    quick = Terminal()
    progress, close = progress_bar(quick, enabled=True, delay=60)
    progress(10_000, 10_000)
    close()
    assert quick.getvalue() == ""
    assert progress_bar(Terminal(), enabled=False)[0] is None  # --json
    assert progress_bar(io.StringIO(), enabled=True)[0] is None  # not a terminal
