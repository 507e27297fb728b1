"""``KeyRotation`` on a real ``TradingLoop`` over the paper exchange (which here can switch keys and refuse one), with
the secret's versions in memory and the clocks in the test's hands: the window, the drain that waits for an order
in flight and gives up at the settle timeout, a check that cannot be made, Vault not answering, and a disagreement
found by the reconcile after a switch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slsbot.api.account import VaultRotation
from slsbot.api.health import TradingMode
from slsbot_runtime.domain.errors import AuthenticationError, CredentialsUnavailable, ExchangeUnavailable, StateError
from slsbot_runtime.domain.types import Balance, Side
from slsbot_runtime.engine.key_rotation import KeyRotation
from slsbot_runtime.exchange.credentials import ExchangeCredentials
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.persistence.store import StateStore

from .test_trading_mode import always_long, candle, make_loop

OLD = ExchangeCredentials("oldKey0123456789abcdef", "oldSecret0123456789")
NEW = ExchangeCredentials("newKey0123456789abcdef", "newSecret0123456789")


class KeyedPaperExchange(PaperExchange):
    """The paper exchange, signing with a key it can switch; ``refused`` keys and ``down`` fail its balance call."""

    refused: set[str] = set()
    down = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.key = OLD.api_key
        self.used: list[str] = []

    def use_credentials(self, credentials: ExchangeCredentials) -> None:
        self.key = credentials.api_key
        self.used.append(credentials.api_key)

    def fetch_balances(self) -> dict[str, Balance]:
        if self.down:
            raise ExchangeUnavailable("paper: down")
        if self.key in self.refused:
            raise AuthenticationError("paper: invalid api key")
        return super().fetch_balances()


@dataclass
class Version:
    credentials: ExchangeCredentials
    version: int


class MemorySecret:
    data_path = "secret/data/slsbot/paper"

    def __init__(self) -> None:
        self.versions = [Version(OLD, 1)]
        self.down = False

    def keep_alive(self) -> None:
        if self.down:
            raise CredentialsUnavailable("vault read secret/metadata/slsbot/paper: Vault did not answer (VaultDown)")

    def current_version(self) -> int:
        self.keep_alive()
        return self.versions[-1].version

    def read(self, version: int | None = None) -> Version:
        return self.versions[(version or len(self.versions)) - 1]


class Clocks:
    def __init__(self) -> None:
        self.mono = 0.0
        self.wall = datetime(2026, 3, 1, 2, 0, tzinfo=UTC).timestamp()

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


def setup(tmp_path: Path, **rotation: object):
    KeyedPaperExchange.refused, KeyedPaperExchange.down = set(), False
    loop = make_loop(always_long, StateStore.open(str(tmp_path / "s.db")), exchange=KeyedPaperExchange)
    loop.start()
    secret, clocks = MemorySecret(), Clocks()
    rotation_settings = VaultRotation.model_validate({"checkEvery": "10s", "settleTimeout": "60s", **rotation})
    loop.rotation = KeyRotation(
        source=secret,
        exchange=loop.exchange,
        in_use=secret.versions[0],
        settings=rotation_settings,
        orders=loop.orders,
        modes=loop.modes,
        on_mismatch=loop._on_mismatch,
        log=loop.log,
        clock=lambda: clocks.mono,
        wall=lambda: clocks.wall,
    )
    loop.process(candle(0))  # reconciled, one order in
    loop.process(candle(1))  # ... and filled
    assert not loop.orders.unfinished()
    return loop, secret, clocks


def look(loop, clocks: Clocks, seconds: float = 10.0) -> dict:
    clocks.advance(seconds)
    loop.tick()
    return loop.rotation.status_json()


def test_a_new_version_waits_for_the_window_then_switches_and_gives_the_mode_back(tmp_path: Path) -> None:
    loop, secret, clocks = setup(tmp_path, window="0 3 * * *", windowLength="15m")
    secret.versions.append(Version(NEW, 2))
    shown = look(loop, clocks)
    assert (shown["phase"], shown["version"], shown["newest_version"]) == ("waiting_window", 1, 2)
    assert loop.modes.mode is TradingMode.NORMAL and loop.exchange.used == []  # trades on, undisturbed

    clocks.advance(3600 - 20)  # 03:00 UTC
    shown = look(loop, clocks)
    assert (shown["phase"], shown["version"]) == ("idle", 2)
    assert shown["last_rotation"]["outcome"] == "succeeded" and loop.exchange.used == [NEW.api_key]
    assert loop.modes.mode is TradingMode.NORMAL


def test_an_order_in_flight_holds_the_switch_until_the_settle_timeout_then_it_is_tried_again(tmp_path: Path) -> None:
    loop, secret, clocks = setup(tmp_path)
    ts = candle(2).ts
    loop.orders.create_intent(candle(2).symbol, Side.SELL, 0.1, candle_ts=ts, created_ts=ts, reason="exit")
    loop.orders.send_pending()  # rests on the paper exchange until the next candle
    secret.versions.append(Version(NEW, 2))
    assert look(loop, clocks)["phase"] == "draining"
    assert loop.modes.mode is TradingMode.SAFE
    assert look(loop, clocks, 59)["phase"] == "draining" and loop.exchange.used == []

    shown = look(loop, clocks, 1)  # 60 s: the settle timeout
    rolled = shown["last_rotation"]
    assert (shown["phase"], shown["version"], rolled["outcome"]) == ("idle", 1, "rolled_back")
    assert "1 orders still in flight after the settle timeout (60s)" in rolled["reason"]
    assert rolled["pause_seconds"] == pytest.approx(60.0)
    assert loop.modes.mode is TradingMode.NORMAL and loop.exchange.used == []

    loop.process(candle(2))  # the order fills
    assert look(loop, clocks)["version"] == 2  # not refused: tried again at the next check, and taken


def test_a_check_that_cannot_be_made_rolls_back_at_the_settle_timeout_to_the_old_key(tmp_path: Path) -> None:
    loop, secret, clocks = setup(tmp_path)
    secret.versions.append(Version(NEW, 2))
    KeyedPaperExchange.down = True
    assert look(loop, clocks)["phase"] == "checking" and loop.exchange.key == NEW.api_key
    shown = look(loop, clocks, 60)
    assert (
        shown["last_rotation"]["outcome"] == "rolled_back"
        and "could not be checked" in shown["last_rotation"]["reason"]
    )
    assert loop.exchange.key == OLD.api_key and shown["version"] == 1


def test_a_refused_key_is_rolled_back_and_never_tried_again(tmp_path: Path) -> None:
    loop, secret, clocks = setup(tmp_path)
    secret.versions.append(Version(NEW, 2))
    KeyedPaperExchange.refused = {NEW.api_key}
    shown = look(loop, clocks)
    assert shown["last_rotation"]["outcome"] == "rolled_back" and loop.exchange.used == [NEW.api_key, OLD.api_key]
    assert "AuthenticationError: paper: invalid api key" in shown["last_rotation"]["reason"]
    look(loop, clocks)
    assert loop.exchange.used == [NEW.api_key, OLD.api_key]  # version 2 is not tried again
    secret.versions.append(Version(ExchangeCredentials("fixedKey0123456789", "fixedSecret0123"), 3))
    assert look(loop, clocks)["version"] == 3


def test_vault_not_answering_keeps_the_key_in_use_and_says_so(tmp_path: Path) -> None:
    loop, secret, clocks = setup(tmp_path)
    secret.down = True
    shown = look(loop, clocks)
    assert shown["version"] == 1 and shown["phase"] == "idle"
    assert shown["last_error"].startswith("CredentialsUnavailable: vault read secret/metadata")
    secret.down = False
    assert look(loop, clocks)["last_error"] is None


def test_a_disagreement_found_after_the_switch_leaves_the_runtime_in_its_own_safe_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop, secret, clocks = setup(tmp_path)
    secret.versions.append(Version(NEW, 2))

    def disagree(_orders: object) -> None:
        raise StateError("position 0.5 BTC/USDT, exchange 0")

    monkeypatch.setattr("slsbot_runtime.engine.key_rotation.reconcile", disagree)
    shown = look(loop, clocks)
    assert shown["version"] == 2 and shown["last_rotation"]["outcome"] == "succeeded"
    assert loop.modes.mode is TradingMode.SAFE
    assert "the books disagree with the exchange" in (loop.modes.current.reason or "")


def test_a_key_refused_while_reconciling_is_rolled_back_and_not_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop, secret, clocks = setup(tmp_path)
    secret.versions.append(Version(NEW, 2))

    def no_permission(_orders: object) -> None:
        raise AuthenticationError("paper: this key may not read trades")

    monkeypatch.setattr("slsbot_runtime.engine.key_rotation.reconcile", no_permission)
    shown = look(loop, clocks)
    rolled = shown["last_rotation"]
    assert (shown["version"], rolled["outcome"]) == (1, "rolled_back")
    assert "refused while reconciling" in rolled["reason"] and loop.exchange.key == OLD.api_key
    assert loop.modes.mode is TradingMode.NORMAL
    look(loop, clocks)
    assert loop.exchange.used == [NEW.api_key, OLD.api_key]
