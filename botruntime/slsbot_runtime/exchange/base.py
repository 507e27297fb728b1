"""What the runtime needs from an exchange. ``PaperExchange`` and ``CcxtExchange`` implement it.

``BookPersistence`` is a capability: an exchange whose book lives in this process (the paper exchange) hands it
out with ``book_persistence()``, so the engine stores, restores and settles that book without asking which
exchange it holds. A real exchange keeps its own book and returns None.

``RotatableKeys`` is another: an exchange that signs with keys (the ccxt adapter) can switch them in place, for a
credential rotation while trading.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import Balance, Candle, Fill, Order, OrderRequest

if TYPE_CHECKING:
    from slsbot_runtime.exchange.credentials import ExchangeCredentials


@runtime_checkable
class RotatableKeys(Protocol):
    """An exchange whose keys can be switched without rebuilding its client (its time offset and nonce kept)."""

    def use_credentials(self, credentials: ExchangeCredentials) -> None: ...

    def fetch_balances(self) -> dict[str, Balance]: ...


@dataclass(slots=True)
class BookChanges:
    """What changed in a book since the last ``drain_changes``: rows to upsert."""

    orders: list[Order] = field(default_factory=list)
    eligible_ts: dict[str, int] = field(default_factory=dict)  # client id -> first candle open time it may fill
    fills: list[Fill] = field(default_factory=list)
    balances: list[Balance] = field(default_factory=list)
    clock_ms: int = 0

    def __bool__(self) -> bool:
        return bool(self.orders or self.fills or self.balances)


class BookPersistence(ABC):
    """A book kept in this process (orders, fills, balances, clock), which only the runtime's state file keeps
    across a restart: written with the runtime's own rows in one transaction, read back on start.

    Because no exchange stands behind it, it is also the one that must settle a flatten at shutdown itself: no
    next candle will come to fill the exit."""

    @abstractmethod
    def drain_changes(self) -> BookChanges:
        """Orders, fills and balances changed since the last call (then forgotten)."""

    @abstractmethod
    def last_closes(self) -> dict[str, float]:
        """The last close seen per symbol (stored with the book, so ``settle_now`` works after a restart)."""

    @abstractmethod
    def restore(
        self,
        *,
        orders: Iterable[Order],
        eligible_ts: dict[str, int],
        fills: Iterable[Fill],
        balances: Iterable[Balance],
        clock_ms: int,
        last_close: dict[str, float] | None = None,
    ) -> None:
        """Load a stored book (orders in placement order, fills oldest first), replacing this one."""

    @abstractmethod
    def settle_now(self) -> list[Fill]:
        """Fill every resting market order now, at the last close seen (a flatten at shutdown)."""


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

    def book_persistence(self) -> BookPersistence | None:
        """The book to store with the runtime's state, when this exchange keeps it in this process; None when the
        exchange keeps its own (the reconciliation then asks it)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
