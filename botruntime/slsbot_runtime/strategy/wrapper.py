"""``SafeComponent``: how the runtime calls strategy code, library or user, without trusting it.

Inputs are copies (a component cannot change the engine's features), and whatever goes wrong — an
exception, a return that is not a ``Signal``, a direction outside [-1, 1], a confidence outside [0, 1],
NaN — becomes a ``StrategyError`` that is counted, handed to ``on_error`` (metrics, logs) and answered
with a flat signal for that candle. The loop always goes on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

import numpy as np

from slsbot_runtime.domain.errors import StrategyError
from slsbot_runtime.domain.types import FLAT, Candle, Signal
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.strategy.base import StrategyComponent

#: How much of a failing component's own error message is kept.
MESSAGE_LIMIT = 200

ErrorHook = Callable[[str, StrategyError], None]


class SafeComponent:
    """One ensemble member: a component, its name and weight, and its error count."""

    __slots__ = ("component", "errors", "last_error", "name", "on_error", "warmup", "weight")

    def __init__(
        self, name: str, component: StrategyComponent, weight: float = 1.0, *, on_error: ErrorHook | None = None
    ) -> None:
        self.name = name
        self.component = component
        self.weight = float(weight)
        self.on_error = on_error
        self.errors = 0
        self.last_error: StrategyError | None = None
        try:
            self.warmup = max(int(component.warmup), 0)
        except Exception as error:
            self.warmup = 0
            self._fail(f"warmup raised {_describe(error)}")

    @property
    def strategy(self) -> str:
        return getattr(self.component, "id", type(self.component).__name__)

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        """The component's signal after ``candle``, or FLAT when it failed."""
        try:
            signal = self.component.on_candle(candle, dict(features) if features else {})
        except Exception as error:
            return self._fail(f"raised {_describe(error)}")
        if signal is FLAT:  # no opinion, the most common answer: valid as it is
            return signal
        if not isinstance(signal, Signal):
            return self._fail(f"returned {type(signal).__name__}, not a Signal")
        direction, confidence = signal.direction, signal.confidence
        if (  # the common case, checked cheaply
            type(direction) is float
            and type(confidence) is float
            and -1.0 <= direction <= 1.0
            and 0.0 <= confidence <= 1.0
        ):
            return signal
        try:
            valid = -1.0 <= direction <= 1.0 and 0.0 <= confidence <= 1.0
        except TypeError:
            valid = False
        if not valid or isinstance(direction, bool) or isinstance(confidence, bool):
            return self._fail(
                f"returned direction {direction!r:.40} and confidence {confidence!r:.40}; "
                "a direction must be a number in [-1, 1] and a confidence one in [0, 1]"
            )
        return signal

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """Vectorized directions and confidences; None if the component has no vectorized form.

        An exception makes the whole history flat (one error); invalid values make their candles flat
        (one error per candle)."""
        n = len(history)
        try:
            result = self.component.signal_arrays(history, _read_only(features))
        except Exception as error:
            self._fail(f"signal_arrays raised {_describe(error)}")
            return np.zeros(n), np.zeros(n)
        if result is None:
            return None
        try:
            directions, confidences = (np.asarray(part, dtype=np.float64) for part in result)
        except (TypeError, ValueError) as error:
            self._fail(f"signal_arrays returned something that is not two float arrays: {_describe(error)}")
            return np.zeros(n), np.zeros(n)
        if directions.shape != (n,) or confidences.shape != (n,):
            self._fail(f"signal_arrays returned shapes {directions.shape} and {confidences.shape}, expected ({n},)")
            return np.zeros(n), np.zeros(n)
        with np.errstate(invalid="ignore"):
            valid = (np.abs(directions) <= 1.0) & (confidences >= 0.0) & (confidences <= 1.0)
        bad = int(n - np.count_nonzero(valid))
        if bad:
            first = int(np.flatnonzero(~valid)[0])
            self._fail(f"signal_arrays returned {bad} invalid value(s), the first at candle {first}", count=bad)
            directions = np.where(valid, directions, 0.0)
            confidences = np.where(valid, confidences, 0.0)
        return directions, confidences

    def in_vote(self) -> bool:
        """Whether the component votes now; False (and one error) when asking it fails."""
        try:
            return bool(self.component.in_vote())
        except Exception as error:
            self._fail(f"in_vote raised {_describe(error)}")
            return False

    def vote_mask(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """``in_vote`` per candle in fast mode, None for always; all False (one error) when asking it fails."""
        n = len(history)
        try:
            ask = getattr(self.component, "vote_mask", None)
            mask = None if ask is None else ask(history, _read_only(features))
            if mask is None:
                return None
            mask = np.asarray(mask, dtype=bool)
        except Exception as error:
            self._fail(f"vote_mask raised {_describe(error)}")
            return np.zeros(n, dtype=bool)
        if mask.shape != (n,):
            self._fail(f"vote_mask returned shape {mask.shape}, expected ({n},)")
            return np.zeros(n, dtype=bool)
        return mask

    def _fail(self, what: str, count: int = 1) -> Signal:
        error = StrategyError(f"ensemble member {self.name} ({self.strategy}) {what}")
        self.errors += count
        self.last_error = error
        if self.on_error is not None:
            with contextlib.suppress(Exception):  # a broken hook must not stop the loop either
                self.on_error(self.name, error)
        return FLAT


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def _read_only(features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    views = {}
    for name, values in features.items():
        view = np.asarray(values).view()
        view.flags.writeable = False
        views[name] = view
    return views
