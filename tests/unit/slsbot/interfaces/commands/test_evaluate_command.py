"""``slsbot evaluate``: arguments, exit codes, the JSON, the summary, the plot, and the refusal of a strategy that
looks ahead. Runs over two months of the repository's BTC and ETH candles; the long runs are in
tests/integration/evaluation."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from tests.fakes.peeking_components import NextClosePeeker

from slsbot.interfaces.cli import main
from slsbot.interfaces.commands.evaluate import progress_bars, render_summary
from slsbot_runtime.strategy import registry as strategy_registry

WINDOW = ["--from", "2025-01-01", "--to", "2025-03-01", "--folds", "3", "--lookahead-cuts", "4"]
WINDOW += ["--lookahead-random-cuts", "2"]


@pytest.fixture
def small_yaml(repo_root: Path, tmp_path: Path):
    """``small_yaml(members=None)``: the path of a small RuntimeConfig (three library members, fixed sizes)."""
    from tests.unit.slsbot_runtime.evaluation.conftest import SMALL_CONFIG

    def write(members: list[dict] | None = None) -> str:
        data = json.loads(json.dumps(SMALL_CONFIG))
        data["marketData"]["dataDir"] = str(repo_root / "data/market/binance-spot-1h-2024")
        if members is not None:
            data["ensemble"]["members"] = members
        path = tmp_path / "small.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    return write


def test_json_and_plot_on_a_short_window(small_yaml, tmp_path, capsys):
    png = tmp_path / "evaluation.png"
    code = main(["evaluate", "--config", small_yaml(), *WINDOW, "--json", "--plot", str(png)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.err == ""  # no progress bar: stderr is no terminal, and --json
    data = json.loads(out.out)
    assert data["evaluation"]["held_out"] == {"from": "2025-01-01T00:00:00Z", "to": "2025-03-01T00:00:00Z"}
    assert set(data["members"]) == {"sma", "rsi", "donchian"} and data["lookahead"]["passed"]
    assert len(data["fingerprint"]) == 64 and len(data["record"]["data"]["fingerprint"]) == 64
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_the_summary_lists_every_candidate_buy_and_hold_and_the_selection(small_yaml, capsys):
    assert main(["evaluate", "--config", small_yaml(), *WINDOW]) == 0
    text = capsys.readouterr().out
    assert text.startswith("small: BTC/USDT, ETH/USDT 1h, held out 2025-01-01T00:00:00Z -> 2025-03-01T00:00:00Z")
    assert "lookahead check: passed (" in text and "incremental and vectorized forms" in text
    for name in ("ensemble", "sma", "rsi", "donchian", "buy-and-hold"):
        assert f"\n  {name} " in text
    assert "total return per fold" in text and "fold 2" in text
    assert "probability of backtest overfitting (CSCV, 16 blocks, 12,870 splits): " in text
    assert "selected by out-of-sample Sharpe: " in text and "data fingerprint" in text


def test_the_summary_renders_missing_values_as_n_a():
    metrics = {"total_return_pct": -1.5, "sharpe": None, "max_drawdown_pct": 2.0, "trades": 0, "exposure_pct": 100.0}
    result = {"overall": metrics, "folds": [{"fold": 0, "metrics": metrics}]}
    data = {
        "evaluation": {
            "name": "x",
            "symbols": ["BTC/USDT"],
            "timeframe": "1h",
            "held_out": {"from": "a", "to": "b"},
            "warmup_candles": 5,
            "folds": [{"index": 0}],
        },
        "ensemble": result,
        "members": {},
        "buy_and_hold": result,
        "selection": {"selected": "ensemble", "deflated_sharpe": {"ensemble": {"dsr": 0.1234}}, "pbo": None},
        "lookahead": {"units": {"ensemble": ["incremental"]}, "cuts": {"BTC/USDT": 3}, "decisions_compared": 1234},
        "record": {"data": {"fingerprint": "f"}},
        "fingerprint": "g",
    }
    text = render_summary(data)
    assert "  ensemble" in text and "-1.50 %" in text and "n/a" in text and "0.123" in text
    assert "1,234 decisions compared at 3 cuts of BTC/USDT; incremental forms" in text
    assert "probability of backtest overfitting" not in text


def test_a_strategy_that_looks_ahead_exits_2_and_reports_only_the_check(small_yaml, monkeypatch, capsys):
    monkeypatch.setattr(strategy_registry, "LIBRARY", strategy_registry.LIBRARY.extended(NextClosePeeker))
    members = [{"name": "sma", "strategy": "sma_cross"}, {"name": "peek", "strategy": "next_close_peeker"}]
    assert main(["evaluate", "--config", small_yaml(members), *WINDOW, "--json"]) == 2
    out = capsys.readouterr()
    assert "slsbot evaluate: the lookahead check failed" in out.err
    assert "ensemble.members[peek]: BTC/USDT direction after the candle of" in out.err
    data = json.loads(out.out)
    assert set(data) == {"lookahead"} and not data["lookahead"]["passed"]
    assert {v["unit"] for v in data["lookahead"]["violations"]} == {"ensemble", "ensemble.members[peek]"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--folds", "0"], "--folds: 0 is too small"),
        (["--lookahead-cuts", "-1"], "--lookahead-cuts: -1 is too small"),
        (["--from", "2025-13-01"], "--from: '2025-13-01' is not a date"),
        (["--from", "2025-03-01", "--to", "2025-01-01"], "--from: 2025-03-01T00:00:00+00:00 is not before --to"),
        (["--plot", "evaluation.jpg"], "--plot: 'evaluation.jpg' must end in .png"),
        (["--from", "2025-01-01", "--to", "2025-01-04", "--folds", "6"], "--folds: the held-out period from"),
        (["--data", "/nonexistent/candles"], "--data: /nonexistent/candles is not a folder"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(small_yaml, capsys, args, message):
    assert main(["evaluate", "--config", small_yaml(), *args]) == 2
    out = capsys.readouterr()
    assert message in out.err and out.out == ""


def test_a_config_that_is_not_there_exits_2_naming_it(tmp_path, capsys):
    assert main(["evaluate", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "--config: cannot read" in capsys.readouterr().err


def test_candles_missing_for_a_symbol_exit_1(small_yaml, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", "--config", small_yaml(), "--data", str(empty)]) == 1
    assert "DataError: marketData.dataDir: no candles for BTC/USDT 1h" in capsys.readouterr().err


def test_no_progress_bar_off_a_terminal_or_with_json():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert progress_bars(io.StringIO(), enabled=True)[0] is None
    assert progress_bars(Terminal(), enabled=False)[0] is None
    terminal = Terminal()
    progress, close = progress_bars(terminal, enabled=True, delay=0.0)
    assert progress is not None
    progress("lookahead", 3, 10)
    progress("backtests", 500, 1000)
    close()
    shown = terminal.getvalue()
    assert "lookahead:" in shown and "/10.0" in shown and "runs/s" in shown  # one bar per stage, each its unit
    assert "backtests:" in shown and "/1.00k" in shown and "candles/s" in shown
