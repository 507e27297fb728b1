"""Round-trip trades from fills: what the backtest report lists and a runtime's ``/performance`` counts. Pure.

A trade is a round trip on one symbol: it opens when the position leaves zero and closes when it returns to zero,
by the ledger's rule (``domain.positions``: an exit filled in pieces that leaves only float residue is flat); a flip
closes one trade and opens the next at the same fill. Entry and exit prices are the volume-weighted prices of the
fills on each side; ``fees`` are every fee paid in the trade, in quote currency; ``pnl`` is net of fees.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from slsbot_runtime.domain.positions import position_after
from slsbot_runtime.domain.types import Fill, Side


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    side: str  # "long" or "short"
    entry_ts: int
    exit_ts: int
    quantity: float
    entry_price: float
    exit_price: float
    fees: float
    pnl: float

    @property
    def return_pct(self) -> float:
        cost = self.entry_price * self.quantity
        return 100.0 * self.pnl / cost if cost > 0 else 0.0

    def to_json(self) -> dict:
        data = asdict(self)
        data["return_pct"] = self.return_pct
        return data


@dataclass(slots=True)
class _Open:
    sign: int
    entry_ts: int
    entry_qty: float = 0.0
    entry_value: float = 0.0
    exit_qty: float = 0.0
    exit_value: float = 0.0
    fees: float = 0.0


def round_trips(fills: Iterable[Fill]) -> list[Trade]:
    """Round-trip trades from fills in time order. An unclosed position at the end is not a trade."""
    positions: dict[str, float] = {}
    open_trades: dict[str, _Open] = {}
    trades: list[Trade] = []
    for fill in fills:
        qty = fill.quantity
        signed = qty if fill.side is Side.BUY else -qty
        before = positions.get(fill.symbol, 0.0)
        fee_quote = fill.fee if fill.fee_currency != fill.symbol.split("/")[0] else fill.fee * fill.price
        after = position_after(before, signed)  # exactly 0.0 where the ledger is flat
        positions[fill.symbol] = after
        current = open_trades.get(fill.symbol)
        if current is None:  # flat before this fill: it opens a trade
            current = _Open(sign=1 if signed > 0 else -1, entry_ts=fill.ts)
            open_trades[fill.symbol] = current
        same_direction = (signed > 0) == (current.sign > 0)
        if same_direction:
            current.entry_qty += qty
            current.entry_value += qty * fill.price
            current.fees += fee_quote
            continue
        closing = min(qty, abs(before))
        share = closing / qty if qty > 0 else 1.0
        current.exit_qty += closing
        current.exit_value += closing * fill.price
        current.fees += fee_quote * share
        if after == 0.0 or (after > 0) != (before > 0):
            trades.append(_close(fill.symbol, current, fill.ts))
            del open_trades[fill.symbol]
            if after != 0.0:  # the fill flipped the position: the remainder opens a new trade
                rest = qty - closing
                flipped = _Open(sign=1 if signed > 0 else -1, entry_ts=fill.ts)
                flipped.entry_qty = rest
                flipped.entry_value = rest * fill.price
                flipped.fees = fee_quote * (1 - share)
                open_trades[fill.symbol] = flipped
    return trades


def _close(symbol: str, trade: _Open, exit_ts: int) -> Trade:
    entry_price = trade.entry_value / trade.entry_qty
    exit_price = trade.exit_value / trade.exit_qty
    gross = (exit_price - entry_price) * trade.exit_qty * trade.sign
    return Trade(
        symbol=symbol,
        side="long" if trade.sign > 0 else "short",
        entry_ts=trade.entry_ts,
        exit_ts=exit_ts,
        quantity=trade.exit_qty,
        entry_price=entry_price,
        exit_price=exit_price,
        fees=trade.fees,
        pnl=gross - trade.fees,
    )
