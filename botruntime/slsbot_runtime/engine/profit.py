"""Profit at a glance: the figures ``/status`` shows, kept incrementally so that building a status costs nothing
that grows with the history.

* ``EquityWatermark`` follows the equity after every processed candle: its peak and the deepest drawdown below the
  running peak. The loop stores both in ``meta`` (``equity_peak``, ``max_drawdown_pct``) with every commit, in the
  same transaction as the cursor, so a restarted runtime goes on from exactly where the committed candles left
  it. A state file written before they were kept gets them once from its stored equity rows.
* ``profit_figures`` derives the rest from the ledger (its positions carry the realised result, wins and losses
  of their closed trades, so a restored ledger gives the same figures) and the starting equity (``meta``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from slsbot_runtime.domain.equity import drawdown_percent
from slsbot_runtime.execution.ledger import Ledger

META_PEAK = "equity_peak"
META_MAX_DRAWDOWN = "max_drawdown_pct"


@dataclass(slots=True)
class EquityWatermark:
    peak: float | None = None
    max_drawdown_pct: float = 0.0

    def observe(self, equity: float) -> None:
        """The equity after one candle (a few float operations: this is on every candle's path)."""
        peak = self.peak
        if peak is None or equity > peak:
            self.peak = equity
        elif peak > 0.0:
            drawdown = (peak - equity) / peak * 100.0
            if drawdown > self.max_drawdown_pct:
                self.max_drawdown_pct = drawdown

    def drawdown_pct(self, equity: float) -> float:
        """How far ``equity`` is below the peak now, in percent."""
        peak = self.peak
        return 0.0 if peak is None else drawdown_percent(max(peak, equity), equity)


class ProfitFigures(NamedTuple):
    starting_equity: float | None
    return_pct: float | None
    realized_pnl: float
    unrealized_pnl: float
    closed_trades: int
    win_rate_pct: float | None
    drawdown_pct: float
    max_drawdown_pct: float


def profit_figures(ledger: Ledger, equity: float, starting_equity: float, watermark: EquityWatermark) -> ProfitFigures:
    realized, wins, losses = ledger.realized()
    closed = wins + losses
    return ProfitFigures(
        starting_equity=starting_equity,
        return_pct=(equity / starting_equity - 1.0) * 100.0 if starting_equity > 0 else None,
        realized_pnl=realized,
        unrealized_pnl=ledger.unrealized_pnl(),
        closed_trades=closed,
        win_rate_pct=wins / closed * 100.0 if closed else None,
        drawdown_pct=watermark.drawdown_pct(equity),
        max_drawdown_pct=max(watermark.max_drawdown_pct, watermark.drawdown_pct(equity)),
    )
