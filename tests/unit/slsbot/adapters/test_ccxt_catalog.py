"""The control plane knows ccxt's exchange ids without importing ccxt, and they are exactly ccxt's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from slsbot.adapters.ccxt_catalog import ccxt_exchange_ids, declared_exchanges


def test_the_ids_are_ccxts_own_and_reading_them_does_not_import_ccxt() -> None:
    code = (
        "import sys; from slsbot.adapters.ccxt_catalog import ccxt_exchange_ids; ids = ccxt_exchange_ids(); "
        "print(len(ids), 'ccxt' in sys.modules)"
    )
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    count, imported = answer.stdout.split()
    assert imported == "False"
    import ccxt

    assert ccxt_exchange_ids() == frozenset(ccxt.exchanges) and int(count) == len(ccxt.exchanges) > 50
    assert {"binance", "bybit", "kraken"} <= ccxt_exchange_ids()


def test_a_module_without_the_literal_gives_none(tmp_path: Path) -> None:
    init = tmp_path / "__init__.py"
    init.write_text("exchanges = sorted(['b', 'a'])\nbase = ['Exchange']\n")
    assert declared_exchanges(init) is None
    init.write_text("__version__ = '9'\nexchanges = [\n    'a',\n    'b',\n]\n")
    assert declared_exchanges(init) == {"a", "b"}
    assert declared_exchanges(tmp_path / "missing.py") is None
