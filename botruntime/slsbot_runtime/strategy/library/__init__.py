"""The built-in strategy components. Each is a ``VectorizedComponent``: ``on_candle`` for live and step
mode, ``signal_arrays`` for fast mode, and the two agree. See docs/concepts/strategies.md for the table."""

from slsbot_runtime.strategy.base import StrategyComponent
from slsbot_runtime.strategy.library.trend import SmaCross

LIBRARY_COMPONENTS: tuple[type[StrategyComponent], ...] = (SmaCross,)

__all__ = ["LIBRARY_COMPONENTS", "SmaCross"]
