"""Shorts on the paper exchange: the collateral a short needs and the interest its borrowed base accrues.

Both are modelled on Binance Margin (see docs/concepts/exchanges.md):

* **Collateral.** A sell that leaves base borrowed must keep ``shortInitialMargin`` x the notional of every short
  covered by the account's equity (the quote balance plus every base balance at its last price, less the interest
  owed). 0.5 lets the shorts reach twice the equity: the 3x of Binance's Cross Margin Classic, Reg T's 150%.
  A sell beyond that is cut to what the collateral allows, like a buy is cut to the cash.
* **Interest.** Binance charges one hour's interest (the daily rate / 24, on the amount borrowed) when base is
  borrowed, then one hour's at the start of every UTC hour while it is still borrowed, in the borrowed asset
  ("Daily Interest Rate for Binance Margin Trading"). The paper exchange accrues exactly that and collects it
  with the next buy of that asset, converted at the fill's price, as part of that fill's fee: so the quote
  balance, the ledger's cash and the trade's result all carry it, and fills stay the only thing that moves them.

The book of borrows changes only at fills, so ``rebuild`` recomputes it from the stored fills after a restart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from slsbot_runtime.domain.types import Fill, Side, split_symbol

HOUR_MS = 3_600_000
_BUY = Side.BUY  # read once: Python 3.11 reads an enum member through a Python-level hook (asked on every fill)


@dataclass(slots=True)
class Borrow:
    amount: float  # base borrowed: minus the (negative) base balance
    owed: float  # interest owed, in base, up to ``accrued_to``
    accrued_to: int  # ms


class BorrowBook:
    """What is borrowed per base asset and the interest owed on it."""

    def __init__(self, daily_rate: float) -> None:
        self.hourly_rate = daily_rate / 24.0
        self._by_base: dict[str, Borrow] = {}

    def borrowed(self, base: str) -> float:
        borrow = self._by_base.get(base)
        return borrow.amount if borrow is not None else 0.0

    def owed(self, base: str, ts: int) -> float:
        """Interest owed on ``base`` at ``ts``, in base: every hour started since the last fill counted."""
        borrow = self._by_base.get(base)
        return 0.0 if borrow is None else borrow.owed + self._accrued(borrow, ts)

    def _accrued(self, borrow: Borrow, ts: int) -> float:
        hours = ts // HOUR_MS - borrow.accrued_to // HOUR_MS  # the starts of hours in (accrued_to, ts]
        return borrow.amount * self.hourly_rate * hours if hours > 0 else 0.0

    def after_fill(self, base: str, balance: float, ts: int, *, repaid: bool) -> None:
        """Book a fill at ``ts`` that left the base balance at ``balance``. ``repaid``: the fill collected the
        interest owed. Newly borrowed base is charged its first hour at once."""
        borrow = self._by_base.get(base)
        before = borrow.amount if borrow is not None else 0.0
        owed = 0.0 if repaid or borrow is None else borrow.owed + self._accrued(borrow, ts)
        amount = max(-balance, 0.0)
        if amount > before:
            owed += (amount - before) * self.hourly_rate
        if amount <= 0.0 and owed <= 0.0:
            self._by_base.pop(base, None)
        else:
            self._by_base[base] = Borrow(amount, owed, ts)

    def collects_on(self, fill_side: Side, base: str) -> bool:
        """Whether a fill of this side collects the interest owed on ``base``: a buy while base is borrowed."""
        return fill_side is _BUY and base in self._by_base

    def rebuild(self, fills: Iterable[Fill]) -> None:
        """Recompute the book from every fill since the start, oldest first, in the exchange's own arithmetic."""
        self._by_base = {}
        balances: dict[str, float] = {}
        for fill in fills:
            base = split_symbol(fill.symbol)[0]
            repaid = self.collects_on(fill.side, base)
            if fill.side is Side.BUY:
                balances[base] = balances.get(base, 0.0) + fill.quantity
            else:
                balances[base] = balances.get(base, 0.0) - fill.quantity
            self.after_fill(base, balances[base], fill.ts, repaid=repaid)


def short_sell_room(
    *, held: float, price: float, equity: float, other_shorts: float, margin: float, fee_rate: float
) -> float:
    """The most base a sell at ``price`` may take: what is held, or more while ``margin`` x every short's notional
    (``other_shorts`` for the other assets) stays within the equity left after this sell's fee."""
    # margin * ((q - held) * price + other_shorts) <= equity - fee_rate * q * price, solved for q
    room = (equity - margin * other_shorts + margin * held * price) / (price * (margin + fee_rate))
    return max(room, held, 0.0)
