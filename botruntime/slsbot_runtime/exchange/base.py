"""What the runtime needs from an exchange. ``PaperExchange`` and ``CcxtExchange`` implement it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import Balance, Candle, Fill, Order, OrderRequest


class Exchange(ABC):
    """A spot exchange account, seen through its orders, fills and balances.

    Every method may raise only ``slsbot_runtime.domain.errors.ExchangeError`` subclasses.
    ``place_order`` is idempotent on ``client_order_id``: placing an id the exchange already knows returns
    that order instead of a second one.
    """

    #: What this exchange supports, instead of ``if exchange == ...`` branches in callers.
    features: ClassVar[dict[str, bool]] = {
        "fetch_order_by_client_id": True,
        "cancel_by_client_id": True,
        "fetch_my_trades": True,
        "watch_ohlcv": False,
    }

    @abstractmethod
    def place_order(self, request: OrderRequest) -> Order: ...

    @abstractmethod
    def cancel_order(self, client_order_id: str, symbol: str) -> Order: ...

    @abstractmethod
    def fetch_order(self, client_order_id: str, symbol: str) -> Order | None:
        """The order with this client id, or None if the exchange never saw it."""

    @abstractmethod
    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]: ...

    @abstractmethod
    def fetch_fills(self, symbol: str, since_ts: int = 0) -> list[Fill]:
        """Fills at or after ``since_ts`` (ms), oldest first."""

    @abstractmethod
    def fetch_balances(self) -> dict[str, Balance]: ...

    def market_rules(self, symbol: str) -> MarketRules | None:
        """The amount step, price tick and minimums of ``symbol``; None when the exchange cannot say (the caller
        then sends what it has and the exchange judges it)."""
        return None

    def on_candle(self, candle: Candle) -> list[Fill]:
        """A simulated exchange matches its resting orders against the new candle; real ones do nothing."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
