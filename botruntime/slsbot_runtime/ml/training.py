"""One retrain: every model due at a retrain point, trained, calibrated, scored and compared with the model it
would replace. Pure computation over the candles it is given (no files, no clock): the training worker runs it
and writes the registry; fast mode runs it in-process on the same candles and gets the same models.

For each retrain point P (see ``schedule``) the job holds, per symbol, the candles that opened before P: the
feature warmup then up to ``lookback`` sample candles. Then, per model:

1. the pooled table (``dataset``), cut by time into training, calibration and holdout blocks (``splits``:
   each older block purged and embargoed against the newer ones);
2. the model fitted on the training block, calibrated on the calibration block (a stacking model: a logistic
   regression over its inputs' scores on the calibration block, out of sample for each input);
3. scored on the holdout: log loss, Brier score, accuracy, ROC AUC;
4. the current model (the incumbent) scored on the same holdout rows: they are out of sample for it too (it
   was trained on data before its own holdout, which is older than this one). The candidate replaces it when
   its log loss is at most ``(1 + replaceTolerance)`` times the incumbent's ("not worse out of sample").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

from slsbot.api.strategy import MLModel
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.features.engine import ALL_FEATURES
from slsbot_runtime.ml.builders import compile_calibrated, compile_stacked, fit_calibrated, fit_meta
from slsbot_runtime.ml.dataset import Dataset, build_dataset, feature_warmup
from slsbot_runtime.ml.predictors import CalibratedModel, Predictor, StackedModel, input_scores, predict
from slsbot_runtime.ml.splits import Blocks, block_boundaries, train_calibrate_holdout

#: Fewest rows each block needs; a smaller retrain fails (the model keeps its state, the decision says why).
MIN_ROWS = {"train": 100, "calibrate": 30, "holdout": 30}
#: Rows of the training features kept with each model for drift checks.
REFERENCE_ROWS = 1000


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What training needs of one ``ml.models[]`` entry, as plain data (it crosses to the training process)."""

    name: str
    kind: str
    features: tuple[str, ...]
    lookback: int
    horizon: int
    embargo: int
    calibration: str
    holdout_fraction: float
    calibration_fraction: float
    params: Mapping[str, Any]
    inputs: tuple[str, ...]
    replace_tolerance: float
    retrain_every_ms: int
    stale_after_ms: int
    vote: bool
    weight: float
    pinned_version: int | None

    @classmethod
    def from_api(cls, model: MLModel) -> ModelSpec:
        return cls(
            name=model.name,
            kind=str(model.kind),
            features=tuple(model.features) or ALL_FEATURES,
            lookback=model.lookback,
            horizon=model.horizon,
            embargo=model.embargo,
            calibration=str(model.calibration),
            holdout_fraction=model.holdout_fraction,
            calibration_fraction=model.calibration_fraction,
            params=dict(model.params),
            inputs=tuple(model.inputs),
            replace_tolerance=model.replace_tolerance,
            retrain_every_ms=model.retrain_every_ms,
            stale_after_ms=model.stale_after_ms,
            vote=model.vote,
            weight=model.weight,
            pinned_version=model.pinned_version,
        )

    @property
    def stacking(self) -> bool:
        return self.kind == "stacking"

    def history_needed(self, inputs: Sequence[ModelSpec] = ()) -> int:
        """Candles per symbol a retrain reads: the features' warmup and the lookback."""
        features = self.features if not self.stacking else tuple(f for spec in inputs for f in spec.features)
        return feature_warmup(features) + self.lookback


@dataclass(frozen=True, slots=True)
class Incumbent:
    version: int
    model: Predictor


