"""The deflated Sharpe ratio and the probability of backtest overfitting: against the published worked example,
against an independent computation, and by simulation (each simulation states the rate it measured and the
bound it holds)."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from scipy import stats

from slsbot_runtime.evaluation.selection import (
    backtest_overfitting,
    deflated_sharpe_ratio,
    deflated_sharpe_ratios,
    expected_maximum_sharpe,
    moments,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
)

# -- the deflated Sharpe ratio ---------------------------------------------------------------------------------


def test_the_worked_example_of_bailey_and_lopez_de_prado_2014():
    """Their numerical example: 100 trials whose annualised Sharpe ratios have variance 1/2, the best at an
    annualised 2.5 over 1,250 daily returns (250 a year) with skewness -3 and kurtosis 10. The paper gives an
    expected maximum of 0.1132 per day (1.7894 annualised) and a DSR of 0.9004."""
    benchmark = expected_maximum_sharpe(0.5 / 250, 100)
    assert benchmark == pytest.approx(0.1132, abs=5e-5)
    assert benchmark * math.sqrt(250) == pytest.approx(1.7894, abs=5e-5)
    dsr = probabilistic_sharpe_ratio(2.5 / math.sqrt(250), benchmark, observations=1250, skewness=-3, kurtosis=10)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_the_psr_is_the_normal_cdf_of_the_standardised_excess_sharpe_computed_independently():
    sharpe, benchmark, t, skew, kurt = 0.08, 0.02, 500, -0.7, 6.5
    z = (sharpe - benchmark) * math.sqrt(t - 1) / math.sqrt(1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2)
    assert probabilistic_sharpe_ratio(sharpe, benchmark, observations=t, skewness=skew, kurtosis=kurt) == (
        pytest.approx(stats.norm.cdf(z), rel=1e-12)
    )


def test_sharpe_and_moments_agree_with_numpy_and_scipy():
    returns = np.random.default_rng(7).standard_t(5, size=2000) * 0.01 + 0.0004
    assert sharpe_ratio(returns) == pytest.approx(returns.mean() / returns.std(ddof=1), rel=1e-12)
    skewness, kurtosis = moments(returns)
    assert skewness == pytest.approx(stats.skew(returns), rel=1e-10)
    assert kurtosis == pytest.approx(stats.kurtosis(returns, fisher=False), rel=1e-10)
    assert sharpe_ratio(np.zeros(10)) == 0.0 and moments(np.zeros(10)) == (0.0, 3.0)


def test_one_candidate_is_no_selection_so_the_dsr_is_the_psr_against_zero():
    returns = np.random.default_rng(3).normal(0.001, 0.01, 800)
    alone = deflated_sharpe_ratio(returns, trials=1, sharpe_variance=0.0)
    skewness, kurtosis = moments(returns)
    assert alone.benchmark == 0.0
    assert alone.probability == probabilistic_sharpe_ratio(
        sharpe_ratio(returns), 0.0, observations=800, skewness=skewness, kurtosis=kurtosis
    )


def test_more_candidates_raise_the_bar():
    returns = np.random.default_rng(5).normal(0.002, 0.01, 1000)
    dsrs = [deflated_sharpe_ratio(returns, trials=n, sharpe_variance=0.002).probability for n in (2, 10, 100, 1000)]
    assert dsrs == sorted(dsrs, reverse=True) and dsrs[0] > dsrs[-1]


def test_the_expected_maximum_matches_simulated_maxima_of_normal_sharpe_ratios():
    """The formula approximates E[max of N draws from N(0, V)]. Measured over 20,000 simulated sets per N
    (seeded): relative errors 2.5 % (N = 10), 0.8 % (100), 0.4 % (1,000); the bound held is 3 %."""
    rng = np.random.default_rng(11)
    variance = 0.0009
    for trials in (10, 100, 1000):
        maxima = rng.normal(0.0, math.sqrt(variance), size=(20_000, trials)).max(axis=1)
        simulated = maxima.mean()
        assert expected_maximum_sharpe(variance, trials) == pytest.approx(simulated, rel=0.03)


def test_the_psr_of_a_strategy_with_no_edge_passes_95_percent_about_5_percent_of_the_time():
    """Under the null (true Sharpe 0, normal returns), PSR(0) is close to uniform: over 4,000 simulated track
    records of 500 returns (seeded) PSR > 0.95 happened at a rate of 5.3 %; the bound held is 5 % ± 1.4 %
    (four binomial standard errors)."""
    rng = np.random.default_rng(2014)
    runs = rng.normal(0.0, 0.01, size=(4000, 500))
    passed = 0
    for returns in runs:
        skewness, kurtosis = moments(returns)
        psr = probabilistic_sharpe_ratio(
            sharpe_ratio(returns), 0.0, observations=500, skewness=skewness, kurtosis=kurtosis
        )
        passed += psr > 0.95
    rate = passed / len(runs)
    assert abs(rate - 0.05) <= 4 * math.sqrt(0.05 * 0.95 / len(runs)), rate


@pytest.mark.slow  # 1,200 simulated selections
def test_the_best_of_many_noise_strategies_is_rarely_called_significant_and_a_real_edge_usually_is():
    """20 candidates of 500 normal returns with no edge, the best by Sharpe ratio chosen: over 1,000 simulated
    selections (seeded) its DSR passed 0.95 in 0.1 % of them (its undeflated PSR in 66.5 %); the bound held is
    5 %. With one candidate given a true per-period Sharpe ratio of 0.3, the DSR of the chosen one passed in
    99.5 % of 200 selections; the bound held is at least 90 %."""
    rng = np.random.default_rng(2015)
    false_alarms = naive_alarms = 0
    for _ in range(1000):
        matrix = rng.normal(0.0, 0.01, size=(500, 20))
        dsrs = deflated_sharpe_ratios(matrix)
        best = max(dsrs, key=lambda d: d.sharpe)
        false_alarms += best.probability > 0.95
        naive_alarms += (
            probabilistic_sharpe_ratio(
                best.sharpe, 0.0, observations=500, skewness=best.skewness, kurtosis=best.kurtosis
            )
            > 0.95
        )
    assert false_alarms / 1000 <= 0.05, false_alarms
    assert naive_alarms / 1000 > 0.2, naive_alarms  # what the deflation is for
    detected = 0
    for _ in range(200):
        matrix = rng.normal(0.0, 0.01, size=(500, 20))
        matrix[:, 0] += 0.003
        best = max(deflated_sharpe_ratios(matrix), key=lambda d: d.sharpe)
        detected += best.probability > 0.95
    assert detected / 200 >= 0.9, detected


# -- the probability of backtest overfitting ---------------------------------------------------------------------


def _naive_pbo(matrix: np.ndarray, blocks: int) -> tuple[float, list[float]]:
    """CSCV as the paper writes it, one split at a time with numpy's own mean and std and scipy's ranks."""
    parts = np.array_split(np.arange(len(matrix)), blocks)
    logits = []
    n = matrix.shape[1]
    for chosen in combinations(range(blocks), blocks // 2):
        rows_in = np.concatenate([parts[b] for b in chosen])
        rows_out = np.concatenate([parts[b] for b in range(blocks) if b not in chosen])
        in_sample = matrix[rows_in].mean(axis=0) / matrix[rows_in].std(axis=0, ddof=1)
        out_sample = matrix[rows_out].mean(axis=0) / matrix[rows_out].std(axis=0, ddof=1)
        best = int(np.argmax(in_sample))
        rank = stats.rankdata(out_sample)[best]
        share = rank / (n + 1)
        logits.append(math.log(share / (1 - share)))
    return float(np.mean(np.array(logits) <= 0)), logits


def test_cscv_agrees_with_a_split_by_split_computation():
    rng = np.random.default_rng(42)
    matrix = rng.normal(0.0002, 0.01, size=(803, 7))  # 803 rows: the blocks are not all the same size
    matrix[:, 3] += np.linspace(-0.002, 0.002, 803)  # one candidate that changes character half way
    result = backtest_overfitting(matrix, blocks=8)
    expected_pbo, expected_logits = _naive_pbo(matrix, 8)
    assert result.splits == 70 and result.blocks == 8 and result.candidates == 7 and result.observations == 803
    np.testing.assert_allclose(result.logits, expected_logits, rtol=1e-9)
    assert result.pbo == expected_pbo


def test_a_winner_that_always_loses_out_of_sample_is_certainly_overfit_and_a_dominant_one_is_not():
    """Two blocks, so two splits (each half in sample once). Candidate A wins the first half and is the worst in
    the second, C the other way round, B is middling throughout: whichever half is in sample, the winner is the
    worst out of sample, PBO = 1. When A is best in both halves, PBO = 0."""
    wave = np.array([1.0, -0.5, 1.0, -0.5] * 5) * 0.01  # mean 0.0025, so positive Sharpe
    good, bad, middling = wave + 0.01, wave - 0.01, wave
    first, second = slice(0, 20), slice(20, 40)
    overfit = np.zeros((40, 3))
    overfit[first, 0], overfit[second, 0] = good, bad
    overfit[first, 1], overfit[second, 1] = middling, middling
    overfit[first, 2], overfit[second, 2] = bad, good
    result = backtest_overfitting(overfit, blocks=2)
    assert result.pbo == 1.0 and result.splits == 2
    assert sorted(result.chosen.tolist()) == [0, 2] and result.probability_of_oos_loss == 1.0
    robust = overfit.copy()
    robust[:, 0] = np.concatenate([good, good])
    robust[:, 2] = np.concatenate([bad, bad])
    assert backtest_overfitting(robust, blocks=2).pbo == 0.0


@pytest.mark.slow  # 200 matrices of 12,870 splits
def test_pure_noise_strategies_are_overfit_about_half_the_time():
    """N = 10 candidates of pure noise (even N: no split lands exactly on the median), T = 800, S = 16 blocks
    (12,870 splits each): the mean PBO over 200 simulated matrices (seeded) was 0.503, with a standard deviation
    of 0.22 from one matrix to the next; the bound held is 0.5 ± 4 standard errors of the mean (± 0.063)."""
    rng = np.random.default_rng(2017)
    pbos = [backtest_overfitting(rng.normal(0.0, 0.01, size=(800, 10)), blocks=16).pbo for _ in range(200)]
    mean, spread = float(np.mean(pbos)), float(np.std(pbos, ddof=1))
    assert abs(mean - 0.5) <= 4 * spread / math.sqrt(len(pbos)), (mean, spread)


def test_a_real_edge_among_noise_is_not_overfit():
    """One of 10 candidates with a true per-period Sharpe ratio of 0.3: over 50 simulated matrices (seeded) the
    mean PBO was 0.00002 (the largest 0.0005); the bound held is 0.01. (With an edge of 0.15, too small to
    show reliably in 400-row halves, the mean was 0.06.)"""
    rng = np.random.default_rng(2018)
    pbos = []
    for _ in range(50):
        matrix = rng.normal(0.0, 0.01, size=(800, 10))
        matrix[:, 4] += 0.003
        pbos.append(backtest_overfitting(matrix, blocks=16).pbo)
    assert float(np.mean(pbos)) <= 0.01


def test_cscv_refuses_what_it_cannot_split():
    with pytest.raises(ValueError, match="at least two candidates"):
        backtest_overfitting(np.zeros((100, 1)))
    with pytest.raises(ValueError, match="even number of blocks"):
        backtest_overfitting(np.zeros((100, 3)), blocks=5)
    with pytest.raises(ValueError, match="cannot make 16 blocks"):
        backtest_overfitting(np.zeros((20, 3)), blocks=16)


def test_a_flat_candidate_scores_zero_not_nan():
    matrix = np.random.default_rng(1).normal(0.0, 0.01, size=(64, 3))
    matrix[:, 1] = 0.0
    result = backtest_overfitting(matrix, blocks=4)
    assert np.all(np.isfinite(result.logits))
    assert result.to_json(["a", "b", "c"])["splits"] == 6
