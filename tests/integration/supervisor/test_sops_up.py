"""``slsbot up -f DIR`` with the exchange keys in a sops-encrypted Secret of the folder: a testnet account's runtime
authenticates against the fake Binance with them (a wrong key would halt it: it would never be Running), its
credentials folder exists only while it runs, and nothing in clear reaches the folder, the state folder's logs or
the supervisor's store (the secret scan checks every file and log line of the test)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes import test_secrets
from tests.fakes.fake_exchange_market import ManualClock, RecordedKlines, utc_ms
from tests.fakes.fake_exchange_server import FakeExchangeServer
from tests.fakes.sops_files import encrypt, require_sops

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]  # in make test-long: > 10 s each

START = utc_ms("2025-01-02T12:00") + 5_000
FOLDER = """\
apiVersion: slsbot.io/v1alpha1
kind: TradingAccount
metadata: {name: binance-testnet}
spec:
  exchange: binance
  mode: testnet
  credentials: {secretRef: {name: binance-keys}}
---
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: btc-live}
spec:
  accountRef: {name: binance-testnet}
  symbols: [BTC/USDT]
  timeframe: 1h
  ensemble: {members: [{name: sma, strategy: sma_cross, params: {fast: 3, slow: 9}}]}
  sizing: {method: fixedQuantity, quantity: 0.01}
  marketData: {source: exchange, warmupCandles: 12}
"""
SECRET = f"""\
apiVersion: v1
kind: Secret
metadata:
  name: binance-keys
  labels: {{slsbot.io/credentials: "true"}}
stringData:
  apiKey: {test_secrets.FAKE_API_KEY}
  secret: {test_secrets.FAKE_SECRET}
"""


@pytest.fixture
def fake() -> Iterator[FakeExchangeServer]:
    with FakeExchangeServer(ManualClock(START), klines=RecordedKlines()) as server:
        server.account.balances = {"USDT": 10_000.0}
        yield server


def test_slsbot_up_runs_a_testnet_bot_on_keys_from_a_sops_file(tmp_path: Path, kit, fake) -> None:
    binary = require_sops()
    folder = tmp_path / "bots"
    folder.mkdir()
    (folder / "bot.yaml").write_text(FOLDER)
    (folder / "binance-secrets.yaml").write_bytes(encrypt(binary, SECRET, home=tmp_path))
    state = tmp_path / "state"
    env = kit.environment(
        SLSBOT_ADMIN_TOKEN=kit.operator_token,
        SLSBOT_EXCHANGE_ENDPOINT=fake.url,
        SLSBOT_SOPS_COMMAND=json.dumps([binary]),
        SOPS_AGE_KEY=test_secrets.AGE_SECRET_KEY,
        HOME=str(tmp_path),  # no other age key is found
    )
    credentials = state / "default" / "btc-live" / "credentials"
    running = kit.start(folder, state, env)
    try:
        kit.wait_for(
            lambda: running.strategies().get("btc-live", {}).get("phase") == "Running",
            timeout=120,
            interval=0.25,
            what="the testnet bot Running on the keys from the sops file",
        )
        assert fake.calls("GET", "/api/v3/account") or fake.calls("GET", "/api/v3/openOrders")  # signed calls
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o700
        assert sorted(p.name for p in credentials.iterdir()) == ["apiKey", "secret"]
        config = (state / "default" / "btc-live" / "runtime.yaml").read_text()
        assert f"credentialsDir: {credentials.resolve()}" in config and test_secrets.FAKE_SECRET not in config
    finally:
        assert running.stop() == 0
    assert not credentials.exists()  # removed with the runtime
    assert sorted(p.name for p in folder.iterdir()) == ["binance-secrets.yaml", "bot.yaml"]
