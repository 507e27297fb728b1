"""``LoopState``: where a trading loop is in its life, shared by the loop and its collaborators.

The loop's candle path moves the counters and the risk verdict; ``Restart`` sets what it loaded and whether the
books were reconciled; ``Shutdown`` and ``TradingLoop.finish`` end it; ``StatusPublisher`` only reads it. Plain
fields, no behaviour: each writer is named next to its field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slsbot_runtime.engine.exchange_wait import ExchangeWait
from slsbot_runtime.engine.profit import EquityWatermark
from slsbot_runtime.engine.status import Phase


@dataclass(slots=True)
class LoopState:
    starting_equity: float  # the account's equity when the state file began (Restart.load)
    paused: bool = False  # TradingLoop.pause / resume
    #: The phase until the books are reconciled: ``starting``, then ``reconciling`` (Restart).
    startup_phase: Phase = Phase.STARTING
    started: bool = False  # Restart.load ran
    reconciled: bool = False  # Restart.reconcile succeeded
    halt_reason: str | None = None  # trading stopped for good: the state disagrees with the exchange, or a failure
    #: The reconciliation waits for an exchange that failed temporarily (Restart); never a halt.
    exchange_wait: ExchangeWait = field(default_factory=ExchangeWait)
    finished: bool = False  # the feed ended or the loop was shut down
    finish_note: str | None = None  # what ended it, for the idle message
    ever_warm: bool = False  # every symbol has been warm at least once (readiness)
    risk_fed: bool = False  # the risk manager has taken a candle from this loop
    must_flatten: bool = False  # the risk manager's verdict after the last candle
    replayed: int = 0  # candles at or before the stored cursor, run through the deciders only
    processed: int = 0  # candles after it
    last_ts: int | None = None  # open time of the last candle, replayed or processed
    staged: int = 0  # candles staged since the last commit (Restart.commit resets it)
    last_commit: float = 0.0  # wall time of the last commit (Restart)
    cursor: dict[str, int] = field(default_factory=dict)  # the last processed candle per symbol (Restart.load)
    watermark: EquityWatermark = field(default_factory=EquityWatermark)  # equity peak, deepest drawdown
