"""Fitted models compiled to plain arrays, evaluated the same way for one candle and for a whole history.

A trading loop asks for one prediction per candle: scikit-learn's ``predict_proba`` on a single row costs
0.1-5 ms (input validation, one Python call per tree), too much for a per-candle budget. ``compile_model`` copies
what a fitted model computes into arrays: the nodes of every tree, a linear model's scaling and weights, the
calibrator's coefficients or steps. ``proba(X)`` then answers for any number of rows with:

* elementwise IEEE arithmetic and comparisons only (exact, whatever the number of rows),
* sums over trees or weights with ``math.fsum`` per row (exactly rounded, so independent of order),
* ``math.exp`` per value for the sigmoid,

so the prediction for a candle is bit for bit the same whether the step loop asks for it alone or fast mode
asks for the whole history at once. Against scikit-learn's own ``predict_proba`` it agrees to ~1e-12 (its sums
run in another order); ``tests/unit/slsbot_runtime/ml/test_predictors.py`` checks both.

``score`` is what a calibrator reads (scikit-learn's ``decision_function`` where the model has one, else the
probability of "up"); ``proba`` is the calibrated probability of "up".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Bumped when the arithmetic of a compiled predictor changes (part of a model's code version).
PREDICTOR_VERSION = 1
ROW_CHUNK = 2048


def row_fsum(matrix: np.ndarray) -> np.ndarray:
    """Exactly rounded sum of each row."""
    return np.fromiter((math.fsum(row) for row in matrix.tolist()), dtype=np.float64, count=len(matrix))


def expit(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), per value with ``math.exp`` (never overflowing)."""
    return np.fromiter((_expit(v) for v in z.tolist()), dtype=np.float64, count=len(z))


