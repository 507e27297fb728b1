"""The built-in strategy components. Each is a ``VectorizedComponent``: ``on_candle`` for live and step
mode, ``signal_arrays`` for fast mode, and the two agree. See docs/concepts/strategies.md for the table."""

from slsbot_runtime.strategy.base import StrategyComponent
from slsbot_runtime.strategy.library.breakout import DonchianBreakout, KeltnerBreakout
from slsbot_runtime.strategy.library.momentum import DualMomentum, RocMomentum
from slsbot_runtime.strategy.library.reversion import BollingerReversion, RsiReversion, ZscoreReversion
from slsbot_runtime.strategy.library.trend import EmaCross, MacdTrend, SmaCross
from slsbot_runtime.strategy.library.volatility import AtrVolatilityBreakout, VolatilityRegime

LIBRARY_COMPONENTS: tuple[type[StrategyComponent], ...] = (
    SmaCross,
    EmaCross,
    MacdTrend,
    RsiReversion,
    BollingerReversion,
    ZscoreReversion,
    DonchianBreakout,
    KeltnerBreakout,
    RocMomentum,
    DualMomentum,
    AtrVolatilityBreakout,
    VolatilityRegime,
)

__all__ = [
    "LIBRARY_COMPONENTS",
    "AtrVolatilityBreakout",
    "BollingerReversion",
    "DonchianBreakout",
    "DualMomentum",
    "EmaCross",
    "KeltnerBreakout",
    "MacdTrend",
    "RocMomentum",
    "RsiReversion",
    "SmaCross",
    "VolatilityRegime",
    "ZscoreReversion",
]
