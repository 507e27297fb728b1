"""The scikit-learn model of each kind, its calibration, and the compiled form the runtime evaluates.

Defaults are small and regularised (a few thousand rows of noisy returns): histogram gradient boosting with
shallow trees, a forest of depth-limited trees, an L2 logistic regression on standardised features. A
stacking model is a logistic regression over its inputs' scores. Parameters from ``ml.models[].params``
override the defaults by their scikit-learn names; an unknown name or a bad value is a ``ConfigError`` naming
``ml.models[<name>].params.<field>``. Every model is fitted single-threaded (``n_jobs`` 1; the training
process bounds the BLAS and OpenMP threads), so the same data gives the same model in any process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.ml.predictors import CalibratedModel, Calibrator, LinearModel, StackedModel, TreeEnsemble

DEFAULTS: dict[str, dict[str, Any]] = {
    "gradientBoosting": {
        "max_iter": 100,
        "learning_rate": 0.05,
        "max_leaf_nodes": 15,
        "max_depth": 4,
        "min_samples_leaf": 50,
        "l2_regularization": 1.0,
        "early_stopping": False,
        "random_state": 0,
    },
    "randomForest": {
        "n_estimators": 100,
        "max_depth": 6,
        "min_samples_leaf": 20,
        "max_features": "sqrt",
        "random_state": 0,
        "n_jobs": 1,
    },
    "logisticRegression": {"C": 0.1, "max_iter": 1000},
    "stacking": {"C": 1.0, "max_iter": 1000},
}
#: Parameters the runtime sets itself: threads belong to the training process's bounds.
FIXED = {"n_jobs"}


def build_estimator(kind: str, params: Mapping[str, Any], *, model: str = "model") -> BaseEstimator:
    """An unfitted estimator for ``kind`` with ``params`` over the defaults; ConfigError naming the field."""
    where = f"ml.models[{model}].params"
    if kind not in DEFAULTS:
        raise ConfigError(f"ml.models[{model}].kind: {kind} is not a signal model kind ({', '.join(DEFAULTS)})")
    fixed = sorted(FIXED.intersection(params))
    if fixed:
        raise ConfigError(f"{where}.{fixed[0]}: set by the runtime (threads are ml.worker.threads); remove it")
    merged = {**DEFAULTS[kind], **dict(params)}
    if kind == "gradientBoosting":
        estimator: BaseEstimator = HistGradientBoostingClassifier()
    elif kind == "randomForest":
        estimator = RandomForestClassifier()
    else:
        estimator = LogisticRegression()
    accepted = estimator.get_params()
    unknown = sorted(set(merged) - set(accepted))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: not a parameter of {kind}; it accepts {', '.join(sorted(accepted))}")
    estimator.set_params(**merged)
    try:
        estimator._validate_params()
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {error}") from None
    if kind in ("logisticRegression", "stacking"):
        return Pipeline([("scale", StandardScaler()), ("model", estimator)])
    return estimator


def fit_calibrated(
    kind: str,
    params: Mapping[str, Any],
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_calibrate: np.ndarray,
    y_calibrate: np.ndarray,
    *,
    method: str,
    model: str = "model",
) -> CalibratedClassifierCV:
    """Fit on the training block, then calibrate the frozen model on the calibration block."""
    base = build_estimator(kind, params, model=model)
    base.fit(X_train, y_train)
    calibrated = CalibratedClassifierCV(FrozenEstimator(base), method=method)
    calibrated.fit(X_calibrate, y_calibrate)
    return calibrated


def fit_meta(params: Mapping[str, Any], scores: np.ndarray, y: np.ndarray, *, model: str = "model") -> Pipeline:
    """A stacking model's logistic regression over its inputs' scores."""
    meta = build_estimator("stacking", params, model=model)
    meta.fit(scores, y)
    return meta


def compile_calibrated(kind: str, features: tuple[str, ...], fitted: CalibratedClassifierCV) -> CalibratedModel:
    """The arrays of a fitted, calibrated model (see ``predictors``)."""
    (member,) = fitted.calibrated_classifiers_
    base = member.estimator
    if isinstance(base, FrozenEstimator):
        base = base.estimator
    _check_classes(base)
    (calibrator,) = member.calibrators
    return CalibratedModel(kind, features, compile_base(base), compile_calibrator(calibrator))


def compile_base(base: BaseEstimator) -> TreeEnsemble | LinearModel:
    if isinstance(base, HistGradientBoostingClassifier):
        return _compile_boosting(base)
    if isinstance(base, RandomForestClassifier):
        return _compile_forest(base)
    if isinstance(base, Pipeline):
        return compile_linear(base)
    raise TypeError(f"no compiled form for {type(base).__name__}")


def compile_linear(pipeline: Pipeline) -> LinearModel:
    scaler, model = pipeline.named_steps["scale"], pipeline.named_steps["model"]
    scale = np.where(scaler.scale_ == 0, 1.0, scaler.scale_) if scaler.scale_ is not None else None
    return LinearModel(
        np.asarray(scaler.mean_, dtype=np.float64),
        np.asarray(scale, dtype=np.float64),
        np.asarray(model.coef_[0], dtype=np.float64),
        float(model.intercept_[0]),
    )


def compile_calibrator(calibrator: Any) -> Calibrator:
    name = type(calibrator).__name__
    if name == "_SigmoidCalibration":
        return Calibrator("sigmoid", a=float(calibrator.a_), b=float(calibrator.b_))
    if name == "IsotonicRegression":
        return Calibrator(
            "isotonic",
            x=np.asarray(calibrator.X_thresholds_, dtype=np.float64),
            y=np.asarray(calibrator.y_thresholds_, dtype=np.float64),
        )
    raise TypeError(f"no compiled form for the calibrator {name}")


def compile_stacked(
    inputs: tuple[tuple[str, int, CalibratedModel], ...], meta: Pipeline, *, kind: str = "stacking"
) -> StackedModel:
    return StackedModel(kind, inputs, compile_linear(meta))


def _check_classes(base: BaseEstimator) -> None:
    classes = getattr(base, "classes_", None)
    if classes is None and isinstance(base, Pipeline):
        classes = base.named_steps["model"].classes_
    if classes is None or list(classes) != [0, 1]:
        raise ValueError(f"a signal model needs both classes (0, 1) in its training data, got {classes}")


def _compile_boosting(model: HistGradientBoostingClassifier) -> TreeEnsemble:
    trees = [predictors[0].nodes for predictors in model._predictors]
    arrays = _flatten(
        [
            (
                nodes["feature_idx"].astype(np.int64),
                nodes["num_threshold"].astype(np.float64),
                nodes["left"].astype(np.int64),
                nodes["right"].astype(np.int64),
                nodes["is_leaf"].astype(bool),
                nodes["value"].astype(np.float64),
                int(nodes["depth"].max()) if len(nodes) else 0,
            )
            for nodes in trees
        ]
    )
    return TreeEnsemble(*arrays, baseline=float(np.ravel(model._baseline_prediction)[0]), mode="sum", float32=False)


def _compile_forest(model: RandomForestClassifier) -> TreeEnsemble:
    parts = []
    for estimator in model.estimators_:
        tree = estimator.tree_
        value = tree.value[:, 0, :]
        total = value.sum(axis=1)
        up = np.where(total > 0, value[:, 1] / np.where(total > 0, total, 1.0), 0.0)
        leaf = tree.children_left == -1
        parts.append(
            (
                tree.feature.astype(np.int64),
                tree.threshold.astype(np.float64),
                tree.children_left.astype(np.int64),
                tree.children_right.astype(np.int64),
                leaf,
                up.astype(np.float64),
                int(tree.max_depth),
            )
        )
    return TreeEnsemble(*_flatten(parts), baseline=0.0, mode="mean", float32=True)


def _flatten(
    trees: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    features, thresholds, lefts, rights, leaves, values, roots = [], [], [], [], [], [], []
    offset, depth = 0, 0
    for feature, threshold, left, right, leaf, value, tree_depth in trees:
        roots.append(offset)
        features.append(np.where(leaf, 0, feature))
        thresholds.append(np.where(leaf, 0.0, threshold))
        lefts.append(np.where(leaf, 0, left) + offset)
        rights.append(np.where(leaf, 0, right) + offset)
        leaves.append(leaf)
        values.append(value)
        offset += len(leaf)
        depth = max(depth, tree_depth)
    return (
        np.concatenate(features),
        np.concatenate(thresholds),
        np.concatenate(lefts),
        np.concatenate(rights),
        np.concatenate(leaves),
        np.concatenate(values),
        np.asarray(roots, dtype=np.int64),
        depth + 1,
    )
