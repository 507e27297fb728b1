"""ModelDriftTracker against a model registry that implements the two Protocols of ``monitoring.model_drift``."""

from __future__ import annotations

import numpy as np

from slsbot_runtime.monitoring.model_drift import (
    OUTPUT,
    ModelDriftTracker,
    ModelReferences,
    ReferenceSample,
    RetrainRequester,
)


class Registry:
    """The smallest registry: a reference per model, and the retrain requests it was sent."""

    def __init__(self) -> None:
        self.references: dict[str, ReferenceSample] = {}
        self.requests: list[tuple[str, str]] = []

    def reference(self, model: str) -> ReferenceSample | None:
        return self.references.get(model)

    def request_retrain(self, model: str, reason: str) -> None:
        self.requests.append((model, reason))


def sample(version: str, rng: np.random.Generator, mean: float = 0.0) -> ReferenceSample:
    return ReferenceSample(version, {"rsi_14": rng.normal(mean, 1.0, 2000)}, rng.normal(mean, 1.0, 1000))


def test_the_registry_satisfies_the_protocols() -> None:
    registry: ModelReferences = Registry()
    requester: RetrainRequester = Registry()
    assert registry.reference("x") is None and requester.request_retrain("x", "why") is None


def test_a_drifted_model_asks_for_one_retrain_per_version_naming_the_worst_series() -> None:
    rng = np.random.default_rng(1)
    registry = Registry()
    tracker = ModelDriftTracker(registry, registry, threshold=0.2, window=400, min_live=300)
    assert tracker.observe("rf", {"rsi_14": 0.0}, 0.0) is False  # no reference yet: nothing tracked
    registry.references["rf"] = sample("v1", rng)
    asked = [tracker.observe("rf", {"rsi_14": float(x)}, float(y)) for x, y in rng.normal(0, 1, (600, 2))]
    assert not any(asked) and registry.requests == []  # the same distribution: no drift
    asked = [tracker.observe("rf", {"rsi_14": float(x)}, float(y)) for x, y in rng.normal([0, 1.5], 1, (600, 2))]
    assert asked.count(True) == 1  # the output moved; asked once for this version, not once per candle
    [(model, reason)] = registry.requests
    assert model == "rf" and reason.startswith(f"drift: model rf, psi of {OUTPUT} ") and "> 0.200" in reason
    report = tracker.report(refresh_ks=10)["rf"]
    assert report.drifted and report.version == "v1"
    assert {s.name: s.drifted for s in report.series} == {"rsi_14": False, OUTPUT: True}
    assert all(s.ks_pvalue is not None for s in report.series)


def tracking_v1(seed: int) -> tuple[np.random.Generator, Registry, ModelDriftTracker]:
    """Model rf at version v1 (its reference centred on 0), tracked with a live window of 400 and min_live 300."""
    rng = np.random.default_rng(seed)
    registry = Registry()
    registry.references["rf"] = sample("v1", rng)
    return rng, registry, ModelDriftTracker(registry, registry, threshold=0.2, window=400, min_live=300)


def feed(tracker: ModelDriftTracker, values: np.ndarray) -> None:
    """Candles whose one feature and output are both ``values``."""
    for x in values:
        tracker.observe("rf", {"rsi_14": float(x)}, float(x))


def test_a_new_version_keeps_the_inputs_live_window_and_waits_min_live_candles_before_asking_again() -> None:
    rng, registry, tracker = tracking_v1(2)
    feed(tracker, rng.normal(2.0, 1.0, 400))
    assert tracker.drifted("rf") and len(registry.requests) == 1
    # retrained on a window that the old regime still outweighs: the live values still look drifted against it
    registry.references["rf"] = ReferenceSample("v2", {"rsi_14": rng.normal(0.5, 1.0, 2000)}, rng.normal(2, 1, 500))
    tracker.observe("rf", {"rsi_14": 2.0}, 2.0)
    assert {s.name: s.live for s in tracker.report()["rf"].series} == {"rsi_14": 400, OUTPUT: 1}
    feed(tracker, rng.normal(2.0, 1.0, 297))
    assert tracker.drifted("rf") and len(registry.requests) == 1  # drifted, but not asked again on every candle
    assert tracker.observe("rf", {"rsi_14": 2.0}, 2.0) is False
    assert tracker.observe("rf", {"rsi_14": 2.0}, 2.0) is True  # min_live candles since v2 began
    assert [r[0] for r in registry.requests] == ["rf", "rf"]


