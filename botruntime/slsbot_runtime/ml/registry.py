"""The model registry on the runtime's state volume: every model trained, with what it was trained on.

Layout, beside the state file (``<state dir>/models/``)::

    models/<name>/v0001/model.skops      the fitted scikit-learn objects (skops, never pickle)
    models/<name>/v0001/model.json       version, kind, trained_at (the retrain point), training window,
                                         features, horizon, embargo, calibration, params, rows per block,
                                         holdout metrics, the incumbent's metrics and the decision, approved,
                                         data fingerprint, code version, a stacking model's input versions
    models/<name>/v0001/reference.npz    for drift checks: a sample of the training features, the holdout's
                                         features, predictions and labels (numpy, no pickle)
    models/<name>/decisions.jsonl        one line per retrain decision, with its numbers

A version is written to a temporary folder and renamed into place, so a reader never sees half of one.
``approved`` is set when the candidate passed the replace-only-if-not-worse check (``training.judge``); the
runtime loads a pinned version, or the newest approved one.

Loading never runs code from the file: ``load`` first lists the file's types with skops and refuses the file
(``UntrustedModelFile``, naming the types) when any is outside skops' defaults and ``TRUSTED_TYPES``; only then
does it load, with that explicit list.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio

from slsbot_runtime.domain.errors import SlsbotRuntimeError
from slsbot_runtime.ml.builders import compile_calibrated, compile_stacked
from slsbot_runtime.ml.predictors import PREDICTOR_VERSION, CalibratedModel, Predictor
from slsbot_runtime.ml.training import Outcome

#: Types a model file may hold beyond skops' own defaults (numpy, and the scikit-learn estimators it knows): the
#: internals of calibrated boosting, forest and linear models. Anything else refuses the file.
TRUSTED_TYPES = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
)
MODEL_FILE = "model.skops"
META_FILE = "model.json"
REFERENCE_FILE = "reference.npz"
DECISIONS_FILE = "decisions.jsonl"


class UntrustedModelFile(SlsbotRuntimeError):
    """A model file holds a type outside the trusted list: it is not loaded (loading could run its code). The
    model counts as failed until a good version is trained or pinned."""


class ModelNotFound(SlsbotRuntimeError):
    """No such model version in the registry."""


def code_version() -> dict[str, Any]:
    """What produced a model: slsbot, scikit-learn, skops and numpy versions, and the predictor arithmetic's."""

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {
        "slsbot": version("slsbot"),
        "scikit_learn": version("scikit-learn"),
        "skops": version("skops"),
        "numpy": version("numpy"),
        "predictor": PREDICTOR_VERSION,
    }


@dataclass(frozen=True, slots=True)
class DriftReference:
    """What drift checks compare live data with, for one model version."""

    name: str
    version: int
    features: tuple[str, ...]
    train_features: np.ndarray  # (rows, features) float32: every k-th row of the training block
    holdout_features: np.ndarray  # (rows, features) float32
    holdout_predictions: np.ndarray  # P(up) on the holdout
    holdout_labels: np.ndarray
    window: tuple[int, int]  # first and last sample open time, ms


