"""A model's live accuracy: each prediction scored by the close ``horizon`` candles of its symbol later, as the
training labels are; the share of the last ``window`` that came true, reported from ``min_scored`` on; a new
version starts from nothing."""

from __future__ import annotations

import numpy as np
import pytest

from slsbot_runtime.ml.accuracy import LiveAccuracy
from slsbot_runtime.ml.labels import forward_labels


def _run(accuracy: LiveAccuracy, symbol: str, closes: list[float], ps: list[float | None], start: int = 1) -> None:
    """Candles ``start``, ``start + 1``... of ``symbol``; a prediction ``p`` on each (None: none on that candle)."""
    for number, (close, p) in enumerate(zip(closes, ps, strict=True), start=start):
        accuracy.candle(symbol, number, close)
        if p is not None:
            accuracy.predicted(symbol, number, close, p)


def test_the_accuracy_of_a_known_series() -> None:
    closes = [10.0, 11.0, 9.0, 12.0, 12.0, 8.0, 13.0]
    accuracy = LiveAccuracy(["BTC/USDT"], horizon=1, window=10, min_scored=6)
    _run(accuracy, "BTC/USDT", closes, [0.7] * 7)  # "up" every time
    # up, down, up, flat (not up), down, up: three of the six came true; the last waits for the next candle
    assert accuracy.scored == 6 and accuracy.value == 0.5
    inverse = LiveAccuracy(["BTC/USDT"], horizon=1, window=10, min_scored=6)
    _run(inverse, "BTC/USDT", closes, [0.3] * 6 + [0.5])  # "not up" (p = 0.5 counts as not up, as at training)
    assert inverse.value == 0.5


def test_it_scores_what_the_training_labels_say(rng_closes: np.ndarray) -> None:
    horizon, window = 4, 300
    ps = np.random.default_rng(7).uniform(0.0, 1.0, len(rng_closes))
    accuracy = LiveAccuracy(["ETH/USDT"], horizon=horizon, window=window, min_scored=window)
    _run(accuracy, "ETH/USDT", rng_closes.tolist(), ps.tolist())
    labels = forward_labels(np.arange(len(rng_closes)), rng_closes, horizon).y
    hits = (ps[: len(labels)] > 0.5) == (labels == 1)
    assert accuracy.scored == window
    assert accuracy.value == pytest.approx(hits[-window:].mean(), abs=1e-15)  # the last 300 scored


def test_the_window_rolls_and_the_symbols_are_pooled() -> None:
    accuracy = LiveAccuracy(["BTC/USDT", "ETH/USDT"], horizon=2, window=4, min_scored=1)
    # interleaved as the loop gives them; each symbol counts its own candles
    btc = [100.0, 101.0, 102.0, 103.0, 104.0]  # rising: "up" is right
    eth = [50.0, 49.0, 48.0, 47.0, 46.0]  # falling: "up" is wrong
    for number in range(1, 6):
        accuracy.candle("BTC/USDT", number, btc[number - 1])
        accuracy.predicted("BTC/USDT", number, btc[number - 1], 0.9)
        accuracy.candle("ETH/USDT", number, eth[number - 1])
        accuracy.predicted("ETH/USDT", number, eth[number - 1], 0.9)
    # three of each scored (candles 1-3 by candles 3-5), six in all; the window holds the last four: BTC 2, ETH 2,
    # BTC 3, ETH 3
    assert accuracy.scored == 4 and accuracy.value == 0.5
    for number in (6, 7):  # BTC alone goes on, rising
        accuracy.candle("BTC/USDT", number, 100.0 + number)
        accuracy.predicted("BTC/USDT", number, 100.0 + number, 0.9)
    assert accuracy.value == 0.75  # BTC 2 and ETH 2 left the window, BTC 4 and 5 came in


def test_nothing_is_reported_below_the_minimum() -> None:
    accuracy = LiveAccuracy(["BTC/USDT"], horizon=1, window=10, min_scored=3)
    _run(accuracy, "BTC/USDT", [1.0, 2.0, 3.0], [0.9, 0.9, 0.9])
    assert accuracy.scored == 2 and accuracy.value is None
    _run(accuracy, "BTC/USDT", [4.0], [0.9], start=4)
    assert accuracy.scored == 3 and accuracy.value == 1.0


def test_a_candle_without_a_prediction_scores_nothing_later() -> None:
    accuracy = LiveAccuracy(["BTC/USDT"], horizon=2, window=10, min_scored=1)
    # a prediction on candles 1 and 3 only (features not defined, or out of the vote, on the others)
    _run(accuracy, "BTC/USDT", [10.0, 9.0, 11.0, 12.0, 10.0, 13.0], [0.9, None, 0.9, None, None, None])
    # candle 1 (10 -> 11 at candle 3): right; candle 3 (11 -> 10 at candle 5): wrong; candles 4 and 6 score nothing
    assert accuracy.scored == 2 and accuracy.value == 0.5


def test_a_new_version_starts_from_nothing() -> None:
    accuracy = LiveAccuracy(["BTC/USDT"], horizon=2, window=10, min_scored=1)
    _run(accuracy, "BTC/USDT", [1.0, 2.0, 3.0, 4.0], [0.1] * 4)  # two wrong, two waiting
    assert accuracy.value == 0.0
    accuracy.reset()
    assert accuracy.scored == 0 and accuracy.value is None
    # the old version's waiting predictions are never scored: candles 5 and 6 find nothing of it
    _run(accuracy, "BTC/USDT", [5.0, 6.0], [0.9, 0.9], start=5)
    assert accuracy.scored == 0
    _run(accuracy, "BTC/USDT", [7.0], [None], start=7)
    assert accuracy.scored == 1 and accuracy.value == 1.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="min_scored"):
        LiveAccuracy(["BTC/USDT"], horizon=1, window=10, min_scored=11)
    with pytest.raises(ValueError, match="horizon"):
        LiveAccuracy(["BTC/USDT"], horizon=0)


@pytest.fixture
def rng_closes() -> np.ndarray:
    steps = np.random.default_rng(3).normal(0.0, 0.01, 2000)
    closes = 100.0 * np.exp(np.cumsum(steps))
    closes[500:510] = closes[500]  # flat closes count as "not up"
    return closes
