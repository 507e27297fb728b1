"""Equity arithmetic shared by the risk manager, the backtest's checks and ``slsbot report``."""

from __future__ import annotations

from collections.abc import Iterable


def drawdown_percent(peak: float, equity: float) -> float:
    """How far ``equity`` is below ``peak``, in percent of the peak; 0 when there is no positive peak."""
    if peak <= 0:
        return 0.0
    down = peak - equity
    return (0.0 if down < 0.0 else down) / peak * 100.0  # max(down, 0.0), without the builtin's call


def max_drawdown_percent(equity: Iterable[float]) -> float:
    """The deepest ``drawdown_percent`` of an equity curve below its running peak; 0 for an empty curve."""
    peak, worst = float("-inf"), 0.0
    for value in equity:
        peak = max(peak, value)
        worst = max(worst, drawdown_percent(peak, value))
    return worst
