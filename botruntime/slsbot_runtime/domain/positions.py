"""When a position is flat: the one rule the ledger books by and the backtest report counts trades by.

Quantities are floats, so an exit that fills in pieces (a volume cap, a partial fill) rarely brings a position
back to exactly zero: ``500480.736... - 162528.883... - 213102.938... - 124848.914...`` leaves 2.9e-11. A
position reduced to within ``QUANTITY_EPSILON`` of its own size is therefore flat, and booked as exactly 0.0.
"""

from __future__ import annotations

from slsbot_runtime.domain.types import QUANTITY_EPSILON


def is_flat(remaining: float, held: float) -> bool:
    """True when ``remaining``, what a reducing fill left of a position of ``held``, is only float residue:
    at most ``QUANTITY_EPSILON`` relative to the position (absolute below a size of 1)."""
    return abs(remaining) <= QUANTITY_EPSILON * max(1.0, abs(held))


def position_after(held: float, delta: float) -> float:
    """The signed position after a fill of signed size ``delta`` on ``held``, as ``Ledger`` books it: the sum,
    or exactly 0.0 when the fill reduced the position and left it flat (``is_flat``)."""
    total = held + delta
    if held != 0.0 and (held > 0) != (delta > 0) and is_flat(total, held):
        return 0.0
    return total
