"""What the runtime is allowed to trade, and whether one order may go out under it. Pure.

``normal`` trades as the signals ask; ``safe`` opens nothing new and sends only orders that reduce a position
(exits, stops, a risk flatten) with ``reduce_only`` set; ``halted`` cancels every open order, flattens when asked,
then sends no order at all (docs/concepts/runtime-health.md#trading-mode). The mode is set by the control plane
(``POST /trading-mode``) and, to ``safe`` only, by the runtime itself (repeated rejected orders, a reconcile
mismatch); it is kept in the state file under the meta key ``trading_mode``, written before it is in force.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from slsbot.api.health import TradingMode
from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.types import QUANTITY_EPSILON, Side

META_KEY = "trading_mode"
MODES = tuple(str(mode) for mode in TradingMode)


@dataclass(frozen=True, slots=True)
class TradingModeState:
    """The mode in force, why, and for ``halted`` whether positions are to be (and have been) closed."""

    mode: TradingMode = TradingMode.NORMAL
    reason: str | None = None
    flatten: bool = False  # halted: close every position too
    settled: bool = True  # halted: the orders were cancelled (and the positions closed when asked)

    @classmethod
    def load(cls, meta: dict[str, Any]) -> TradingModeState:
        """From the state file's meta; StateError naming the field when it is not what ``meta_value`` wrote."""
        stored = meta.get(META_KEY)
        if stored is None:
            return cls()
        if not isinstance(stored, dict) or stored.get("mode") not in MODES:
            raise StateError(
                f"state meta {META_KEY}: expected {{'mode': one of {', '.join(MODES)}}}, got {stored!r:.80}"
            )
        reason = stored.get("reason")
        return cls(
            TradingMode(stored["mode"]),
            reason if isinstance(reason, str) else None,
            bool(stored.get("flatten", False)),
            bool(stored.get("settled", True)),
        )

    def meta_value(self) -> dict[str, Any]:
        return {"mode": str(self.mode), "reason": self.reason, "flatten": self.flatten, "settled": self.settled}

    @property
    def is_normal(self) -> bool:
        return self.mode is TradingMode.NORMAL


def would_increase(position: float, working: Iterable[tuple[Side, float]], side: Side, quantity: float) -> bool:
    """True unless an order of ``side`` and ``quantity`` only reduces the position: it must be against the position,
    and with the symbol's other unfinished orders on its side (``working``: side, quantity still to fill) it must not
    carry the position past flat. Unfinished orders on the position's side are not counted: they could only add."""
    tolerance = QUANTITY_EPSILON * max(1.0, abs(position))
    if abs(position) <= tolerance or side.sign * position > 0:
        return True  # opens a position, or adds to the one held
    closing = quantity + sum(q for s, q in working if s is side)
    return closing > abs(position) + tolerance


def refusal(state: TradingModeState, *, increases: bool, closing: bool) -> str | None:
    """Why an order may not go out under ``state`` (None: it may). ``increases``: ``would_increase`` of the order;
    ``closing``: the order is part of a halt's or a shutdown's flatten."""
    mode = state.mode
    if mode is TradingMode.NORMAL:
        return None
    why = f" ({state.reason})" if state.reason else ""
    if mode is TradingMode.SAFE:
        if increases:
            return f"refused: safe mode{why}: orders are reduce-only and this one would open or add to a position"
        return None
    if closing and not increases:
        return None
    return f"refused: trading is halted{why}: no orders are sent"
