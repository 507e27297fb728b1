"""``spec.ml``: the model fields' defaults and the errors that name the field to fix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from slsbot.api.strategy import Ensemble, MLModel, MLSettings, check_model_members


def _model(**fields: object) -> dict[str, object]:
    return {"name": "gbm", "kind": "gradientBoosting", **fields}


def test_defaults_are_a_daily_retrain_on_the_next_candle_sign() -> None:
    model = MLModel.model_validate(_model())
    assert (model.horizon, model.embargo, model.calibration, model.vote) == (1, 1, "sigmoid", True)
    assert model.retrain_every_ms == 86_400_000
    assert model.stale_after_ms == 3 * 86_400_000
    assert MLSettings().worker.memory_mib == 2048


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "stacking"}, "ml.models[gbm].inputs: a stacking model combines at least two"),
        ({"inputs": ["a", "b"]}, "ml.models[gbm].inputs: only a stacking model has inputs"),
        ({"kind": "isolationForest"}, "ml.models[gbm].kind: isolationForest is an anomaly model"),
        ({"holdoutFraction": 0.45, "calibrationFraction": 0.4}, "ml.models[gbm].holdoutFraction"),
        ({"retrainEvery": "10s"}, "ml.models[gbm].retrainEvery"),
    ],
)
def test_inconsistent_model_names_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        MLModel.model_validate(_model(**fields))


def test_anomaly_role_keeps_the_isolation_forest() -> None:
    model = MLModel.model_validate(_model(kind="isolationForest", role="anomaly"))
    assert model.role == "anomaly"


def test_stacking_inputs_must_be_signal_models_on_the_same_schedule() -> None:
    base = [_model(name="a"), _model(name="b", kind="randomForest")]
    MLSettings.model_validate({"models": [*base, _model(name="s", kind="stacking", inputs=["a", "b"])]})
    with pytest.raises(ValidationError, match=r"ml.models\[s\].inputs: 'zz' is not"):
        MLSettings.model_validate({"models": [*base, _model(name="s", kind="stacking", inputs=["a", "zz"])]})
    other = [_model(name="a"), _model(name="b", kind="randomForest", horizon=4)]
    with pytest.raises(ValidationError, match=r"ml.models\[s\].inputs: b has another horizon"):
        MLSettings.model_validate({"models": [*other, _model(name="s", kind="stacking", inputs=["a", "b"])]})


def test_a_voting_model_may_not_take_a_member_name() -> None:
    ensemble = Ensemble.model_validate({"members": [{"name": "gbm", "strategy": "sma_cross"}]})
    with pytest.raises(ValueError, match=r"ml.models\[gbm\].name: an ensemble member has that name"):
        check_model_members(ensemble, MLSettings.model_validate({"models": [_model()]}))
    check_model_members(ensemble, MLSettings.model_validate({"models": [_model(vote=False)]}))


def test_live_accuracy_window_and_minimum() -> None:
    assert (MLSettings().accuracy.window, MLSettings().accuracy.min_scored) == (200, 50)
    settings = MLSettings.model_validate({"accuracy": {"window": 40, "minScored": 40}})
    assert (settings.accuracy.window, settings.accuracy.min_scored) == (40, 40)
    with pytest.raises(ValidationError, match=r"ml.accuracy.minScored: 60 is more than the window holds \(40\)"):
        MLSettings.model_validate({"accuracy": {"window": 40, "minScored": 60}})
    with pytest.raises(ValidationError, match="window"):
        MLSettings.model_validate({"accuracy": {"window": 5}})
