"""The runtime's vocabulary: candles, signals, orders, fills and positions. Plain dataclasses (the candle a
NamedTuple), no I/O."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

#: Quantities at or below this are nothing: a closed position, an order with nothing left to fill.
QUANTITY_EPSILON = 1e-12
#: What a client order id may be: Binance's rule for newClientOrderId; Bybit's orderLinkId accepts the same set.
CLIENT_ORDER_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


@functools.lru_cache(maxsize=4096)  # a pure function asked several times per fill for the same few symbols
def split_symbol(symbol: str) -> tuple[str, str]:
    """``BTC/USDT`` -> (``BTC``, ``USDT``); ``BTC/USDT:USDT`` -> (``BTC``, ``USDT``)."""
    base, _, rest = symbol.partition("/")
    return base, rest.split(":")[0]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is _BUY else -1

    def opposite(self) -> Side:
        return _SELL if self is _BUY else _BUY


#: The members, read once: on Python 3.11 ``Side.BUY`` goes through ``EnumType.__getattr__``'s Python-level hook, a cost
#: the order path pays many times per order. The modules on that path keep such aliases of the members they compare.
_BUY, _SELL = Side.BUY, Side.SELL


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    PENDING = "pending"  # intent persisted, not yet acknowledged by the exchange
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_STATUSES


_TERMINAL_STATUSES = frozenset((OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED))


class Candle(NamedTuple):
    """One OHLCV candle; ``ts`` is the candle's open time in milliseconds since the epoch, UTC.

    A NamedTuple rather than a frozen dataclass: as immutable and hashable, and cheap to build, which matters as one
    is built for every candle a replay or a backtest feeds the loop (a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__``: about 0.8 µs a candle). The replay maps ``Candle._make`` over its columns.
    """

    symbol: str
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class Signal:
    """A component's view: ``direction`` in [-1, 1] (-1 short, 0 flat, 1 long), ``confidence`` in [0, 1]."""

    direction: float
    confidence: float = 1.0
    reason: str = ""


FLAT = Signal(0.0, 0.0, "flat")


@dataclass(slots=True)
class OrderRequest:
    """What the bot wants to send. ``client_order_id`` is deterministic, so a resend is recognised."""

    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    reduce_only: bool = False
    reason: str = ""
    created_ts: int = 0


@dataclass(slots=True)
class Order:
    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    status: OrderStatus = OrderStatus.PENDING
    exchange_order_id: str | None = None
    filled_quantity: float = 0.0
    average_price: float | None = None
    created_ts: int = 0
    updated_ts: int = 0
    reason: str = ""

    @property
    def remaining(self) -> float:
        left = self.quantity - self.filled_quantity
        return 0.0 if left < 0.0 else left  # max(left, 0.0) without the builtin's call (read several times per order)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. ``fill_id`` is unique per exchange, so a fill seen twice is counted once."""

    fill_id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float
    fee_currency: str
    ts: int


@dataclass(slots=True)
class Position:
    symbol: str
    quantity: float = 0.0  # signed: > 0 long, < 0 short
    average_price: float = 0.0
    realized_pnl: float = 0.0

    @property
    def is_open(self) -> bool:
        return abs(self.quantity) > QUANTITY_EPSILON


@dataclass(slots=True)
class Balance:
    currency: str
    total: float
    free: float


@dataclass(slots=True)
class PortfolioSnapshot:
    """What the risk manager and the reports see of the account at one moment."""

    ts: int
    cash: float
    equity: float
    positions: dict[str, Position] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)
