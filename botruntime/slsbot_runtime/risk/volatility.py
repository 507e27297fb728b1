"""The volatility halt: no new entries on a symbol while its realised volatility is far above its own history.

Per symbol, on every new close: the log return to the previous close joins a window of ``window`` returns;
once the window is full its sample standard deviation is the realised volatility. That value is compared with
the previous ``HISTORY_WINDOWS * window`` volatility values (at least ``window`` of them): its z-score is
``(vol - mean) / stdev``. While the z-score is above ``zscoreThreshold`` the symbol is halted, and the halt
lasts ``cooldown`` after the last candle that was above. A history with zero spread gives a z-score of 0
(flat prices, nothing to compare with), unless the volatility rose above it, which counts as infinitely far.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

from slsbot.api.base import parse_duration
from slsbot.api.riskpolicy import VolatilityHalt as VolatilityHaltSpec
from slsbot_runtime.risk.snapshot import SymbolVolatilitySnapshot

#: How many estimation windows of past volatility the z-score compares against.
HISTORY_WINDOWS = 10


def _mean_and_stdev(values: deque[float]) -> tuple[float, float]:
    count = len(values)
    mean = sum(values) / count
    variance = sum((value - mean) * (value - mean) for value in values) / (count - 1)
    return mean, math.sqrt(variance)


def _zscore(value: float, history: deque[float]) -> float:
    mean, stdev = _mean_and_stdev(history)
    if stdev > 0:
        return (value - mean) / stdev
    return math.inf if value > mean else 0.0


class SymbolVolatility:
    """The rolling volatility estimate and halt of one symbol."""

    __slots__ = ("halted_until", "history", "last_close", "last_ts", "returns", "zscore")

    def __init__(self, window: int, ts: int, close: float) -> None:
        self.last_ts = ts
        self.last_close = close
        self.returns: deque[float] = deque(maxlen=window)
        self.history: deque[float] = deque(maxlen=HISTORY_WINDOWS * window)
        self.zscore: float | None = None
        self.halted_until: int | None = None

    def observe(self, ts: int, close: float, threshold: float, cooldown_ms: int) -> None:
        if ts <= self.last_ts:
            return  # the same candle again: already counted
        self.returns.append(math.log(close / self.last_close))
        self.last_ts, self.last_close = ts, close
        if len(self.returns) < (self.returns.maxlen or 0):
            return
        volatility = _mean_and_stdev(self.returns)[1]
        if len(self.history) >= (self.returns.maxlen or 0):
            self.zscore = _zscore(volatility, self.history)
            if self.zscore > threshold:
                self.halted_until = max(self.halted_until or ts, ts + cooldown_ms)
        self.history.append(volatility)

    def snapshot(self) -> SymbolVolatilitySnapshot:
        return SymbolVolatilitySnapshot(
            last_ts=self.last_ts,
            last_close=self.last_close,
            returns=list(self.returns),
            history=list(self.history),
            zscore=self.zscore,
            halted_until=self.halted_until,
        )

    @classmethod
    def restored(cls, window: int, snapshot: SymbolVolatilitySnapshot) -> SymbolVolatility:
        state = cls(window, snapshot.last_ts, snapshot.last_close)
        state.returns.extend(snapshot.returns)
        state.history.extend(snapshot.history)
        state.zscore = snapshot.zscore
        state.halted_until = snapshot.halted_until
        return state


class VolatilityHalt:
    """Volatility state of every symbol seen; does nothing when the policy disables the halt."""

    def __init__(
        self,
        *,
        enabled: bool,
        window: int,
        threshold: float,
        cooldown_ms: int,
        symbols: dict[str, SymbolVolatility] | None = None,
    ) -> None:
        self.enabled = enabled
        self.window = window
        self.threshold = threshold
        self.cooldown_ms = cooldown_ms
        self.symbols: dict[str, SymbolVolatility] = symbols or {}

    @classmethod
    def from_spec(cls, spec: VolatilityHaltSpec) -> VolatilityHalt:
        return cls(
            enabled=spec.enabled,
            window=spec.window,
            threshold=spec.zscore_threshold,
            cooldown_ms=int(parse_duration(spec.cooldown).total_seconds() * 1000),
        )

    def observe(self, ts: int, closes: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        for symbol, close in closes.items():
            state = self.symbols.get(symbol)
            if state is None:
                self.symbols[symbol] = SymbolVolatility(self.window, ts, close)
            else:
                state.observe(ts, close, self.threshold, self.cooldown_ms)

    def halted_until(self, symbol: str, ts: int) -> int | None:
        """When the halt of ``symbol`` ends, if it is halted at ``ts``; else None."""
        state = self.symbols.get(symbol)
        if not self.enabled or state is None or state.halted_until is None or ts >= state.halted_until:
            return None
        return state.halted_until

    def zscore(self, symbol: str) -> float | None:
        state = self.symbols.get(symbol)
        return None if state is None else state.zscore

    def halted_symbols(self, ts: int) -> tuple[str, ...]:
        return tuple(sorted(symbol for symbol in self.symbols if self.halted_until(symbol, ts) is not None))

    def snapshot(self) -> dict[str, SymbolVolatilitySnapshot]:
        return {symbol: state.snapshot() for symbol, state in sorted(self.symbols.items())}

    def restored(self, snapshot: Mapping[str, SymbolVolatilitySnapshot]) -> VolatilityHalt:
        """A new halt with this policy and the snapshot's windows (trimmed to this policy's window)."""
        return VolatilityHalt(
            enabled=self.enabled,
            window=self.window,
            threshold=self.threshold,
            cooldown_ms=self.cooldown_ms,
            symbols={symbol: SymbolVolatility.restored(self.window, item) for symbol, item in snapshot.items()},
        )
