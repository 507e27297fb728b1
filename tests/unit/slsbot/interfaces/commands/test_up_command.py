"""`slsbot up` refuses to start, with exit code 2 and nothing loaded or started, when the YAML, the settings or
the admin address are unusable. (The running supervisor is covered by tests/integration/supervisor.)"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from slsbot.interfaces.cli import main

ACCOUNT = "apiVersion: slsbot.io/v1alpha1\nkind: TradingAccount\nmetadata: {name: paper}\nspec: {exchange: binance}\n"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLSBOT_ADMIN_TOKEN", "SLSBOT_VIEWER_TOKEN", "SLSBOT_ADMIN_PORT", "SLSBOT_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_bad_yaml_exits_2_naming_file_and_field_and_loads_nothing(tmp_path: Path, capsys) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "a.yaml").write_text(ACCOUNT)
    (manifests / "b.yaml").write_text(ACCOUNT.replace("paper", "live").replace("binance", "Binance!"))
    state = tmp_path / "state"
    code = main(["up", "-f", str(manifests), "--port", "0", "--state-dir", str(state)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{manifests / 'b.yaml'}, document 1 (TradingAccount live): spec.exchange:" in err
    assert not state.exists()  # no database, no runtime: nothing was half-loaded


def test_placeholder_token_exits_2(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.yaml").write_text(ACCOUNT)
    monkeypatch.setenv("SLSBOT_ADMIN_TOKEN", "changeme")
    code = main(["up", "-f", str(tmp_path), "--state-dir", str(tmp_path / "state")])
    err = capsys.readouterr().err
    assert code == 2
    assert "SLSBOT_ADMIN_TOKEN is a placeholder" in err
    assert "changeme" not in err.replace("SLSBOT_ADMIN_TOKEN is a placeholder", "")


def test_a_busy_admin_port_exits_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.yaml").write_text(ACCOUNT)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["up", "-f", str(tmp_path), "--port", str(port), "--state-dir", str(tmp_path / "state")])
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_the_catalog_knows_the_strategy_library_and_ccxt() -> None:
    from slsbot.interfaces.commands.up import known_components, known_exchanges

    assert "sma_cross" in known_components()
    assert "binance" in known_exchanges()


def test_the_catalog_does_not_import_ccxt() -> None:
    """ccxt costs the supervisor 90 MB and seconds of start-up before its first pass: only its ids are needed."""
    code = (
        "import sys; from slsbot.interfaces.commands.up import known_exchanges; "
        "assert 'binance' in known_exchanges(); print('ccxt' in sys.modules)"
    )
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert answer.stdout.strip() == "False"