class ModelRegistry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def beside(cls, state_path: str | Path) -> ModelRegistry:
        """The registry of the runtime whose state file is ``state_path``: ``models/`` in the same folder."""
        return cls(Path(state_path).resolve().parent / "models")

    # -- writing ----------------------------------------------------------------------------------------------

    def save(self, outcome: Outcome, *, approved: bool, inputs: Mapping[str, int] | None = None) -> int:
        """Store a trained candidate (approved or not) as the model's next version; returns the version."""
        if outcome.model is None or outcome.fitted is None:
            raise ValueError(f"{outcome.name}: nothing to store, the retrain failed: {outcome.error}")
        folder = self.root / outcome.name
        folder.mkdir(parents=True, exist_ok=True)
        version = (self.versions(outcome.name) or [0])[-1] + 1
        staging = Path(tempfile.mkdtemp(prefix=f".v{version:04d}-", dir=folder))
        try:
            sio.dump(outcome.fitted, staging / MODEL_FILE)
            np.savez(
                staging / REFERENCE_FILE,
                **{key: np.asarray(value) for key, value in outcome.reference.items()},
            )
            meta = {
                "name": outcome.name,
                "version": version,
                "kind": outcome.model.kind,
                "trained_at": _iso(outcome.point),
                "point_ms": outcome.point,
                "reason": outcome.reason,
                "window": {"first_sample": _iso(outcome.window[0]), "last_sample": _iso(outcome.window[1])},
                "window_ms": list(outcome.window),
                "features": list(outcome.features),
                "rows": dict(outcome.rows),
                "metrics": _finite(outcome.metrics),
                "incumbent": None
                if outcome.incumbent_metrics is None
                else {"version": outcome.incumbent_version, "metrics": _finite(outcome.incumbent_metrics)},
                "decision": outcome.decision,
                "approved": approved,
                "data_fingerprint": outcome.fingerprint,
                "code_version": code_version(),
                "inputs": dict(inputs or {}),
                "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "trainer_pid": os.getpid(),
            }
            (staging / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
            os.replace(staging, folder / f"v{version:04d}")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return version

    def record_decision(self, name: str, decision: Mapping[str, Any]) -> None:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / DECISIONS_FILE).open("a") as handle:
            handle.write(json.dumps(_finite(decision), sort_keys=True) + "\n")

    def set_approved(self, name: str, version: int, approved: bool = True) -> None:
        path = self._folder(name, version) / META_FILE
        meta = json.loads(path.read_text())
        meta["approved"] = approved
        staging = path.with_suffix(".json.tmp")
        staging.write_text(json.dumps(meta, indent=1, sort_keys=True))
        os.replace(staging, path)

    # -- reading ----------------------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []

    def versions(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            if child.is_dir() and child.name.startswith("v") and child.name[1:].isdigit():
                found.append(int(child.name[1:]))
        return sorted(found)

    def info(self, name: str, version: int) -> dict[str, Any]:
        return json.loads((self._folder(name, version) / META_FILE).read_text())

    def newest_approved(self, name: str) -> int | None:
        for version in reversed(self.versions(name)):
            if self.info(name, version).get("approved"):
                return version
        return None

    def decisions(self, name: str) -> list[dict[str, Any]]:
        path = self.root / name / DECISIONS_FILE
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def load(self, name: str, version: int) -> Predictor:
        """The compiled model of one version (a stacking model with its inputs' versions)."""
        meta = self.info(name, version)
        fitted = load_trusted(self._folder(name, version) / MODEL_FILE)
        features = tuple(meta["features"])
        if meta["kind"] != "stacking":
            return compile_calibrated(meta["kind"], features, fitted)
        inputs = []
        for input_name, input_version in meta["inputs"].items():
            model = self.load(input_name, int(input_version))
            if not isinstance(model, CalibratedModel):
                raise ValueError(f"{name} v{version}: its input {input_name} is not a calibrated model")
            inputs.append((input_name, int(input_version), model))
        return compile_stacked(tuple(inputs), fitted)

    def drift_reference(self, name: str, version: int | None = None) -> DriftReference:
        return drift_reference(self.root, name, version)

    def _folder(self, name: str, version: int) -> Path:
        folder = self.root / name / f"v{version:04d}"
        if not folder.is_dir():
            raise ModelNotFound(f"model {name} has no version {version} in {self.root}")
        return folder


def load_trusted(path: str | Path) -> Any:
    """A skops file's object, when every type in it is trusted; ``UntrustedModelFile`` naming them otherwise."""
    untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
    if untrusted:
        raise UntrustedModelFile(
            f"{path}: refusing to load types outside the trusted list: {', '.join(untrusted)}; "
            "retrain the model or pin another version"
        )
    return sio.load(path, trusted=list(TRUSTED_TYPES))


def drift_reference(root: str | Path, name: str, version: int | None = None) -> DriftReference:
    """The drift reference of model ``name`` (a version, else the newest approved) in the registry at ``root``:
    a sample of its training features, and its holdout's features, predictions and labels. What a drift check
    (PSI, KS) compares the live features and predictions with."""
    registry = ModelRegistry(root)
    if version is None:
        version = registry.newest_approved(name)
        if version is None:
            raise ModelNotFound(f"model {name} has no approved version in {registry.root}")
    meta = registry.info(name, version)
    with np.load(registry._folder(name, version) / REFERENCE_FILE, allow_pickle=False) as data:
        return DriftReference(
            name=name,
            version=version,
            features=tuple(meta["features"]),
            train_features=data["train_features"],
            holdout_features=data["holdout_features"],
            holdout_predictions=data["holdout_proba"],
            holdout_labels=data["holdout_labels"],
            window=(int(meta["window_ms"][0]), int(meta["window_ms"][1])),
        )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _finite(values: Mapping[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: undefined figures (an AUC with one class) are null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}