def test_drift_is_acted_on_once_judged_and_until_it_passes_through_retrains_and_only_reported_before() -> None:
    rng, registry, tracker = tracking_v1(3)
    feed(tracker, rng.normal(0.0, 1.0, 300))
    assert not tracker.drifted("rf")
    # a retrain on schedule (v2), then the market moves: the inputs' live window (kept across versions) drifts
    # before v2 has made min_live predictions, so the drift is reported and not judged
    registry.references["rf"] = ReferenceSample("v2", {"rsi_14": rng.normal(0.0, 1.0, 2000)}, rng.normal(0, 1, 500))
    feed(tracker, rng.normal(2.0, 1.0, 299))
    report = tracker.report()["rf"]
    assert report.drifted and not report.early_retrain and not tracker.early_retrain("rf")
    assert report.to_json()["early_retrain"] is False and registry.requests == []
    assert tracker.observe("rf", {"rsi_14": 2.0}, 2.0) is True  # judged at v2's min_live-th candle: acted on
    assert tracker.early_retrain("rf") and tracker.report()["rf"].to_json()["early_retrain"] is True
    # the early retrain (v3) does not end the drift: it outlasts it, still acted on
    registry.references["rf"] = ReferenceSample("v3", {"rsi_14": rng.normal(0.5, 1.0, 2000)}, rng.normal(2, 1, 500))
    tracker.observe("rf", {"rsi_14": 2.0}, 2.0)
    assert tracker.drifted("rf") and tracker.early_retrain("rf")
    # a version trained on the new regime: the drift passes, and with it the early retrain's hold
    registry.references["rf"] = ReferenceSample("v4", {"rsi_14": rng.normal(2.0, 1.0, 2000)}, rng.normal(2, 1, 500))
    feed(tracker, rng.normal(2.0, 1.0, 100))  # the last of the calm values leave the live window
    assert not tracker.drifted("rf") and not tracker.early_retrain("rf")
    assert tracker.report()["rf"].early_retrain is False


def test_a_drift_acted_on_lasts_while_a_series_is_too_young_to_judge_and_a_restart_can_mark_it() -> None:
    rng, registry, tracker = tracking_v1(4)
    tracker.mark_acted("rf")  # a restarted runtime whose newest retrain its drift asked for
    feed(tracker, rng.normal(2.0, 1.0, 299))  # too few live values to judge: neither drifted nor within
    assert not tracker.drifted("rf") and not tracker.early_retrain("rf")
    feed(tracker, rng.normal(2.0, 1.0, 2))
    assert tracker.drifted("rf") and tracker.early_retrain("rf")  # judged: the drift is the one acted on
    # a new version: the output's window starts empty, the input's still drifts: acted on
    registry.references["rf"] = ReferenceSample("v2", {"rsi_14": rng.normal(0.0, 1.0, 2000)}, rng.normal(2, 1, 500))
    feed(tracker, rng.normal(2.0, 1.0, 1))
    assert tracker.early_retrain("rf")
    # one trained on the new regime: the input is within at once, the output not judged yet: not drifted, and the
    # hold stays until every series is judged within the threshold
    registry.references["rf"] = ReferenceSample("v3", {"rsi_14": rng.normal(2.0, 1.0, 2000)}, rng.normal(9, 1, 500))
    feed(tracker, rng.normal(2.0, 1.0, 1))
    assert not tracker.drifted("rf") and not tracker.early_retrain("rf")
    feed(tracker, rng.normal(2.0, 1.0, 299))
    assert tracker.drifted("rf") and tracker.early_retrain("rf")  # its output judged: drifted (and asked again)
