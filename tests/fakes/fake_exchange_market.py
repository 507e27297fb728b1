"""The venue-neutral core of the fake exchange: a manual clock, recorded candles served as klines, and a tiny
matching engine holding orders, fills and balances. ``fake_exchange_server`` puts Binance's and Bybit's REST
shapes on top of it. A ``FillPlan`` makes marketable orders fill late or in parts as the clock moves on, as a
thin book does. Test helper only; not shipped."""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.feather as feather

REPO_ROOT = Path(__file__).resolve().parents[2]
RECORDED_1H = REPO_ROOT / "data" / "market" / "binance-spot-1h-2024"
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
FEE_RATE = 0.001


def utc_ms(text: str) -> int:
    """``"2025-01-01T05:30"`` (UTC) in milliseconds."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


class ManualClock:
    """Time that moves only when told to; ``sleep`` moves it instead of waiting. Shared by the fake server
    and the code under test, so an hour of candles passes in no wall time."""

    def __init__(self, start_ms: int) -> None:
        self._now_ms = start_ms
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now_ms(self) -> int:
        with self._lock:
            return self._now_ms

    def now(self) -> float:
        return self.now_ms() / 1000.0

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now_ms += round(seconds * 1000)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def set(self, ms: int) -> None:
        with self._lock:
            self._now_ms = ms


class PacedClock(ManualClock):
    """Exchange time that runs ``speed`` times faster than the wall clock from ``start_ms`` (3600 / seconds per
    candle), for runs that last minutes of wall time against real processes; ``advance`` still jumps it."""

    def __init__(self, start_ms: int, speed: float) -> None:
        if not speed > 0:
            raise ValueError(f"speed: must be positive, got {speed!r}")
        super().__init__(start_ms)
        self.speed = speed
        self._began = time.monotonic()

    def now_ms(self) -> int:
        return super().now_ms() + int((time.monotonic() - self._began) * 1000 * self.speed)

    def set(self, ms: int) -> None:
        with self._lock:
            self._now_ms = ms
            self._began = time.monotonic()


class RecordedKlines:
    """Real Binance 1h candles from ``data/market``; what "now" is decides which candle is still forming."""

    def __init__(self, folder: Path = RECORDED_1H) -> None:
        self._rows: dict[str, list[tuple[int, float, float, float, float, float]]] = {}
        self._ts_index: dict[str, list[int]] = {}
        for path in sorted(folder.glob("*_USDT-1h.feather")):
            base = path.name.split("_", 1)[0]
            table = feather.read_table(path)
            dates = table.column("date").cast("int64").to_pylist()  # ns
            columns = [table.column(name).to_pylist() for name in ("open", "high", "low", "close", "volume")]
            self._rows[base + "USDT"] = [(d // 1_000_000, *values) for d, *values in zip(dates, *columns, strict=True)]

    @property
    def market_ids(self) -> list[str]:
        return sorted(self._rows)

    def first_ts(self, market_id: str) -> int:
        return self._rows[market_id][0][0]

    def last_ts(self, market_id: str) -> int:
        return self._rows[market_id][-1][0]

    def candles(
        self,
        market_id: str,
        now_ms: int,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
        newest: bool = False,
    ) -> list[tuple[int, float, float, float, float, float]]:
        """Candles opened by ``now_ms`` within [start_ms, end_ms], oldest first: the first ``limit`` of them,
        or the last ``limit`` when ``newest`` or no start is given. The one still forming is partial (open
        price only, the volume so far), as an exchange shows it."""
        rows = self._rows[market_id]
        times = self._times(market_id)
        upper = now_ms if end_ms is None else min(now_ms, end_ms)
        lo = 0 if start_ms is None else bisect.bisect_left(times, start_ms)
        hi = bisect.bisect_right(times, upper)
        lo, hi = (max(lo, hi - limit), hi) if newest or start_ms is None else (lo, min(hi, lo + limit))
        selected = rows[lo:hi]
        if selected and selected[-1][0] + HOUR_MS > now_ms:
            ts, open_, *_rest, volume = selected[-1]
            fraction = (now_ms - ts) / HOUR_MS
            selected = [*selected[:-1], (ts, open_, open_, open_, open_, round(volume * fraction, 8))]
        return selected

    def _times(self, market_id: str) -> list[int]:
        if market_id not in self._ts_index:
            self._ts_index[market_id] = [row[0] for row in self._rows[market_id]]
        return self._ts_index[market_id]

    def price(self, market_id: str, now_ms: int) -> float:
        """The last traded price at ``now_ms``: the close of the newest closed candle."""
        index = bisect.bisect_right(self._times(market_id), now_ms - HOUR_MS) - 1
        if index < 0:
            raise LookupError(f"no recorded candle for {market_id} before {now_ms}")
        return self._rows[market_id][index][4]


@dataclass
class FakeOrder:
    order_id: int
    client_order_id: str
    market_id: str
    side: str  # "BUY" / "SELL"
    type: str  # "MARKET" / "LIMIT"
    quantity: float
    price: float | None
    created_ms: int
    status: str = "NEW"  # NEW, PARTIALLY_FILLED, FILLED, CANCELED
    filled: float = 0.0
    quote_filled: float = 0.0
    updated_ms: int = 0
    reserve_price: float | None = None  # what a BUY locks per unit while it waits (the limit, or the last price)
    fill_due_ms: tuple[int, ...] = ()  # when each remaining part fills, for an order under a FillPlan

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass
class FakeTrade:
    trade_id: int
    order: FakeOrder
    price: float
    quantity: float
    fee: float
    fee_asset: str
    ts: int
    is_maker: bool


class InsufficientBalance(Exception):
    pass


@dataclass
class Fault:
    """Make the next ``times`` matching requests fail. ``kind``: ``http_5xx``, ``timeout`` (answer after
    ``delay_s``, without doing the work), ``timeout_after_processing`` (do the work, then answer too late),
    ``rate_limit``, ``invalid_key``, ``insufficient_balance``, ``order_unknown`` (an order query that does
    not see an order that exists, as a lagging replica answers)."""

    kind: str
    times: int = 1
    path: str | None = None
    method: str | None = None
    delay_s: float = 2.0


@dataclass(frozen=True)
class FillPlan:
    """How a marketable order fills: ``parts`` equal fills, the first ``delay_ms`` after the order, then one
    every ``interval_ms`` of the exchange's clock, each at the last price when it is due. The default fills at once.
    The order shows ``NEW`` until its first part and ``PARTIALLY_FILLED`` until its last."""

    parts: int = 1
    delay_ms: int = 0
    interval_ms: int = 0

    def __post_init__(self) -> None:
        if self.parts < 1:
            raise ValueError(f"parts: must be at least 1, got {self.parts}")
        if self.delay_ms < 0 or self.interval_ms < 0:
            raise ValueError(f"delay_ms/interval_ms: must not be negative, got {self.delay_ms}, {self.interval_ms}")

    @property
    def immediate(self) -> bool:
        return self.parts == 1 and self.delay_ms == 0

    def due_times(self, created_ms: int) -> tuple[int, ...]:
        return tuple(created_ms + self.delay_ms + k * self.interval_ms for k in range(self.parts))


@dataclass
class FakeAccount:
    """Orders, fills and balances of one account, plus the faults to inject. Guarded by ``lock``."""

    klines: RecordedKlines
    clock: ManualClock
    balances: dict[str, float] = field(default_factory=lambda: {"USDT": 10_000.0, "BTC": 0.5})
    locked: dict[str, float] = field(default_factory=dict)
    orders: list[FakeOrder] = field(default_factory=list)
    trades: list[FakeTrade] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    fill_plan: FillPlan = field(default_factory=FillPlan)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _order_ids: itertools.count = field(default_factory=lambda: itertools.count(1000))
    _trade_ids: itertools.count = field(default_factory=lambda: itertools.count(500))

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (fault.path is None or path.startswith(fault.path)) and fault.method in (None, method):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def orders_by_client_id(self, client_order_id: str) -> list[FakeOrder]:
        with self.lock:
            return [o for o in self.orders if o.client_order_id == client_order_id]

    def find(
        self, market_id: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> FakeOrder | None:
        with self.lock:
            self.match_resting()
            for order in reversed(self.orders):
                if order.market_id != market_id:
                    continue
                if (order_id is not None and order.order_id == order_id) or (
                    client_order_id is not None and order.client_order_id == client_order_id
                ):
                    return order
        return None

    def place(
        self, market_id: str, side: str, type_: str, quantity: float, price: float | None, client_order_id: str
    ) -> FakeOrder:
        """Accept and (for a marketable order) fill at the last price; raises InsufficientBalance."""
        base, quote = market_id[:-4], market_id[-4:]
        now = self.clock.now_ms()
        with self.lock:
            self.match_resting()
            last = self.klines.price(market_id, now)
            reserve_price = price if type_ == "LIMIT" and price is not None else last
            if side == "BUY" and self.free(quote) < quantity * reserve_price - 1e-9:
                raise InsufficientBalance
            if side == "SELL" and self.free(base) < quantity - 1e-12:
                raise InsufficientBalance
            order = FakeOrder(
                next(self._order_ids),
                client_order_id,
                market_id,
                side,
                type_,
                quantity,
                price,
                now,
                updated_ms=now,
                reserve_price=reserve_price,
            )
            self.orders.append(order)
            marketable = type_ == "MARKET" or (side == "BUY" and price >= last) or (side == "SELL" and price <= last)
            if marketable and self.fill_plan.immediate:
                self._fill(order, last, now, is_maker=False)
            else:
                self._lock_funds(order, +1)
                if marketable:
                    order.fill_due_ms = self.fill_plan.due_times(now)
                    self.match_resting()  # parts due at once (no delay) fill now
            return order

    def cancel(self, order: FakeOrder) -> None:
        with self.lock:
            self._lock_funds(order, -1, order.quantity - order.filled)
            order.fill_due_ms = ()
            order.status = "CANCELED"
            order.updated_ms = self.clock.now_ms()

    def free(self, asset: str) -> float:
        return self.balances.get(asset, 0.0) - self.locked.get(asset, 0.0)

    def match_resting(self) -> None:
        """Fill the parts of orders under a ``FillPlan`` that are due, and resting limit orders whose price a closed
        candle since their creation has touched."""
        now = self.clock.now_ms()
        for order in self.orders:
            if order.is_open and order.fill_due_ms:
                self._fill_due_parts(order, now)
                continue
            if not (order.is_open and order.type == "LIMIT"):
                continue
            candles = self.klines.candles(order.market_id, now, start_ms=order.created_ms - HOUR_MS, limit=10_000)
            for ts, _o, high, low, _c, _v in candles:
                if ts + HOUR_MS > now or ts + HOUR_MS <= order.created_ms:
                    continue
                if (order.side == "BUY" and low <= order.price) or (order.side == "SELL" and high >= order.price):
                    self._lock_funds(order, -1)
                    self._fill(order, order.price, ts + HOUR_MS, is_maker=True)
                    break

    def _fill_due_parts(self, order: FakeOrder, now: int) -> None:
        while order.fill_due_ms and order.fill_due_ms[0] <= now:
            parts_left = len(order.fill_due_ms)
            due, order.fill_due_ms = order.fill_due_ms[0], order.fill_due_ms[1:]
            remaining = order.quantity - order.filled
            part = remaining if parts_left == 1 else round(remaining / parts_left, 8)
            price = order.price if order.type == "LIMIT" else self.klines.price(order.market_id, due)
            self._lock_funds(order, -1, part)
            self._fill(order, price, due, is_maker=False, quantity=part)

    def _lock_funds(self, order: FakeOrder, sign: int, quantity: float | None = None) -> None:
        base, quote = order.market_id[:-4], order.market_id[-4:]
        quantity = order.quantity if quantity is None else quantity
        per_unit = order.price if order.price is not None else order.reserve_price or 0.0
        asset, amount = (quote, quantity * per_unit) if order.side == "BUY" else (base, quantity)
        self.locked[asset] = self.locked.get(asset, 0.0) + sign * amount

    def _fill(self, order: FakeOrder, price: float, ts: int, *, is_maker: bool, quantity: float | None = None) -> None:
        """Fill ``quantity`` (default: what is left) of ``order`` at ``price``."""
        base, quote = order.market_id[:-4], order.market_id[-4:]
        quantity = order.quantity - order.filled if quantity is None else quantity
        if order.side == "BUY":
            fee, fee_asset = round(quantity * FEE_RATE, 8), base  # charged as reported: to 8 decimals
            self.balances[quote] = self.balances.get(quote, 0.0) - quantity * price
            self.balances[base] = self.balances.get(base, 0.0) + quantity - fee
        else:
            fee, fee_asset = round(quantity * price * FEE_RATE, 8), quote
            self.balances[base] = self.balances.get(base, 0.0) - quantity
            self.balances[quote] = self.balances.get(quote, 0.0) + quantity * price - fee
        order.filled += quantity
        order.quote_filled += quantity * price
        order.status = "FILLED" if order.quantity - order.filled <= 1e-12 else "PARTIALLY_FILLED"
        order.updated_ms = ts
        self.trades.append(FakeTrade(next(self._trade_ids), order, price, quantity, fee, fee_asset, ts, is_maker))
