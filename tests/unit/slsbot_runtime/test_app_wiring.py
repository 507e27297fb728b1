"""How ``app`` pairs an account's mode with a candle source and an exchange: a paper account never gets a
ccxt trading client, a testnet or live account never the simulated exchange, and a refused config is
refused before any state file exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slsbot.api import RuntimeConfig
from slsbot_runtime.app import RuntimeOptions, build_exchange, build_runtime, check_account_wiring, config_problems
from slsbot_runtime.domain.errors import AuthenticationError, ConfigError
from slsbot_runtime.exchange.ccxt_exchange import CcxtExchange
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.persistence.store import StateStore

REPO = Path(__file__).resolve().parents[3]


def config(*, mode: str = "paper", source: str = "replay", exchange: str = "binance", **account: Any) -> RuntimeConfig:
    return RuntimeConfig.model_validate(
        {
            "name": "wiring",
            "account": {"name": "acct", "exchange": exchange, "mode": mode, **account},
            "symbols": ["BTC/USDT", "ETH/USDT"],
            "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            "marketData": {"source": source, "dataDir": str(REPO / "data/market/binance-spot-1h-2024")},
        }
    )


@pytest.mark.parametrize("mode", ["testnet", "live"])
def test_a_real_account_refuses_a_replay_naming_the_field_and_leaves_no_state(mode: str, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with pytest.raises(ConfigError, match=rf"^marketData\.source: a {mode} account sends real orders to binance"):
        build_runtime(config(mode=mode), RuntimeOptions(state_path=str(state)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("mode", "source", "what"), [("testnet", "exchange", "trading"), ("paper", "exchange", "live candles")]
)
def test_an_exchange_slsbot_cannot_reach_is_refused_naming_account_exchange(mode: str, source: str, what: str) -> None:
    with pytest.raises(ConfigError, match=rf"^account\.exchange: 'kraken' is not supported for {what}; use one of"):
        check_account_wiring(config(mode=mode, source=source, exchange="kraken"))


def test_a_paper_replay_does_not_care_which_exchange_it_is_named_after() -> None:
    assert check_account_wiring(config(exchange="kraken")) == "USDT"


def test_symbols_quoted_in_two_currencies_are_refused() -> None:
    mixed = config(mode="testnet", source="exchange").model_copy(update={"symbols": ["BTC/USDT", "ETH/BTC"]})
    with pytest.raises(ConfigError, match=r"^symbols: every symbol must be quoted in one currency .*, got BTC, USDT$"):
        check_account_wiring(mixed)


def test_a_paper_account_gets_the_simulated_exchange_and_never_reads_credentials(tmp_path: Path) -> None:
    paper = config(source="exchange", credentialsDir=str(tmp_path / "no-such-folder"))
    exchange = build_exchange(paper, endpoint="http://127.0.0.1:9")
    assert isinstance(exchange, PaperExchange)


def test_a_testnet_account_gets_ccxt_on_the_sandbox_redirected_to_the_endpoint(tmp_path: Path) -> None:
    folder = tmp_path / "credentials"
    folder.mkdir()
    (folder / "apiKey").write_text("key0123456789abcdefKEY")
    (folder / "secret").write_text("secret0123456789abcdef")
    exchange = build_exchange(
        config(mode="testnet", source="exchange", credentialsDir=str(folder)), endpoint="http://127.0.0.1:9/mirror"
    )
    assert isinstance(exchange, CcxtExchange)
    assert exchange.sandbox and exchange.api_host == "127.0.0.1:9"


def test_a_missing_credentials_folder_is_an_authentication_error_naming_the_field(tmp_path: Path) -> None:
    live = config(mode="live", source="exchange", credentialsDir=str(tmp_path / "missing"))
    with pytest.raises(AuthenticationError, match=r"^account\.credentialsDir: .* is not a folder"):
        build_exchange(live)


def test_a_runtime_commits_its_state_file_every_candle(tmp_path: Path) -> None:
    """What ``slsbot runtime`` builds: a durable store, each candle on disk (read as another process would) once the
    loop has processed it, so a restart never acts on a candle twice."""
    path = tmp_path / "state.db"
    built = build_runtime(config(), RuntimeOptions(state_path=str(path)))  # paced: committed every candle
    loop = built.loop
    loop.start()
    for candle, _ in zip(built.feed, range(40), strict=False):
        loop.process(candle)
        reader = StateStore.open(path, readonly=True)
        try:
            assert reader.load_cursor().get(candle.symbol) == candle.ts
        finally:
            reader.close()
    built.store.close()


@pytest.mark.parametrize(
    ("vault", "problem"),
    [
        ({"path": "slsbot/live"}, "account.vault.address: no Vault address"),
        ({"path": "slsbot/live", "address": "http://127.0.0.1:8200"}, "account.vault.auth: no way to log in"),
        (
            {"path": "slsbot/live", "address": "http://127.0.0.1:8200", "auth": {"role": "live"}},
            None,
        ),
    ],
)
def test_a_vault_account_without_an_address_or_a_login_is_refused_before_anything_opens(
    vault: dict[str, Any], problem: str | None
) -> None:
    problems = config_problems(config(mode="live", source="exchange", vault=vault))
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]
