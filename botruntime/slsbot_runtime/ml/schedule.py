"""When models retrain, and what state a model is in: pure decisions over candle times, the same for the live
loop, a step backtest and fast mode.

**Retrain points** are the multiples of ``retrainEvery`` since the UTC epoch (a 24h model retrains at 00:00). The
retrain for point P happens when the first candle opening at or after P arrives, on the candles that opened
before P; the model it produces decides from that candle on. A replay (a step backtest, ``slsbot up`` on
recorded candles) waits for the training there; a live loop does not (the candle that closes at P arrives a whole
interval before the one opening at P, and the new model is used once it is ready). Points passed while fewer than
half the lookback (on average per symbol) was seen are skipped; so is the point of the very first candle (nothing
opened before it).

**States** (``/status``, metrics, the Strategy's ``ModelsDegraded`` condition):

======== ======================================================================== ========
state    when                                                                     in vote
======== ======================================================================== ========
drifted  the drift check flagged it (until it is cleared or the model retrained)  no
missing  no model yet (before the first retrain, or a pinned version not found)   no
failed   the last retrain or load failed                                          no
stale    no retrain completed for ``staleAfter`` of candle time (not when pinned)  no
training a retrain is running; the current model votes meanwhile                  yes
ready    otherwise                                                                yes
======== ======================================================================== ========
"""

from __future__ import annotations

from typing import NamedTuple

STATES = ("ready", "training", "missing", "failed", "stale", "drifted")
#: Fewest labelled sample candles (all symbols together) a retrain needs before it is attempted, whatever the lookback.
MIN_SAMPLE_CANDLES = 300


def retrain_point(ts: int, every_ms: int) -> int:
    """The newest retrain point at or before ``ts``."""
    return ts - ts % every_ms


class RetrainClock:
    """The retrain points of one schedule as candles arrive in processing order."""

    __slots__ = ("every_ms", "last_point")

    def __init__(self, every_ms: int, last_point: int | None = None) -> None:
        self.every_ms = every_ms
        self.last_point = last_point

    def due(self, ts: int) -> int | None:
        """The retrain point this candle (open time ``ts``) starts, if any; never the first candle's own."""
        point = retrain_point(ts, self.every_ms)
        if self.last_point is None:
            self.last_point = point
            return None
        if point <= self.last_point:
            return None
        self.last_point = point
        return point


def enough_candles(counts: list[int], *, warmup: int, horizon: int, lookback: int) -> bool:
    """Whether the candles per symbol (each capped at warmup + lookback) leave enough labelled samples: at least half
    the lookback on average over the symbols, and ``MIN_SAMPLE_CANDLES``. A point with fewer is skipped, not failed:
    a model already in use goes on (after a restart, until the candles it needs are seen again)."""
    samples = sum(max(0, n - warmup - horizon) for n in counts)
    return samples >= max(MIN_SAMPLE_CANDLES, lookback * len(counts) // 2)


class ModelState(NamedTuple):
    state: str
    in_vote: bool


def model_state(
    *,
    has_model: bool,
    training: bool,
    failed: bool,
    drifted: bool,
    pinned: bool,
    now_ms: int | None,
    checked_ms: int | None,
    stale_after_ms: int,
) -> ModelState:
    """The state of one model now (see the module doc)."""
    if drifted:
        return ModelState("drifted", False)
    if not has_model:
        return ModelState("failed" if failed else "missing", False)
    if failed:
        return ModelState("failed", False)
    if not pinned and now_ms is not None and checked_ms is not None and now_ms - checked_ms > stale_after_ms:
        return ModelState("stale", False)
    if training:
        return ModelState("training", True)
    return ModelState("ready", True)
