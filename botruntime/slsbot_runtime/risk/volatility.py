"""The volatility halt: no new entries on a symbol while its realised volatility is far above its own history.

Per symbol, on every new close: the log return to the previous close joins a window of ``window`` returns;
once the window is full its sample standard deviation is the realised volatility. That value is compared with
the previous ``HISTORY_WINDOWS * window`` volatility values (at least ``window`` of them): its z-score is
``(vol - mean) / stdev``. While the z-score is above ``zscoreThreshold`` the symbol is halted, and the halt
lasts ``cooldown`` after the last candle that was above. A history with zero spread gives a z-score of 0
(flat prices, nothing to compare with), unless the volatility rose above it, which counts as infinitely far.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from slsbot.api.base import parse_duration
from slsbot.api.riskpolicy import VolatilityHalt as VolatilityHaltSpec
from slsbot_runtime.risk.snapshot import SymbolVolatilitySnapshot
from slsbot_runtime.risk.snapshot_text import JsonWindow, json_number

#: How many estimation windows of past volatility the z-score compares against.
HISTORY_WINDOWS = 10


class ExactWindow:
    """The last ``size`` values with their sum and sum of squares kept exactly, as integers (each value
    times ``2**shift``, where ``shift`` grows to the finest value seen). A new value costs O(1); the mean and
    the sample variance are the exact ones, rounded once, so they depend only on the values in the window:
    a window restored from its values answers exactly as the one that slid there, and a window of equal
    values has a variance of exactly 0. A non-finite value makes both NaN while it is in the window."""

    __slots__ = ("_nonfinite", "_s1", "_s2", "_shift", "values")

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self._s1 = 0
        self._s2 = 0
        self._shift = 0
        self._nonfinite = 0

    @property
    def full(self) -> bool:
        return len(self.values) == self.values.maxlen

    def append(self, x: float) -> None:
        values = self.values
        if len(values) == values.maxlen:
            self._take(values[0], -1)
        self._take(x, 1)
        values.append(x)

    def _take(self, x: float, sign: int) -> None:
        try:
            numerator, denominator = x.as_integer_ratio()
        except (OverflowError, ValueError):  # inf or nan
            self._nonfinite += sign
            return
        bits = denominator.bit_length() - 1
        if bits > self._shift:
            grow = bits - self._shift
            self._s1 <<= grow
            self._s2 <<= 2 * grow
            self._shift = bits
        scaled = numerator << (self._shift - bits)
        if sign > 0:
            self._s1 += scaled
            self._s2 += scaled * scaled
        else:
            self._s1 -= scaled
            self._s2 -= scaled * scaled

    def mean(self) -> float:
        if self._nonfinite:
            return math.nan
        return self._s1 / (len(self.values) << self._shift)

    def variance(self) -> float:
        """Sample variance (``n - 1`` in the denominator); needs two values or more."""
        if self._nonfinite:
            return math.nan
        n = len(self.values)
        return (n * self._s2 - self._s1 * self._s1) / ((n * (n - 1)) << (2 * self._shift))


def _zscore(value: float, history: ExactWindow) -> float:
    mean, stdev = history.mean(), math.sqrt(history.variance())
    if stdev > 0:
        return (value - mean) / stdev
    return math.inf if value > mean else 0.0


class SymbolVolatility:
    """The rolling volatility estimate and halt of one symbol."""

    __slots__ = (
        "_history_text",
        "_returns_text",
        "halted_until",
        "history",
        "last_close",
        "last_ts",
        "returns",
        "zscore",
    )

    def __init__(self, window: int, ts: int, close: float) -> None:
        self.last_ts = ts
        self.last_close = close
        self.returns = ExactWindow(window)
        self.history = ExactWindow(HISTORY_WINDOWS * window)
        self._returns_text = JsonWindow(window)  # the same values as JSON text, for the state file
        self._history_text = JsonWindow(HISTORY_WINDOWS * window)
        self.zscore: float | None = None
        self.halted_until: int | None = None

    def _add_return(self, value: float) -> None:
        self.returns.append(value)
        self._returns_text.append(value)

    def _add_history(self, value: float) -> None:
        self.history.append(value)
        self._history_text.append(value)

    def observe(self, ts: int, close: float, threshold: float, cooldown_ms: int) -> None:
        if ts <= self.last_ts:
            return  # the same candle again: already counted
        returns = self.returns
        self._add_return(math.log(close / self.last_close))
        self.last_ts, self.last_close = ts, close
        if not returns.full:
            return
        volatility = math.sqrt(returns.variance())
        if len(self.history.values) >= len(returns.values):
            self.zscore = _zscore(volatility, self.history)
            if self.zscore > threshold:
                self.halted_until = max(self.halted_until or ts, ts + cooldown_ms)
        self._add_history(volatility)

    def snapshot(self) -> dict[str, Any]:
        """This symbol's state as ``SymbolVolatilitySnapshot`` dumps it to JSON."""
        return {
            "last_ts": self.last_ts,
            "last_close": float(self.last_close),
            "returns": list(self.returns.values),
            "history": list(self.history.values),
            "zscore": self.zscore,
            "halted_until": self.halted_until,
        }

    def snapshot_text(self) -> str:
        """``json.dumps(self.snapshot(), sort_keys=True)``, the windows' text kept from when values came in."""
        return (
            f'{{"halted_until": {json_number(self.halted_until)}, "history": {self._history_text.text()}, '
            f'"last_close": {json_number(float(self.last_close))}, "last_ts": {json_number(self.last_ts)}, '
            f'"returns": {self._returns_text.text()}, "zscore": {json_number(self.zscore)}}}'
        )

    @classmethod
    def restored(cls, window: int, snapshot: SymbolVolatilitySnapshot) -> SymbolVolatility:
        state = cls(window, snapshot.last_ts, snapshot.last_close)
        for value in snapshot.returns:
            state._add_return(value)
        for value in snapshot.history:
            state._add_history(value)
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
        # the latest end of any symbol's halt: from then on no symbol is halted (halts only ever extend)
        self._halts_end: int | None = max(
            (state.halted_until for state in self.symbols.values() if state.halted_until is not None), default=None
        )

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
                until = state.halted_until
                if until is not None and (self._halts_end is None or until > self._halts_end):
                    self._halts_end = until

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
        if self._halts_end is None or ts >= self._halts_end:
            return ()
        return tuple(sorted(symbol for symbol in self.symbols if self.halted_until(symbol, ts) is not None))

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {symbol: state.snapshot() for symbol, state in sorted(self.symbols.items())}

    def snapshot_text(self) -> str:
        """``json.dumps(self.snapshot(), sort_keys=True)``."""
        items = sorted(self.symbols.items())
        return "{" + ", ".join(f"{json.dumps(symbol)}: {state.snapshot_text()}" for symbol, state in items) + "}"

    def restored(self, snapshot: Mapping[str, SymbolVolatilitySnapshot]) -> VolatilityHalt:
        """A new halt with this policy and the snapshot's windows (trimmed to this policy's window)."""
        return VolatilityHalt(
            enabled=self.enabled,
            window=self.window,
            threshold=self.threshold,
            cooldown_ms=self.cooldown_ms,
            symbols={symbol: SymbolVolatility.restored(self.window, item) for symbol, item in snapshot.items()},
        )