def _expit(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


@dataclass(frozen=True, slots=True)
class TreeEnsemble:
    """Trees in flat arrays: node ``i`` goes left when ``x[feature[i]] <= threshold[i]``. ``mode`` says what the
    leaf values mean: ``sum`` (boosting: baseline + the sum is the log-odds) or ``mean`` (a forest: the mean is
    the probability of up). ``float32``: compare the inputs as float32, as scikit-learn's decision trees do."""

    feature: np.ndarray  # int64
    threshold: np.ndarray  # float64
    left: np.ndarray  # int64, absolute node index
    right: np.ndarray
    leaf: np.ndarray  # bool
    value: np.ndarray  # float64
    roots: np.ndarray  # int64, one per tree
    depth: int
    baseline: float
    mode: str  # "sum" or "mean"
    float32: bool
    #: The node arrays as Python lists, for one row at a time (walking 100 trees in Python beats 8 numpy calls per
    #: level there); the same comparisons and leaf values, so the same answer.
    nodes: tuple[list, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.nodes:
            lists = (self.feature, self.threshold, self.left, self.right, self.leaf, self.value, self.roots)
            object.__setattr__(self, "nodes", tuple(a.tolist() for a in lists))

    def one_row(self, x: list[float]) -> float:
        """``score`` of one row given as a list (already cast to float32 values when ``float32``)."""
        feature, threshold, left, right, leaf, value, roots = self.nodes
        leaves = []
        for node in roots:
            while not leaf[node]:
                node = left[node] if x[feature[node]] <= threshold[node] else right[node]
            leaves.append(value[node])
        total = math.fsum(leaves)
        return total + self.baseline if self.mode == "sum" else total / len(roots)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """(rows, trees) leaf values."""
        if self.float32:
            X = X.astype(np.float32).astype(np.float64)
        rows = np.arange(len(X))[:, None]
        node = np.broadcast_to(self.roots, (len(X), len(self.roots))).copy()
        for _ in range(self.depth):
            at_leaf = self.leaf[node]
            if at_leaf.all():
                break
            goes_left = X[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(at_leaf, node, np.where(goes_left, self.left[node], self.right[node]))
        return self.value[node]

    def score(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 1:
            row = (X.astype(np.float32).astype(np.float64) if self.float32 else X)[0].tolist()
            return np.array([self.one_row(row)])
        out = np.empty(len(X))
        for start in range(0, len(X), ROW_CHUNK):
            totals = row_fsum(self.leaves(X[start : start + ROW_CHUNK]))
            if self.mode == "sum":
                out[start : start + ROW_CHUNK] = totals + self.baseline
            else:
                out[start : start + ROW_CHUNK] = totals / len(self.roots)
        return out

    def raw_proba(self, X: np.ndarray) -> np.ndarray:
        scores = self.score(X)
        return expit(scores) if self.mode == "sum" else scores


@dataclass(frozen=True, slots=True)
class LinearModel:
    """Standardise, then log-odds = weights . z + intercept."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def score(self, X: np.ndarray) -> np.ndarray:
        z = (X - self.mean) / self.scale
        return row_fsum(z * self.coef) + self.intercept

    def raw_proba(self, X: np.ndarray) -> np.ndarray:
        return expit(self.score(X))


@dataclass(frozen=True, slots=True)
class Calibrator:
    """scikit-learn's calibrators: ``sigmoid`` p = 1 / (1 + exp(a f + b)); ``isotonic`` a step-wise linear map
    through ``(x, y)``, clipped at its ends."""

    method: str
    a: float = 0.0
    b: float = 0.0
    x: np.ndarray | None = None
    y: np.ndarray | None = None

    def __call__(self, f: np.ndarray) -> np.ndarray:
        if self.method == "sigmoid":
            return expit(-(self.a * f + self.b))
        assert self.x is not None and self.y is not None
        x, y = self.x, self.y
        if len(x) == 1:
            return np.full(len(f), float(y[0]))
        f = np.clip(f, x[0], x[-1])
        j = np.clip(np.searchsorted(x, f, side="right") - 1, 0, len(x) - 2)
        x0, x1, y0, y1 = x[j], x[j + 1], y[j], y[j + 1]
        width = x1 - x0
        slope = np.where(width > 0, (y1 - y0) / np.where(width > 0, width, 1.0), 0.0)
        return np.clip(slope * (f - x0) + y0, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class CalibratedModel:
    """A base model and its calibrator, reading the columns ``features`` (in this order) of the feature table."""

    kind: str
    features: tuple[str, ...]
    base: TreeEnsemble | LinearModel
    calibrator: Calibrator

    def score(self, X: np.ndarray) -> np.ndarray:
        return self.base.score(X)

    def proba(self, X: np.ndarray) -> np.ndarray:
        """The calibrator reads the score: the decision function where the model has one (boosting, linear), the
        probability of up for a forest, as scikit-learn's calibrators do."""
        p = self.calibrator(self.base.score(X))
        return np.where((p > 1.0) & (p <= 1.0 + 1e-5), 1.0, p)


@dataclass(frozen=True, slots=True)
class StackedModel:
    """A logistic regression over its inputs' uncalibrated scores (``inputs``: (name, version, model))."""

    kind: str
    inputs: tuple[tuple[str, int, CalibratedModel], ...]
    meta: LinearModel

    @property
    def features(self) -> tuple[str, ...]:
        names: dict[str, None] = {}
        for _, _, model in self.inputs:
            names.update(dict.fromkeys(model.features))
        return tuple(names)

    def proba_from_columns(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        return self.meta.raw_proba(input_scores(self.inputs, columns))


Predictor = CalibratedModel | StackedModel


def input_scores(inputs: tuple[tuple[str, int, CalibratedModel], ...], columns: dict[str, np.ndarray]) -> np.ndarray:
    """(rows, inputs): each input's uncalibrated score, what a stacking model's regression reads."""
    return np.column_stack([model.score(_matrix(columns, model.features)) for _, _, model in inputs])


def _matrix(columns: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    return np.column_stack([columns[name] for name in names])


def predict(model: Predictor, columns: dict[str, np.ndarray]) -> np.ndarray:
    """P(up) for the rows of ``columns`` (feature name -> values, every row finite)."""
    if isinstance(model, StackedModel):
        return model.proba_from_columns(columns)
    return model.proba(_matrix(columns, model.features))
