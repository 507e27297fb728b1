"""The simulation behind the sequential test's figures: the block bootstrap, the variants, the naive t-test and the
binomial interval, each against what it must be by construction or by the textbook."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from slsbot.domain.sequential_simulation import (
    Scenario,
    clopper_pearson,
    naive_promotions,
    simulate_returns,
    stationary_bootstrap,
)
from slsbot.domain.sequential_test import SequentialDesign


def test_the_stationary_bootstrap_joins_runs_of_consecutive_hours_of_the_mean_length() -> None:
    series = np.arange(1000, dtype=float)
    paths = stationary_bootstrap(series, 200, 2000, 50.0, np.random.default_rng(1))
    steps = np.diff(paths, axis=1)
    # inside a run the next hour follows (wrapping from the last hour to the first); a new run starts anywhere
    continues = (steps == 1) | (steps == -999)
    runs = paths.shape[0] * paths.shape[1] / (paths.shape[0] + (~continues).sum())
    assert runs == pytest.approx(50.0, rel=0.05)
    assert set(np.unique(paths)) <= set(series)


def test_variants_are_correlated_as_the_overlay_says_and_the_better_one_earns_its_edge() -> None:
    rng = np.random.default_rng(2)
    market = rng.standard_t(3, 50_000) * 0.008  # fat tails, as crypto hours have
    for overlay in (0.1, 0.4):
        baseline, candidate = simulate_returns(
            [market], experiments=50, hours=24 * 60, scenario=Scenario(overlay=overlay, fee=0.0), rng=rng
        )
        correlation = np.corrcoef(baseline.ravel(), candidate.ravel())[0, 1]
        assert correlation == pytest.approx(1 / (1 + overlay**2), abs=0.005)
    scenario = Scenario(sharpe_gap=1.0, fee=0.0)
    baseline, candidate = simulate_returns([market], experiments=50, hours=24 * 60, scenario=scenario, rng=rng)
    sd = np.sqrt((1 + 0.1**2) * np.mean(market**2) - np.mean(market) ** 2)
    assert (candidate - baseline).mean() == pytest.approx(sd / np.sqrt(24 * 365), rel=0.2)


def test_the_naive_test_promotes_at_the_first_look_with_p_under_alpha() -> None:
    design = SequentialDesign(min_blocks=3)
    rising = np.array([[1.0, 1.1, 0.9, 1.0, 1.2]])  # p is tiny from the third block on
    assert naive_promotions(rising, design).tolist() == [3]
    blocks = np.array([[0.5, -0.4, 0.3, 0.4, 0.6, 0.5]])  # p: 0.34, 0.20, 0.095, then 0.044 on the sixth
    expected = next(
        (n for n in range(3, 7) if stats.ttest_1samp(blocks[0, :n], 0.0, alternative="greater").pvalue < 0.05), 0
    )
    assert expected == 6 and naive_promotions(blocks, design).tolist() == [6]
    assert naive_promotions(-rising, design).tolist() == [0]


def test_clopper_pearson_against_its_closed_form() -> None:
    low, high = clopper_pearson(0, 10)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 10))
    low, high = clopper_pearson(10, 10)
    assert low == pytest.approx(0.025 ** (1 / 10)) and high == 1.0
