"""Why the runtime takes no new trades right now: the ``idle_reason`` and ``idle_message`` of ``/status``. Pure.

The control plane copies both into the Strategy's status and its ``Trading`` condition, so the reason is a
CamelCase word (``[A-Z][A-Za-z0-9]{0,63}``) and the message one line that says what and why. ``None`` while the
runtime trades normally: it takes whatever its signals ask and the risk policy allows (a flat signal is normal).
The first that applies wins:

========================  =====================================================================================
``Halted``                the state could not be reconciled, or the risk policy flattens and halts (kill switch,
                          a ``flattenAndHalt`` breaker level)
``Finished``              the feed ended, or the runtime was shut down
``WaitingForExchange``    the reconciliation after a restart met an exchange that fails temporarily (an outage, a
                          rate limit): tried again after a backoff, nothing is sent meanwhile (``exchange_wait``)
``Starting``              replaying the stored candles, reconciling with the exchange
``Halted``                the trading mode is ``halted`` (``POST /trading-mode``): orders cancelled, no orders
``SafeMode``              the trading mode is ``safe``: no new entries, orders reduce-only (set by the control
                          plane, or by the runtime itself after rejected orders or a disagreement with the exchange)
``WarmingUp``             a symbol has not seen ``warmupCandles`` candles since the start or a gap
``NoAllocation``          allocated 0 % of the account's capital (``allocationPercent`` or a controller's
                          override): open positions are closed, no entry is opened
``Paused``                paused: exits, cancels and fills go on, no entry is opened
``EntriesRefused``        the risk manager refused the last entries of a symbol (``refusals.EntryRefusals``)
========================  =====================================================================================

The runtime process adds ``DataStale`` (a live feed failing) on top of the loop's answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from slsbot_runtime.engine.status import Phase


class Idle(NamedTuple):
    reason: str
    message: str


def describe_idle(
    phase: Phase,
    *,
    halt_reason: str | None,
    flatten_message: str | None,
    finish_note: str | None,
    replayed: int,
    warming: Sequence[tuple[str, int]],
    warmup_candles: int,
    refusals: str | None,
    allocation_percent: float = 100.0,
    trading_mode: str = "normal",
    trading_mode_reason: str | None = None,
    exchange_wait: str | None = None,
) -> Idle | None:
    """``warming``: (symbol, candles seen since the start or its last gap) of each symbol still warming up;
    ``refusals``: ``EntryRefusals.idle_message()``; ``flatten_message``: why the risk policy flattens, if it does;
    ``allocation_percent``: the share of the account's capital the runtime trades with; ``trading_mode`` and
    ``trading_mode_reason``: the mode in force (``domain.trading_mode``); ``exchange_wait``: the temporary exchange
    error the reconciliation waits out, and when it is tried again, if it does."""
    if phase is Phase.HALTED:
        if halt_reason is not None:
            return Idle("Halted", f"trading halted: {halt_reason}")
        return Idle("Halted", flatten_message or "the risk policy flattens every position and opens none")
    if phase is Phase.FINISHED:
        return Idle("Finished", finish_note or "the feed ended: nothing more to trade")
    if phase in (Phase.STARTING, Phase.RECONCILING):
        if exchange_wait is not None:
            return Idle("WaitingForExchange", f"waiting for the exchange to reconcile with it: {exchange_wait}")
        return Idle("Starting", f"replaying the stored candles ({replayed} so far), then reconciling with the exchange")
    why = f": {trading_mode_reason}" if trading_mode_reason else ""
    if trading_mode == "halted":
        return Idle("Halted", f"trading mode halted{why}: orders cancelled, no order is sent")
    if trading_mode == "safe":
        return Idle("SafeMode", f"safe mode{why}: no new entries, orders reduce-only")
    if phase is Phase.WARMING_UP:
        shown = ", ".join(f"{symbol} {seen} of {warmup_candles}" for symbol, seen in warming[:3])
        more = f" and {len(warming) - 3} more" if len(warming) > 3 else ""
        return Idle(
            "WarmingUp", f"warming up after the start or a gap in the candles ({shown}{more}): no entry until then"
        )
    if allocation_percent <= 0.0:
        return Idle(
            "NoAllocation",
            "allocated 0% of the account's capital: open positions are closed, no entry is opened",
        )
    if phase is Phase.PAUSED:
        return Idle("Paused", "paused: no new position is opened; exits, cancels and fills go on")
    if refusals is not None:
        return Idle("EntriesRefused", refusals)
    return None
