"""Which configs the fast mode reproduces exactly, and the check it makes on the equity path after a run.

Fast mode computes the decisions of a whole history at once, then only visits the candles where something
can happen (a decision that changes the target, an order resting on the book). Everything the step mode
does *on every candle* must therefore be either vectorizable or provably inert. Two kinds of checks:

* ``static_blockers(config)``: settings that act candle by candle whatever happens (the volatility halt,
  the kill switch, the anomaly detector) or that size from a per-candle track record (``sizing.method: risk``).
* ``equity_path_blockers(policy, ts, equity, opening_equity=...)``: after the run, the equity path (computed
  exactly, candle by candle, from the fills) must stay clear of every limit the risk manager watches per
  candle: the circuit breaker levels, ``maxDrawdownPercent`` and ``dailyLossLimitPercent`` (from each UTC
  day's opening equity, as the manager measures it). If it never reaches one, the risk
  manager never had a reason to act and the fast run *is* the step run; if it does, the fast run is thrown
  away (``--mode auto`` then runs step mode).

Each reason names the config field and what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from slsbot.api import RuntimeConfig
from slsbot.api.riskpolicy import RiskPolicySpec
from slsbot.api.strategy import ModelRole, SizingMethod
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.domain.timeframes import utc_minute

DAY_MS = 86_400_000


class FastModeUnavailable(ConfigError):
    """Fast mode cannot reproduce step mode for this config or this run. ``--mode fast`` exits 2 naming the
    reasons; ``--mode auto`` runs step mode instead and reports why."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__(f"fast mode cannot reproduce step mode here: {self.summary}; run --mode step or --mode auto")

    @property
    def summary(self) -> str:
        return "; ".join(self.reasons)


def static_blockers(config: RuntimeConfig) -> list[str]:
    """Why this config can never run in fast mode; empty when it may (the run's path is checked after)."""
    reasons = []
    if config.sizing.method != SizingMethod.FIXED_QUANTITY:
        reasons.append(
            "sizing.method: risk sizing takes Kelly from a track record the loop updates on every candle; "
            "fast mode needs sizing.method fixedQuantity"
        )
    if config.risk.volatility_halt.enabled:
        reasons.append(
            "risk.volatilityHalt.enabled: the halt follows each candle's realised volatility; set it to false "
            "for fast mode"
        )
    if config.risk.kill_switch:
        reasons.append("risk.killSwitch: on, so every candle flattens; nothing to backtest quickly")
    anomaly = [model for model in config.ml.models if model.role == ModelRole.ANOMALY]
    if anomaly:
        reasons.append(
            f"ml.models[{anomaly[0].name}]: the anomaly detector scores every candle, is refitted along the run and "
            "its score vetoes entries (risk.anomaly); its live and vectorized scores agree to rounding, not bit "
            "for bit, so a score at the threshold could fall differently: fast mode would not be exact"
        )
    return reasons


def drawdown_percents(equity: np.ndarray) -> np.ndarray:
    """Drawdown from the running peak, in percent, as ``domain.equity.drawdown_percent`` computes it."""
    peak = np.maximum.accumulate(equity)
    safe = np.where(peak > 0, peak, 1.0)
    return np.where(peak > 0, np.maximum(peak - equity, 0.0) / safe * 100.0, 0.0)


def daily_loss_percents(ts: np.ndarray, equity: np.ndarray, *, opening_equity: float) -> np.ndarray:
    """Loss in percent of the UTC day's opening equity, as the risk manager measures it: a day opens at the
    equity after the last candle before it (``opening_equity``, the equity before the first candle, for the
    first day), so a loss in the day's first candle counts."""
    day = ts // DAY_MS
    starts = np.ones(len(ts), dtype=bool)
    starts[1:] = day[1:] != day[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(ts)), 0))
    before = np.concatenate(([opening_equity], equity[:-1])).astype(np.float64)  # the equity before each candle
    start_equity = before[first]
    safe = np.where(start_equity > 0, start_equity, 1.0)
    return np.where(start_equity > 0, np.maximum(start_equity - equity, 0.0) / safe * 100.0, 0.0)


def equity_path_blockers(
    policy: RiskPolicySpec, ts: np.ndarray, equity: np.ndarray, *, opening_equity: float
) -> list[str]:
    """Limits the equity path reaches, one reason each; empty when the risk manager never had to act.

    ``ts`` and ``equity`` hold one point per processed candle, in processing order, as the risk manager's
    ``on_candle`` sees them; ``opening_equity`` is the equity before the first (the starting balance).
    """
    if len(equity) == 0:
        return []
    reasons = []
    drawdown = drawdown_percents(equity)
    worst = int(np.argmax(drawdown))
    levels = sorted(policy.circuit_breaker.levels, key=lambda level: level.drawdown_percent)
    if levels and drawdown[worst] >= levels[0].drawdown_percent:
        first = int(np.argmax(drawdown >= levels[0].drawdown_percent))
        reasons.append(
            f"risk.circuitBreaker.levels: the drawdown reaches {levels[0].drawdown_percent:g}% at {_utc(ts[first])}, "
            f"which trips {levels[0].action}; breakers act candle by candle"
        )
    if drawdown[worst] >= policy.max_drawdown_percent:
        first = int(np.argmax(drawdown >= policy.max_drawdown_percent))
        reasons.append(
            f"risk.maxDrawdownPercent: the drawdown reaches {policy.max_drawdown_percent:g}% at {_utc(ts[first])}, "
            "after which entries are refused"
        )
    daily = daily_loss_percents(ts, equity, opening_equity=opening_equity)
    if daily.max() >= policy.daily_loss_limit_percent:
        first = int(np.argmax(daily >= policy.daily_loss_limit_percent))
        reasons.append(
            f"risk.dailyLossLimitPercent: a {policy.daily_loss_limit_percent:g}% daily loss is reached at "
            f"{_utc(ts[first])}, after which entries are refused that day"
        )
    return reasons


def _utc(ts: int | np.integer) -> str:
    return utc_minute(int(ts))
