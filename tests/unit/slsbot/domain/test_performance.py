"""The money maths of an A/B rollout, against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slsbot.domain.performance import annualised_sharpe, compounded_return_percent, paired_returns
from slsbot.domain.runtime_performance import PerformancePeriod as Period


def _periods(returns, start=1000, step=10):
    return [Period(start + i * step, 1.0, 1.0, r) for i, r in enumerate(returns)]


def test_pairs_are_by_candle_time_within_the_window_and_skip_candles_without_capital():
    baseline = _periods([0.1, 0.2, None, 0.4, 0.5])  # ts 1000..1040
    candidate = [p for p in _periods([1.1, 1.2, 1.3, 1.4, 1.5]) if p.ts != 1030]
    assert paired_returns(baseline, candidate, after=1000, until=1040) == [(1010, 0.2, 1.2), (1040, 0.5, 1.5)]
    assert paired_returns(baseline, candidate, after=1010, until=1030) == []


def test_compounded_return_and_sharpe_match_numpy():
    rng = np.random.default_rng(3)
    returns = rng.normal(0.001, 0.01, 500)
    periods = _periods([*returns[:250], None, *returns[250:]])
    assert compounded_return_percent(periods) == pytest.approx((np.prod(1 + returns) - 1) * 100)
    expected = returns.mean() / returns.std(ddof=1) * math.sqrt(365 * 24)
    assert annualised_sharpe(periods, timeframe="1h") == pytest.approx(expected)
    assert annualised_sharpe(periods, timeframe="1d") == pytest.approx(expected / math.sqrt(24))


def test_no_figure_without_returns_that_vary():
    assert compounded_return_percent(_periods([None])) is None
    assert annualised_sharpe(_periods([0.01]), timeframe="1h") is None
    assert annualised_sharpe(_periods([0.01, 0.01]), timeframe="1h") is None
