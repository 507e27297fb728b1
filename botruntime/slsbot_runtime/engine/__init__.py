"""The trading loop: one candle in, bookkeeping, decision, risk, orders, state out. No threads, no HTTP:
the runtime process (``slsbot_runtime.app``) and the backtester both drive ``TradingLoop`` in-process."""

from slsbot_runtime.engine.loop import LoopSettings, TradingLoop
from slsbot_runtime.engine.status import Phase, RuntimeStatus

__all__ = ["LoopSettings", "Phase", "RuntimeStatus", "TradingLoop"]
