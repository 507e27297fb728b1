"""The strategy tests use the runtime tests' recorded candles (../conftest.py), with a shorter ETH slice."""

from __future__ import annotations

import numpy as np
import pytest

from slsbot_runtime.features.base import OHLCV


@pytest.fixture(scope="session")
def eth_2017(eth_2017: OHLCV) -> OHLCV:
    """ETH 2017-2022 with its real gaps; the first 8,000 candles keep the strategy tests fast."""
    return eth_2017.slice(0, 8_000)


def step_through(component, history: OHLCV) -> tuple[np.ndarray, np.ndarray]:
    """Directions and confidences from feeding ``history`` candle by candle to ``on_candle``."""
    directions = np.empty(len(history))
    confidences = np.empty(len(history))
    for i in range(len(history)):
        signal = component.on_candle(history.candle(i), {})
        directions[i], confidences[i] = signal.direction, signal.confidence
    return directions, confidences


@pytest.fixture(scope="session")
def run_steps():
    return step_through