@dataclass(frozen=True, slots=True)
class TrainingJob:
    point: int  # the retrain point P, ms: every candle in ``windows`` opened before it
    windows: tuple[OHLCV, ...]  # one per symbol
    models: tuple[ModelSpec, ...]  # the models due, inputs before the stacking models that read them
    incumbents: Mapping[str, Incumbent] = field(default_factory=dict)
    reason: str = "schedule"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One model's retrain: the candidate, its scores, and whether it replaces the incumbent."""

    name: str
    point: int
    reason: str
    error: str | None = None
    model: Predictor | None = None
    fitted: Any = None  # the scikit-learn objects, for the registry (not sent back to the loop)
    metrics: Mapping[str, float] = field(default_factory=dict)
    incumbent_version: int | None = None
    incumbent_metrics: Mapping[str, float] | None = None
    replaces: bool = False
    decision: str = ""
    window: tuple[int, int] = (0, 0)  # first and last sample open time
    rows: Mapping[str, int] = field(default_factory=dict)
    fingerprint: str = ""
    features: tuple[str, ...] = ()
    reference: Mapping[str, np.ndarray] = field(default_factory=dict)
    version: int | None = None  # set by whoever stores it

    @property
    def ok(self) -> bool:
        return self.error is None


def run_training(job: TrainingJob) -> list[Outcome]:
    """Train, score and judge every model of ``job`` (see the module doc). Never raises for a model's own
    failure: its outcome carries the error."""
    outcomes: dict[str, Outcome] = {}
    datasets: dict[tuple[tuple[str, ...], int, int], Dataset] = {}
    specs = {spec.name: spec for spec in job.models}
    for spec in job.models:
        try:
            if spec.stacking:
                inputs = [specs[name] for name in spec.inputs]
                features = tuple(dict.fromkeys(f for source in inputs for f in source.features))
            else:
                features = spec.features
            key = (features, spec.horizon, spec.lookback)
            if key not in datasets:
                datasets[key] = build_dataset(job.windows, features, horizon=spec.horizon, lookback=spec.lookback)
            outcomes[spec.name] = _train_one(job, spec, datasets[key], outcomes)
        except Exception as error:  # a model's failure is its outcome, never the job's
            outcomes[spec.name] = Outcome(spec.name, job.point, job.reason, error=_describe(error))
    return [outcomes[spec.name] for spec in job.models]


