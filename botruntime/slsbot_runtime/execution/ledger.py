"""The bot's own account: cash, signed positions and the track record of closed trades.

Fills are the only thing that changes it. Fees are paid in the quote currency (taken from cash); a fee
charged in the base currency reduces the quantity received instead; a fee in any other currency (a
discount token) is counted in ``other_fees`` and left out of the equity.
"""

from __future__ import annotations

from slsbot_runtime.domain.positions import is_flat
from slsbot_runtime.domain.types import QUANTITY_EPSILON, Fill, PortfolioSnapshot, Position, Side, split_symbol
from slsbot_runtime.persistence.store import PositionRow

_BUY = Side.BUY  # read once: Python 3.11 reads an enum member through a Python-level hook


class Ledger:
    def __init__(self, *, cash: float, quote_currency: str) -> None:
        self.cash = cash
        self.quote_currency = quote_currency
        self.positions: dict[str, PositionRow] = {}
        self.prices: dict[str, float] = {}
        self.trade_count = 0  # fills applied
        self.other_fees: dict[str, float] = {}

    def position(self, symbol: str) -> PositionRow:
        row = self.positions.get(symbol)
        if row is None:
            row = self.positions[symbol] = PositionRow(symbol)
        return row

    def quantity(self, symbol: str) -> float:
        row = self.positions.get(symbol)
        return row.quantity if row is not None else 0.0

    def apply(self, fill: Fill) -> PositionRow:
        """Book one fill; returns the position it changed."""
        base, quote = split_symbol(fill.symbol)
        quantity = fill.quantity
        notional = quantity * fill.price
        if fill.fee_currency == quote:
            cash_fee = fill.fee
        else:
            cash_fee = 0.0
            if fill.fee_currency == base:
                quantity -= fill.fee if fill.side is _BUY else 0.0
            else:
                self.other_fees[fill.fee_currency] = self.other_fees.get(fill.fee_currency, 0.0) + fill.fee
        buy = fill.side is _BUY
        if buy:
            self.cash -= notional + cash_fee
        else:
            self.cash += notional - cash_fee
        row = self.position(fill.symbol)
        self._move(row, quantity if buy else -quantity, fill.price, cash_fee)  # fill.side.sign * quantity
        self.trade_count += 1
        return row

    def _move(self, row: PositionRow, delta: float, price: float, fee: float) -> None:
        held = row.quantity
        if held == 0.0 or (held > 0) == (delta > 0):
            # opening or adding: the fee goes into the cost basis, so a trade's result includes both fees
            total = held + delta
            cost = row.average_price * abs(held) + price * abs(delta) + (fee if delta > 0 else -fee)
            row.average_price = cost / abs(total) if total else 0.0
            row.quantity = total
            return
        closing = min(abs(delta), abs(held))
        pnl = closing * (price - row.average_price) * (1 if held > 0 else -1) - fee
        row.realized_pnl += pnl
        if pnl >= 0:
            row.wins += 1
            row.gross_profit += pnl
        else:
            row.losses += 1
            row.gross_loss += -pnl
        remaining = held + delta
        if is_flat(remaining, held):  # an exit filled in pieces leaves float residue
            row.quantity, row.average_price = 0.0, 0.0
        elif (remaining > 0) == (held > 0):
            row.quantity = remaining
        else:  # flipped through zero: the rest opens a new position at this price
            row.quantity, row.average_price = remaining, price

    def mark(self, symbol: str, price: float) -> None:
        self.prices[symbol] = price

    def equity(self) -> float:
        value = self.cash
        positions = self.positions
        # a fixed order: the same sum, bit for bit, after a restore (one symbol needs no sorting: every candle)
        for symbol in positions if len(positions) < 2 else sorted(positions):
            row = positions[symbol]
            if row.quantity:
                value += row.quantity * self.prices.get(symbol, row.average_price)
        return value

    def realized(self) -> tuple[float, int, int]:
        """(profit, wins, losses) of the trades closed on every position, net of fees: the positions' own figures,
        so a restored ledger gives the same sums."""
        rows = [self.positions[symbol] for symbol in sorted(self.positions)]
        return sum(row.realized_pnl for row in rows), sum(row.wins for row in rows), sum(row.losses for row in rows)

    def unrealized_pnl(self) -> float:
        """Open positions marked at their last price, against their cost (the entry fee included)."""
        value = 0.0
        for symbol in sorted(self.positions):
            row = self.positions[symbol]
            if row.quantity:
                value += row.quantity * (self.prices.get(symbol, row.average_price) - row.average_price)
        return value

    def open_positions(self) -> int:
        return sum(1 for row in self.positions.values() if abs(row.quantity) > QUANTITY_EPSILON)

    def snapshot(self, ts: int) -> PortfolioSnapshot:
        positions = {
            s: Position(s, r.quantity, r.average_price, r.realized_pnl)
            for s, r in self.positions.items()
            if abs(r.quantity) > QUANTITY_EPSILON
        }
        return PortfolioSnapshot(ts, self.cash, self.equity(), positions, dict(self.prices))

    def restore(self, *, cash: float, positions: dict[str, PositionRow], trade_count: int) -> None:
        self.cash = cash
        self.positions = dict(positions)
        self.trade_count = trade_count
