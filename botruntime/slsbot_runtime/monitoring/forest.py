"""An isolation forest fitted by scikit-learn, scored without it: one candle in tens of microseconds, a whole
history in one pass, the same numbers as ``IsolationForest.score_samples`` (negated: here higher is more unusual).

scikit-learn's ``score_samples`` costs milliseconds for a single row (input validation and a thread pool), far
too much for a candle's decision. ``FittedForest`` copies the fitted trees into flat arrays (every tree's nodes
one after the other; a leaf points to itself) and walks all trees at once, one level per step, for one row or for
a matrix. The arithmetic is scikit-learn's: rows are rounded to float32 as it does before comparing them with the
split thresholds; a row's path length in a tree is the leaf's depth plus the average path length of the training
samples left in the leaf, minus one; the anomaly score is ``2 ** (-mean path length / c(max_samples))``, where
``c(n)`` is the average path length of an unsuccessful search in a binary search tree of ``n`` nodes
(Liu, Ting and Zhou, *Isolation Forest*, 2008). An ordinary row scores about 0.5, an isolated one towards 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # scikit-learn is loaded when a forest is fitted: a runtime without an anomaly model never loads it
    from sklearn.ensemble import IsolationForest

CHUNK_ROWS = 4096  # rows scored together by score_many: trees x rows node indices stay a few MB


@dataclass(frozen=True, slots=True)
class ForestParams:
    n_estimators: int = 100
    max_samples: int = 256
    random_state: int = 0


def average_path_length(n: np.ndarray | float) -> np.ndarray:
    """c(n): 0 for n <= 1, 1 for n = 2, else 2 (ln(n - 1) + Euler's gamma) - 2 (n - 1) / n."""
    n = np.asarray(n, dtype=np.float64)
    safe = np.where(n > 2, n, 3.0)
    general = 2.0 * (np.log(safe - 1.0) + np.euler_gamma) - 2.0 * (safe - 1.0) / safe
    return np.where(n <= 1, 0.0, np.where(n == 2, 1.0, general))


class FittedForest:
    """The trees of a fitted ``IsolationForest`` as flat arrays, scored in numpy."""

    __slots__ = ("_denominator", "_depth", "_feature", "_left", "_right", "_roots", "_threshold", "_value", "features")

    def __init__(self, model: IsolationForest) -> None:
        features = model.n_features_in_
        if model.max_features not in (1.0, features):
            raise ValueError("FittedForest: the forest must see every feature (max_features=1.0)")
        lefts, rights, splits, thresholds, values, roots = [], [], [], [], [], []
        offset, depth = 0, 0
        for estimator in model.estimators_:
            tree = estimator.tree_
            count = tree.node_count
            nodes = np.arange(count)
            leaf = tree.children_left == -1
            lefts.append(np.where(leaf, nodes, tree.children_left) + offset)
            rights.append(np.where(leaf, nodes, tree.children_right) + offset)
            splits.append(np.where(leaf, 0, tree.feature))
            thresholds.append(np.where(leaf, np.inf, tree.threshold))
            node_depths = tree.compute_node_depths()
            values.append(node_depths + average_path_length(tree.n_node_samples) - 1.0)
            depth = max(depth, int(node_depths.max()))
            roots.append(offset)
            offset += count
        self.features = features
        self._left = np.concatenate(lefts)
        self._right = np.concatenate(rights)
        self._feature = np.concatenate(splits)
        self._threshold = np.concatenate(thresholds)
        self._value = np.concatenate(values)
        self._roots = np.asarray(roots, dtype=np.intp)
        self._depth = depth  # the root has depth 1: depth - 1 steps reach the deepest leaf
        self._denominator = len(roots) * float(average_path_length(model.max_samples_))

    def score(self, row: np.ndarray) -> float:
        """The anomaly score of one row of features (0..1, higher is more unusual)."""
        x = np.asarray(row, dtype=np.float32).astype(np.float64)
        nodes = self._roots
        left, right, feature, threshold = self._left, self._right, self._feature, self._threshold
        for _ in range(self._depth - 1):
            nodes = np.where(x[feature[nodes]] <= threshold[nodes], left[nodes], right[nodes])
        return float(2.0 ** (-(self._value[nodes].sum() / self._denominator)))

    def score_many(self, rows: np.ndarray) -> np.ndarray:
        """The anomaly score of every row of a (rows x features) matrix, one pass over the trees' levels."""
        x = np.asarray(rows, dtype=np.float32).astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ValueError(f"score_many: expected rows of {self.features} features, got shape {x.shape}")
        scores = np.empty(len(x))
        for start in range(0, len(x), CHUNK_ROWS):
            scores[start : start + CHUNK_ROWS] = self._score_chunk(x[start : start + CHUNK_ROWS])
        return scores

    def _score_chunk(self, x: np.ndarray) -> np.ndarray:
        return 2.0 ** (-(self._path_lengths(x).sum(axis=0) / self._denominator))

    def _path_lengths(self, x: np.ndarray) -> np.ndarray:
        """Each tree's path length for each row of ``x`` (float64, already rounded through float32): trees x rows."""
        left, right, feature, threshold = self._left, self._right, self._feature, self._threshold
        nodes = np.broadcast_to(self._roots[:, None], (len(self._roots), len(x)))
        columns = np.arange(len(x))
        for _ in range(self._depth - 1):
            nodes = np.where(x[columns, feature[nodes]] <= threshold[nodes], left[nodes], right[nodes])
        return self._value[nodes]

    def out_of_bag_scores(self, rows: np.ndarray, in_bag: np.ndarray) -> np.ndarray:
        """The score of each training row from the trees that did not grow on it (``in_bag``: trees x rows, True
        where a tree's sample held the row): what a new row like it would score. A row every tree saw gets the
        score of all trees. The scores of rows a forest was grown on are biased low (each tree was shaped around
        them), so a reference sample of the forest's output must be out of bag."""
        x = np.asarray(rows, dtype=np.float32).astype(np.float64)
        lengths = self._path_lengths(x)
        outside = ~np.asarray(in_bag, dtype=bool)
        counts = outside.sum(axis=0)
        mean = np.where(
            counts > 0,
            np.where(outside, lengths, 0.0).sum(axis=0) / np.maximum(counts, 1),
            lengths.mean(axis=0),
        )
        return 2.0 ** (-(mean * len(self._roots) / self._denominator))


def fit_forest(rows: np.ndarray, params: ForestParams) -> tuple[FittedForest, IsolationForest]:
    """Fit scikit-learn's isolation forest on ``rows`` (finite, rows x features) with a fixed random state, so the
    same rows always give the same forest; returns it flattened, and the scikit-learn model it came from."""
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(
        n_estimators=params.n_estimators,
        max_samples=min(params.max_samples, len(rows)),
        random_state=params.random_state,
    )
    model.fit(rows)
    return FittedForest(model), model


def in_bag(model: IsolationForest, rows: int) -> np.ndarray:
    """trees x rows: True where the tree was grown on the row."""
    mask = np.zeros((len(model.estimators_), rows), dtype=bool)
    for k, samples in enumerate(model.estimators_samples_):
        mask[k, samples] = True
    return mask
