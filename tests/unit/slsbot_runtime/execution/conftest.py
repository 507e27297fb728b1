"""A real paper exchange behind a thin wrapper that can fail on cue, and a manager over a real state file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from slsbot.api import PaperSettings
from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import Balance, Candle, Fill, Order, OrderRequest
from slsbot_runtime.exchange.base import Exchange
from slsbot_runtime.exchange.paper import PaperExchange
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.execution.order_manager import OrderManager
from slsbot_runtime.persistence.store import StateStore

HOUR = 3_600_000
SYMBOL = "BTC/USDT"


class FlakyExchange(Exchange):
    """Delegates to a PaperExchange; ``place_failures`` (``fetch_fills_failures``) are raised, one per call of
    ``place_order`` (``fetch_fills``), before delegating."""

    features = PaperExchange.features

    def __init__(self, paper: PaperExchange) -> None:
        self.paper = paper
        self.place_failures: list[Exception] = []
        self.fetch_fills_failures: list[Exception] = []
        self.placed: list[str] = []
        self.before_place: Callable[[OrderRequest], None] | None = None

    def place_order(self, request: OrderRequest) -> Order:
        if self.before_place is not None:
            self.before_place(request)
        if self.place_failures:
            raise self.place_failures.pop(0)
        self.placed.append(request.client_order_id)
        return self.paper.place_order(request)

    def cancel_order(self, client_order_id: str, symbol: str) -> Order:
        return self.paper.cancel_order(client_order_id, symbol)

    def fetch_order(self, client_order_id: str, symbol: str) -> Order | None:
        return self.paper.fetch_order(client_order_id, symbol)

    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        return self.paper.fetch_open_orders(symbol)

    def fetch_fills(self, symbol: str, since_ts: int = 0) -> list[Fill]:
        if self.fetch_fills_failures:
            raise self.fetch_fills_failures.pop(0)
        return self.paper.fetch_fills(symbol, since_ts)

    def fetch_balances(self) -> dict[str, Balance]:
        return self.paper.fetch_balances()

    def on_candle(self, candle: Candle) -> list[Fill]:
        return self.paper.on_candle(candle)

    def market_rules(self, symbol: str) -> MarketRules:
        return self.paper.market_rules(symbol)


def candle(hour: int, price: float = 100.0, volume: float = 1e9) -> Candle:
    return Candle(SYMBOL, hour * HOUR, price, price + 1, price - 1, price, volume)


@pytest.fixture
def candle_at() -> Callable[..., Candle]:
    """``candle_at(hour, price=100, volume=1e9)``: a BTC/USDT 1h candle."""
    return candle


@pytest.fixture
def exchange() -> FlakyExchange:
    paper = PaperExchange(
        PaperSettings(spread_bps=0, slippage_bps=0, fee_rate=0.001, max_volume_participation=1.0), interval_ms=HOUR
    )
    return FlakyExchange(paper)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def make_manager(exchange: FlakyExchange, state_path: Path) -> Callable[..., OrderManager]:
    def make(**kwargs: object) -> OrderManager:
        store = StateStore.open(state_path)
        ledger = Ledger(cash=10_000.0, quote_currency="USDT")
        return OrderManager(exchange=exchange, store=store, ledger=ledger, strategy_key="default/test", **kwargs)  # type: ignore[arg-type]

    return make
