"""The skops registry: versions with what they were trained on, approval, drift references, and no code run from a
model file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.ml.predictors import StackedModel, predict
from slsbot_runtime.ml.registry import ModelNotFound, ModelRegistry, UntrustedModelFile, drift_reference, load_trusted
from slsbot_runtime.ml.training import Incumbent, ModelSpec, TrainingJob
from slsbot_runtime.ml.worker import complete_job


class Payload:
    """A type no registry trusts: loading it could run whatever its module does."""

    def __init__(self) -> None:
        self.command = "rm -rf /"


@pytest.fixture(scope="module")
def job(btc_2024: OHLCV, eth_2024: OHLCV, model_specs: list[ModelSpec]) -> TrainingJob:
    windows = tuple(h.slice(0, 700) for h in (btc_2024, eth_2024))
    return TrainingJob(int(btc_2024.ts[700]), windows, tuple(model_specs))


def test_every_candidate_is_stored_with_what_it_was_trained_on(tmp_path: Path, job: TrainingJob) -> None:
    registry = ModelRegistry(tmp_path / "models")
    outcomes = complete_job(job, registry)
    assert [o.version for o in outcomes] == [1, 1, 1]
    info = registry.info("stack", 1)
    assert info["inputs"] == {"gbm": 1, "logit": 1}
    info = registry.info("gbm", 1)
    assert info["approved"] is True and info["decision"].startswith("no current model")
    assert info["trained_at"] == "2024-10-13T04:00:00Z" and info["point_ms"] == job.point
    assert info["features"] == list(job.models[0].features)
    assert set(info["metrics"]) >= {"log_loss", "brier", "accuracy", "auc"}
    assert len(info["data_fingerprint"]) == 64 and info["code_version"]["scikit_learn"]
    assert info["rows"]["train"] > 0 and info["window"]["first_sample"] < info["window"]["last_sample"]
    # a loaded version predicts exactly what the trained one did
    columns = {name: np.linspace(-0.01, 0.01, 5) + (50 if name == "rsi_14" else 0) for name in info["features"]}
    for outcome in outcomes:
        loaded = registry.load(outcome.name, 1)
        assert np.array_equal(predict(loaded, columns), predict(outcome.model, columns))
    assert isinstance(registry.load("stack", 1), StackedModel)


def test_versions_count_up_and_only_approved_ones_are_loaded(tmp_path: Path, job: TrainingJob) -> None:
    registry = ModelRegistry(tmp_path / "models")
    first = complete_job(job, registry)
    incumbents = {o.name: Incumbent(o.version, o.model) for o in first}
    second = complete_job(TrainingJob(job.point, job.windows, job.models, incumbents), registry)
    assert [o.version for o in second] == [2, 2, 2]
    # the same data and seed give the same model: not worse, so it replaces (the check is "not worse")
    assert all(o.replaces and o.incumbent_metrics == o.metrics for o in second)
    registry.set_approved("gbm", 2, False)
    assert registry.newest_approved("gbm") == 1
    assert registry.versions("gbm") == [1, 2]
    decisions = registry.decisions("gbm")
    assert [d["version"] for d in decisions] == [1, 2]
    assert decisions[1]["incumbent_version"] == 1 and decisions[1]["replaces"] is True
    with pytest.raises(ModelNotFound):
        registry.load("gbm", 9)


def test_the_drift_reference_holds_training_features_and_holdout_predictions(tmp_path: Path, job: TrainingJob) -> None:
    registry = ModelRegistry(tmp_path / "models")
    complete_job(job, registry)
    reference = drift_reference(registry.root, "logit")
    assert reference.version == 1 and reference.features == job.models[1].features
    assert reference.train_features.shape[1] == len(reference.features)
    assert len(reference.holdout_predictions) == len(reference.holdout_labels) == len(reference.holdout_features)
    assert ((reference.holdout_predictions > 0) & (reference.holdout_predictions < 1)).all()


def test_a_file_with_an_untrusted_type_is_refused_before_loading(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    sio.dump({"model": Payload()}, path)
    with pytest.raises(UntrustedModelFile, match=r"refusing to load types outside the trusted list: .*Payload"):
        load_trusted(path)


def test_a_registry_version_with_an_untrusted_type_fails_to_load(tmp_path: Path, job: TrainingJob) -> None:
    registry = ModelRegistry(tmp_path / "models")
    complete_job(job, registry)
    sio.dump(Payload(), registry.root / "logit" / "v0001" / "model.skops")
    with pytest.raises(UntrustedModelFile):
        registry.load("logit", 1)
    assert json.loads((registry.root / "logit" / "v0001" / "model.json").read_text())["version"] == 1