def _train_one(job: TrainingJob, spec: ModelSpec, data: Dataset, done: Mapping[str, Outcome]) -> Outcome:
    if len(data) == 0:
        raise ValueError("no sample has every feature defined and a label yet: more candles are needed")
    calibrate_at, holdout_at = block_boundaries(
        data.sample_times, calibration_fraction=spec.calibration_fraction, holdout_fraction=spec.holdout_fraction
    )
    embargo = spec.embargo * _interval(job.windows)
    blocks = train_calibrate_holdout(
        data.t0, data.t1, calibrate_at=calibrate_at, holdout_at=holdout_at, embargo=embargo
    )
    _check_blocks(data, blocks)
    train, calibrate, holdout = (data.rows(rows) for rows in blocks)
    if spec.stacking:
        inputs = []
        for name in spec.inputs:
            source = done.get(name)
            if source is None or not source.ok or not isinstance(source.model, CalibratedModel):
                raise ValueError(f"its input {name} failed to train: {source.error if source else 'missing'}")
            inputs.append((name, source.version or 0, source.model))
        scores = input_scores(tuple(inputs), _columns(calibrate))
        fitted = fit_meta(spec.params, scores, calibrate.y, model=spec.name)
        model: Predictor = compile_stacked(tuple(inputs), fitted)
    else:
        fitted = fit_calibrated(
            spec.kind,
            spec.params,
            train.X,
            train.y,
            calibrate.X,
            calibrate.y,
            method=spec.calibration,
            model=spec.name,
        )
        model = compile_calibrated(spec.kind, data.features, fitted)
    holdout_columns = _columns(holdout)
    probabilities = predict(model, holdout_columns)
    metrics = scores_of(holdout.y, probabilities)
    incumbent = job.incumbents.get(spec.name)
    incumbent_metrics = None
    incumbent_probabilities = None
    if incumbent is not None:
        incumbent_probabilities = predict(incumbent.model, holdout_columns)
        incumbent_metrics = scores_of(holdout.y, incumbent_probabilities)
    replaces, decision = judge(metrics, incumbent_metrics, spec.replace_tolerance)
    step = max(1, len(train) // REFERENCE_ROWS)
    return Outcome(
        name=spec.name,
        point=job.point,
        reason=job.reason,
        model=model,
        fitted=fitted,
        metrics=metrics,
        incumbent_version=None if incumbent is None else incumbent.version,
        incumbent_metrics=incumbent_metrics,
        replaces=replaces,
        decision=decision,
        window=(int(data.t0[0]), int(data.t0[-1])),
        rows={"train": len(train), "calibrate": len(calibrate), "holdout": len(holdout)},
        fingerprint=data.fingerprint(),
        features=data.features,
        reference={
            "train_features": train.X[::step].astype(np.float32),
            "holdout_features": holdout.X.astype(np.float32),
            "holdout_proba": probabilities,
            "holdout_labels": holdout.y,
            # what the model in use answered on the same holdout: drift's reference when it is kept
            **({} if incumbent_probabilities is None else {"incumbent_holdout_proba": incumbent_probabilities}),
        },
    )


def judge(candidate: Mapping[str, float], incumbent: Mapping[str, float] | None, tolerance: float) -> tuple[bool, str]:
    """Replace only if not worse out of sample: the candidate's holdout log loss at most (1 + tolerance) times the
    incumbent's on the same rows. Returns the verdict and one line that says it with the numbers."""
    loss = candidate["log_loss"]
    if incumbent is None:
        return True, f"no current model; candidate holdout log loss {loss:.5f}"
    bound = incumbent["log_loss"] * (1.0 + tolerance)
    if loss <= bound:
        return True, f"replaces: holdout log loss {loss:.5f} <= {bound:.5f} (current {incumbent['log_loss']:.5f})"
    current = incumbent["log_loss"]
    return False, f"kept the current model: holdout log loss {loss:.5f} > {bound:.5f} (current {current:.5f})"


def scores_of(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Log loss, Brier score, accuracy (at 0.5) and ROC AUC (NaN with one class) of probabilities ``p``."""
    y = np.asarray(y)
    both = len(np.unique(y)) == 2
    return {
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p, pos_label=1)),
        "accuracy": float(accuracy_score(y, (p > 0.5).astype(np.int8))),
        "auc": float(roc_auc_score(y, p)) if both else math.nan,
        "rows": float(len(y)),
    }


def with_version(outcome: Outcome, version: int, inputs: Mapping[str, int] | None = None) -> Outcome:
    """The outcome as stored: its version, and a stacking model's inputs' versions."""
    model = outcome.model
    if isinstance(model, StackedModel) and inputs:
        model = replace(model, inputs=tuple((name, inputs.get(name, v), m) for name, v, m in model.inputs))
    return replace(outcome, version=version, model=model)


def _check_blocks(data: Dataset, blocks: Blocks) -> None:
    for name, rows in zip(("train", "calibrate", "holdout"), blocks, strict=True):
        if len(rows) < MIN_ROWS[name]:
            raise ValueError(
                f"the {name} block has {len(rows)} rows, fewer than {MIN_ROWS[name]}: raise lookback, or lower "
                "horizon and embargo"
            )
        if name != "holdout" and len(np.unique(data.y[rows])) < 2:
            raise ValueError(f"the {name} block has one class only")


def _columns(data: Dataset) -> dict[str, np.ndarray]:
    return {name: data.X[:, j] for j, name in enumerate(data.features)}


def _interval(windows: Sequence[OHLCV]) -> int:
    """The candle interval of the windows (the smallest step seen), ms."""
    steps = [int(np.min(np.diff(w.ts))) for w in windows if len(w) > 1]
    return min(steps) if steps else 0


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 300 else text[:297] + "..."
