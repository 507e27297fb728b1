"""PSI against a hand-computed table, KS against scipy, and the drift monitor's error rates measured by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from slsbot_runtime.monitoring.drift import (
    MIN_LIVE,
    PSI_FLOOR,
    DriftMonitor,
    bin_counts,
    bin_edges,
    ks_2samp,
    psi,
    psi_from_counts,
)

REFERENCE = np.arange(1000, dtype=np.float64)  # deciles: 100 values in each bin


def live_with_shares(shares: list[float]) -> np.ndarray:
    """1000 live values, ``shares[i]`` of them in the reference's decile bin i."""
    return np.concatenate([np.full(round(share * 1000), i * 100 + 50.0) for i, share in enumerate(shares)])


def test_psi_equals_the_hand_computed_table() -> None:
    # bin  e     a     (a - e) ln(a / e)
    #  0   0.10  0.05  (-0.05) ln 0.5 = 0.034657
    #  1   0.10  0.08  (-0.02) ln 0.8 = 0.004463
    #  2   0.10  0.10  0
    #  3   0.10  0.12  ( 0.02) ln 1.2 = 0.003646
    #  4   0.10  0.15  ( 0.05) ln 1.5 = 0.020273
    #  5-9 0.10  0.10  0
    #                          total  = 0.063040
    shares = [0.05, 0.08, 0.10, 0.12, 0.15, 0.10, 0.10, 0.10, 0.10, 0.10]
    assert bin_counts(REFERENCE, bin_edges(REFERENCE)).tolist() == [100] * 10
    assert psi(REFERENCE, live_with_shares(shares)) == pytest.approx(0.063040, abs=1e-6)
    counts = [50, 80, 100, 120, 150, 100, 100, 100, 100, 100]
    assert psi_from_counts([100] * 10, counts) == pytest.approx(0.063040, abs=1e-6)


def test_an_empty_bin_counts_as_the_floor_share() -> None:
    # bin 0: a = 0 -> PSI_FLOOR: (0.0001 - 0.1) ln(0.0001 / 0.1) = 0.690085; bin 1: 0.1 ln 2 = 0.069315
    assert PSI_FLOOR == 1e-4
    shares = [0.0, 0.2] + [0.1] * 8
    assert psi(REFERENCE, live_with_shares(shares)) == pytest.approx(0.690085 + 0.069315, abs=1e-6)


def test_repeated_quantiles_merge_bins_and_an_unchanged_distribution_scores_zero() -> None:
    reference = np.concatenate([np.zeros(600), np.arange(1.0, 401.0)])  # 60% zeros, as price gaps often are
    edges = bin_edges(reference)
    assert edges[0] == 0.0 and len(edges) == len(set(edges.tolist())) < 9
    assert psi(reference, reference) == 0.0
    assert psi(reference, np.zeros(500)) > 0.5  # all the live mass in one bin


@pytest.mark.parametrize(("n1", "n2", "shift"), [(2000, 500, 0.0), (2000, 500, 0.15), (500, 300, 0.3), (120, 90, 0.0)])
def test_ks_equals_scipy(n1: int, n2: int, shift: float) -> None:
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(size=n1), rng.normal(shift, 1.0, size=n2)
    statistic, pvalue = ks_2samp(a, b)
    asymp = scipy.stats.ks_2samp(a, b, method="asymp")
    assert statistic == asymp.statistic
    assert statistic == pytest.approx(scipy.stats.ks_2samp(a, b).statistic, abs=1e-12)  # exact: d as a fraction
    assert pvalue == pytest.approx(asymp.pvalue, rel=1e-12, abs=1e-300)
    assert abs(pvalue - scipy.stats.ks_2samp(a, b, method="exact").pvalue) < 0.02  # the asymptotic form is close


def test_the_monitors_incremental_psi_equals_psi_of_its_window() -> None:
    rng = np.random.default_rng(7)
    reference = {"a": rng.normal(size=2000), "b": rng.exponential(size=2000)}
    monitor = DriftMonitor(reference, threshold=0.2, window=500, min_live=300)
    stream = {"a": rng.normal(0.3, 1.2, size=1700), "b": rng.exponential(2.0, size=1700)}
    for i in range(1700):
        monitor.observe({"a": stream["a"][i], "b": float("nan") if i % 7 == 0 else stream["b"][i]})
    live_b = [v for i, v in enumerate(stream["b"]) if i % 7][-500:]
    assert monitor.check("a").psi == pytest.approx(psi(reference["a"], stream["a"][-500:]), abs=1e-12)
    figures = monitor.check("b")
    assert figures.psi == pytest.approx(psi(reference["b"], live_b), abs=1e-12)
    assert (figures.ks_statistic, figures.ks_pvalue) == ks_2samp(reference["b"], np.array(live_b))
    assert figures.live == 500 and figures.drifted and monitor.drifted


