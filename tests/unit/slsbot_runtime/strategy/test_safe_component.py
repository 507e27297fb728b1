from __future__ import annotations

import math

import numpy as np
import pytest

from slsbot_runtime.domain.errors import StrategyError
from slsbot_runtime.domain.types import FLAT, Candle, Signal
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams
from slsbot_runtime.strategy.registry import build_component
from slsbot_runtime.strategy.wrapper import MESSAGE_LIMIT, SafeComponent

CANDLE = Candle("T/USDT", 0, 1.0, 1.0, 1.0, 1.0, 1.0)


class _Returns(StrategyComponent):
    """Returns whatever it was given (or raises it), to play a broken user strategy."""

    id = "returns"

    class Params(StrategyParams):
        pass

    warmup = 3

    def __init__(self, answer) -> None:
        super().__init__()
        self.answer = answer

    def on_candle(self, candle, features):
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (ZeroDivisionError("division by zero"), "raised ZeroDivisionError: division by zero"),
        (None, "returned NoneType, not a Signal"),
        ((1.0, 0.5), "returned tuple, not a Signal"),
        (Signal(math.nan, 0.5), "direction nan"),
        (Signal(2.0, 0.5), "direction 2.0"),
        (Signal(-1.0001, 0.5), "direction -1.0001"),
        (Signal(1.0, -0.1), "confidence -0.1"),
        (Signal(1.0, math.inf), "confidence inf"),
        (Signal("up", 1.0), "direction 'up'"),  # type: ignore[arg-type]
        (Signal(True, 1.0), "direction True"),
    ],
)
def test_a_failure_becomes_a_flat_signal_and_a_counted_strategy_error(answer, fragment: str) -> None:
    seen: list[tuple[str, StrategyError]] = []
    member = SafeComponent("broken", _Returns(answer), on_error=lambda name, error: seen.append((name, error)))
    assert member.on_candle(CANDLE, {}) is FLAT
    assert member.on_candle(CANDLE, {}) is FLAT
    assert member.errors == 2
    assert isinstance(member.last_error, StrategyError)
    assert str(member.last_error).startswith("ensemble member broken (returns) ")
    assert fragment in str(member.last_error)
    assert [name for name, _ in seen] == ["broken", "broken"]


def test_a_valid_signal_passes_through_untouched() -> None:
    signal = Signal(-0.25, 0.8, "ok")
    member = SafeComponent("fine", _Returns(signal))
    assert member.on_candle(CANDLE, {}) is signal
    assert member.errors == 0 and member.last_error is None


def test_keyboard_interrupt_is_not_swallowed() -> None:
    member = SafeComponent("stop", _Returns(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        member.on_candle(CANDLE, {})


def test_a_long_error_message_is_cut() -> None:
    member = SafeComponent("chatty", _Returns(RuntimeError("x" * 5_000)))
    member.on_candle(CANDLE, {})
    assert len(str(member.last_error)) < MESSAGE_LIMIT + 100


class _Vandal(StrategyComponent):
    id = "vandal"

    class Params(StrategyParams):
        pass

    warmup = 1

    def on_candle(self, candle, features):
        features["rsi_14"] = -1.0
        features.clear()
        return Signal(1.0, 1.0)

    def signal_arrays(self, history, features):
        features["rsi_14"][:] = 0.0
        return np.ones(len(history)), np.ones(len(history))


def test_a_component_cannot_change_the_engines_features() -> None:
    features = {"rsi_14": 55.0}
    member = SafeComponent("vandal", _Vandal())
    assert member.on_candle(CANDLE, features).direction == 1.0
    assert features == {"rsi_14": 55.0}

    history = OHLCV("T/USDT", np.arange(4, dtype=np.int64), *(np.ones(4) for _ in range(5)))
    arrays = {"rsi_14": np.full(4, 55.0)}
    directions, _ = member.signal_arrays(history, arrays)
    assert (arrays["rsi_14"] == 55.0).all()
    assert not directions.any() and member.errors == 1
    assert "signal_arrays raised ValueError" in str(member.last_error)


class _HalfBroken(StrategyComponent):
    id = "half_broken"

    class Params(StrategyParams):
        pass

    warmup = 1

    def on_candle(self, candle, features):
        return FLAT

    def signal_arrays(self, history, features):
        directions = np.array([1.0, np.nan, 3.0, -1.0])
        return directions, np.array([0.5, 0.5, 0.5, 2.0])


def test_invalid_vectorized_values_make_their_candles_flat_and_count_each() -> None:
    history = OHLCV("T/USDT", np.arange(4, dtype=np.int64), *(np.ones(4) for _ in range(5)))
    member = SafeComponent("half", _HalfBroken())
    directions, confidences = member.signal_arrays(history, {})
    assert directions.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert confidences.tolist() == [0.5, 0.0, 0.0, 0.0]
    assert member.errors == 3
    assert "3 invalid value(s), the first at candle 1" in str(member.last_error)


def test_a_broken_error_hook_does_not_stop_the_loop() -> None:
    def hook(name, error):
        raise RuntimeError("metrics are down")

    member = SafeComponent("broken", _Returns(ValueError("bad")), on_error=hook)
    assert member.on_candle(CANDLE, {}) is FLAT
    assert member.errors == 1


def test_a_library_component_without_errors_is_passed_through() -> None:
    member = SafeComponent("trend", build_component("sma_cross", 1, {"fast": 1, "slow": 2, "mode": "level"}))
    member.on_candle(Candle("T/USDT", 0, 1, 1, 1, 100.0, 1), {})
    assert member.on_candle(Candle("T/USDT", 1, 1, 1, 1, 101.0, 1), {}).direction == 1.0
    assert member.warmup == 2 and member.errors == 0
