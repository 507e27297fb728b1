"""The flattened isolation forest scores exactly as scikit-learn's ``IsolationForest.score_samples`` (negated)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.monitoring import market_state
from slsbot_runtime.monitoring.forest import FittedForest, ForestParams, average_path_length, fit_forest, in_bag


@pytest.mark.parametrize(("n_estimators", "max_samples", "seed"), [(100, 256, 0), (37, 64, 5), (10, 500, 11)])
def test_scores_equal_scikit_learns_for_rows_and_matrices(n_estimators: int, max_samples: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    train = rng.standard_t(3, size=(800, 3))
    new = np.vstack([rng.standard_t(3, size=(500, 3)), rng.normal(0, 20, size=(20, 3))])  # outliers among them
    forest, model = fit_forest(train, ForestParams(n_estimators, max_samples, seed))
    expected = -model.score_samples(new)
    np.testing.assert_allclose(forest.score_many(new), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose([forest.score(row) for row in new], expected, rtol=0, atol=1e-12)
    assert expected[-20:].mean() > 0.6 > 0.5 > np.median(expected[:500])  # the isolation forest's own scale


def test_scores_equal_scikit_learns_on_real_market_state_features(btc_2024: OHLCV) -> None:
    values = market_state.compute(btc_2024)
    rows = np.column_stack([values[name] for name in market_state.MARKET_STATE_FEATURES])
    rows = rows[np.isfinite(rows).all(axis=1)]
    forest, model = fit_forest(rows[:2000], ForestParams())
    np.testing.assert_allclose(forest.score_many(rows[2000:]), -model.score_samples(rows[2000:]), rtol=0, atol=1e-12)


def test_average_path_length_is_the_textbook_c_of_n() -> None:
    # c(n) = 2 H(n-1) - 2 (n-1)/n with H(i) ~ ln(i) + Euler's gamma (Liu, Ting and Zhou 2008)
    assert average_path_length(np.array([0.0, 1.0, 2.0]).astype(float)).tolist() == [0.0, 0.0, 1.0]
    assert average_path_length(256.0) == pytest.approx(2 * (np.log(255) + np.euler_gamma) - 2 * 255 / 256, abs=1e-15)
    exact = 2 * sum(1 / i for i in range(1, 256)) - 2 * 255 / 256  # with the harmonic number itself
    assert 0 < exact - average_path_length(256.0) < 1 / 255  # H(i) - ln(i) - gamma ~ 1/(2i)


def test_out_of_bag_scores_use_only_the_trees_that_did_not_see_the_row() -> None:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(300, 2))
    forest, model = fit_forest(rows, ForestParams(n_estimators=20, max_samples=100, random_state=3))
    seen = in_bag(model, len(rows))
    assert seen.sum(axis=1).tolist() == [100] * 20  # each tree grew on its 100-row sample
    denominator = average_path_length(100.0)
    for index in (0, 17, 299):
        lengths = []
        for tree, samples in zip(model.estimators_, model.estimators_samples_, strict=True):
            if index in set(samples.tolist()):
                continue
            leaf = tree.apply(rows[index : index + 1].astype(np.float32))[0]
            depth = tree.tree_.compute_node_depths()[leaf]
            lengths.append(depth + average_path_length(tree.tree_.n_node_samples[leaf]) - 1.0)
        expected = 2.0 ** (-np.mean(lengths) / denominator)
        assert forest.out_of_bag_scores(rows, seen)[index] == pytest.approx(expected, abs=1e-12)


def test_a_forest_that_does_not_see_every_feature_is_refused() -> None:
    rows = np.random.default_rng(0).normal(size=(50, 4))
    model = IsolationForest(n_estimators=5, max_features=0.5, random_state=0).fit(rows)
    with pytest.raises(ValueError, match="max_features"):
        FittedForest(model)
