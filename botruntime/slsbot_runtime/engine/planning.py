"""What to do on one symbol after a candle, as a pure function of the signal, the position and the orders
still working. No I/O: the loop carries the actions out (cancels first, then the one trade).

* The target follows the sign of the ensemble direction: > 0 long, < 0 short (flat when long-only),
  exactly 0 means no opinion and keeps what is held. ``must_flatten`` (risk) targets flat.
* An unfinished order that moves toward the target is left to work (a partially filled entry keeps
  filling); one that does not is canceled.
* Held == target: nothing. Held on the wrong side: exit the whole position (a reversal takes two candles,
  the exit, then the entry). Flat with a target: propose an entry to the risk manager, unless entries are
  off (paused, warming up after a gap).
* Dust is flat: a position smaller than one amount step of the market (a buy's fee taken in the base asset, in
  several partial fills, leaves such a rest after the exit) can be neither sold nor ignored by the exchange, so
  it neither asks for an exit nor keeps an entry from being proposed.
"""

from __future__ import annotations

from typing import NamedTuple

from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import QUANTITY_EPSILON, Side


class WorkingOrder(NamedTuple):
    client_order_id: str
    side: Side


class CancelOrder(NamedTuple):
    client_order_id: str
    reason: str


class ExitPosition(NamedTuple):
    side: Side
    reason: str


class ProposeEntry(NamedTuple):
    side: Side
    reason: str


Action = CancelOrder | ExitPosition | ProposeEntry


def target_sign(direction: float, *, long_only: bool, must_flatten: bool) -> int | None:
    """+1, -1 or 0 for the position wanted; None for no opinion (keep what is held)."""
    if must_flatten:
        return 0
    if direction > 0:
        return 1
    if direction < 0:
        return 0 if long_only else -1
    return None


def plan_symbol(
    *,
    direction: float,
    position: float,
    working: list[WorkingOrder],
    long_only: bool,
    must_flatten: bool,
    entries_allowed: bool,
    rules: MarketRules | None = None,
) -> list[Action]:
    """``rules``: the market's, when known; a position they cannot trade (less than one amount step) is flat."""
    target = target_sign(direction, long_only=long_only, must_flatten=must_flatten)
    if target is None:
        return []
    size = abs(position)
    dust = size <= QUANTITY_EPSILON or (rules is not None and rules.floor_amount(size) <= 0.0)
    held = 0 if dust else (1 if position > 0 else -1)
    toward = target if target != 0 else -held
    actions: list[Action] = []
    keep = False
    for order in working:
        if toward != 0 and order.side.sign == toward:
            keep = True
        else:
            actions.append(CancelOrder(order.client_order_id, f"target is {_name(target)}"))
    if keep or held == target:
        return actions
    if held != 0:
        actions.append(ExitPosition(_SELL if held > 0 else _BUY, f"exit {_name(held)}: target {_name(target)}"))
    elif entries_allowed:
        actions.append(ProposeEntry(_BUY if target > 0 else _SELL, f"enter {_name(target)}"))
    return actions


_NAMES = {1: "long", 0: "flat", -1: "short"}
_BUY, _SELL = Side.BUY, Side.SELL  # read once: Python 3.11 reads an enum member through a Python-level hook


def _name(sign: int) -> str:
    return _NAMES[sign]