def test_a_series_is_judged_only_once_its_window_holds_min_live_values() -> None:
    monitor = DriftMonitor({"x": np.arange(1000.0)}, threshold=0.2, window=500, min_live=300)
    for _ in range(299):
        monitor.observe({"x": 5.0})  # all in the first bin: as drifted as can be
    assert monitor.check("x").psi is None and not monitor.drifted
    monitor.observe({"x": 5.0})
    assert monitor.check("x").psi > 0.2 and monitor.drifted


def test_stationary_data_is_rarely_called_drifted() -> None:
    """The false-drift rate at the default threshold 0.2, with the live window at its smallest judged size
    (MIN_LIVE values) against a 2,000-value reference: measured 0 of 4,000 trials, bound 0.5%."""
    rng = np.random.default_rng(11)
    trials, drifted = 4000, 0
    reference = rng.normal(size=2000)
    for _ in range(trials):
        monitor = DriftMonitor({"x": reference}, threshold=0.2, window=500, min_live=MIN_LIVE)
        for value in rng.normal(size=MIN_LIVE):
            monitor.observe({"x": float(value)})
        drifted += monitor.check("x").drifted
    rate = drifted / trials
    print(f"false drift rate: {drifted}/{trials} = {rate:.4%} (bound 0.5%)")
    assert rate <= 0.005


def test_a_one_sigma_shift_is_called_drifted() -> None:
    """Power: a shift of one standard deviation in the mean, MIN_LIVE live values: measured 100%, bound >= 99%."""
    rng = np.random.default_rng(12)
    trials, drifted = 500, 0
    reference = rng.normal(size=2000)
    for _ in range(trials):
        monitor = DriftMonitor({"x": reference}, threshold=0.2, window=500, min_live=MIN_LIVE)
        for value in rng.normal(1.0, 1.0, size=MIN_LIVE):
            monitor.observe({"x": float(value)})
        drifted += monitor.check("x").drifted
    print(f"detection rate at a 1-sigma shift: {drifted}/{trials}")
    assert drifted / trials >= 0.99


def test_a_new_reference_keeps_or_empties_the_live_window() -> None:
    rng = np.random.default_rng(5)
    monitor = DriftMonitor({"feature": rng.normal(size=1000), "output": rng.normal(size=1000)}, threshold=0.2)
    values = rng.normal(2.0, 1.0, size=400)
    for value in values:
        monitor.observe({"feature": float(value), "output": float(value)})
    assert monitor.check("feature").drifted
    new_reference = rng.normal(2.0, 1.0, size=1000)
    monitor.set_reference("feature", new_reference, keep_live=True)
    monitor.set_reference("output", new_reference, keep_live=False)
    kept = monitor.check("feature")
    assert kept.live == 400 and kept.psi == pytest.approx(psi(new_reference, values), abs=1e-12) and not kept.drifted
    assert monitor.check("output").live == 0


def test_refreshing_ks_costs_at_most_the_budget_and_only_for_changed_windows() -> None:
    rng = np.random.default_rng(9)
    monitor = DriftMonitor({name: rng.normal(size=600) for name in "abc"}, threshold=0.2, window=400, min_live=300)
    for _ in range(300):
        monitor.observe({name: float(rng.normal()) for name in "abc"})
    assert [s.ks_pvalue for s in monitor.report()] == [None, None, None]
    assert monitor.refresh_ks(2) == 2
    assert [s.ks_pvalue is not None for s in monitor.report()] == [True, True, False]
    assert monitor.refresh_ks(5) == 1  # only c had not been computed
    assert monitor.refresh_ks(5) == 0  # nothing changed since
    monitor.observe({"b": 0.0})
    assert monitor.refresh_ks(5) == 1
    assert all(math.isfinite(s.ks_pvalue) for s in monitor.report())
