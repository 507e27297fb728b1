"""Walk-forward folds: the held-out period cut into consecutive out-of-sample windows, each with a warm-up before it.

Each fold is backtested on its own: the run starts ``warmup`` candles before the fold, and those candles are
only read (the strategies warm up, models train on them), never traded on; the fold's out-of-sample window is
what is measured. The folds cover the held-out period end to end and do not overlap.

The held-out period is ``[start, end)`` (open times), clipped to the data. It cannot begin before ``warmup``
candles of data exist for the first fold's warm-up, so its start moves forward to the first open time that
has them (the evaluation reports where it really starts). It is cut into ``count`` folds of whole candles,
as equal as they can be (the first ones one candle shorter when it does not divide).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.domain.timeframes import utc_iso

#: A fold shorter than this has too few returns for a Sharpe ratio to mean anything.
MIN_FOLD_CANDLES = 24


@dataclass(frozen=True, slots=True)
class Fold:
    index: int
    start_ms: int  # open time of the first out-of-sample candle
    end_ms: int  # out-of-sample candles open before this
    warmup_start_ms: int  # the run reads candles from here; trading waits until start_ms
    candles: int  # out-of-sample candle times in the fold

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "from": utc_iso(self.start_ms),
            "to": utc_iso(self.end_ms),
            "warmup_from": utc_iso(self.warmup_start_ms),
            "candles": self.candles,
        }


def walk_forward_folds(
    *,
    data_start_ms: int,
    data_end_ms: int,
    interval_ms: int,
    warmup: int,
    count: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> list[Fold]:
    """The folds over ``[start_ms, end_ms)`` within the data ``[data_start_ms, data_end_ms)`` (see the module doc).

    ``data_start_ms`` is the first open time every symbol has; ``data_end_ms`` the end of the last candle every
    symbol has. ConfigError naming the option when the period cannot hold ``count`` folds.
    """
    if count < 1:
        raise ConfigError(f"--folds: at least one fold is needed, got {count}")
    earliest = data_start_ms + warmup * interval_ms
    first = earliest if start_ms is None else max(_on_grid(start_ms, data_start_ms, interval_ms), earliest)
    last = data_end_ms if end_ms is None else min(end_ms, data_end_ms)
    candles = -(-(last - first) // interval_ms) if last > first else 0
    if candles < count * MIN_FOLD_CANDLES:
        raise ConfigError(
            f"--folds: the held-out period from {utc_iso(first)} to {utc_iso(max(last, first))} holds {candles} "
            f"candles after a warm-up of {warmup}; {count} folds need at least {count * MIN_FOLD_CANDLES} "
            f"({MIN_FOLD_CANDLES} each): widen --from/--to or ask for fewer folds"
        )
    bounds = [first + (candles * k // count) * interval_ms for k in range(count)] + [last]
    return [
        Fold(
            index=k,
            start_ms=bounds[k],
            end_ms=bounds[k + 1],
            warmup_start_ms=bounds[k] - warmup * interval_ms,
            candles=-(-(bounds[k + 1] - bounds[k]) // interval_ms),
        )
        for k in range(count)
    ]


def _on_grid(moment_ms: int, origin_ms: int, interval_ms: int) -> int:
    """The first open time on the candle grid at or after ``moment_ms``."""
    return origin_ms + -(-(moment_ms - origin_ms) // interval_ms) * interval_ms
