"""Drift of whole models, and the two things monitoring needs from whoever trains them.

A model registry (``slsbot_runtime.ml``, or the anomaly detector for its own forest) gives, per model, a
``ReferenceSample``: the training window's values of each input feature and the model's predictions on its
validation data, tagged with a version that changes at every retrain. It takes retrain requests. Those are the
two Protocols below; ``ModelDriftTracker`` is written against them only.

``ModelDriftTracker.observe(model, features, output)`` is called once per candle with the values the model was
just given and what it answered. The tracker keeps a ``DriftMonitor`` per model over every feature and the output
(series ``output``), and compares it with the new reference when the version changes: the features' live windows
are kept (they do not depend on the model), the output's is emptied (it came from the old model). When the model
turns drifted (a series' PSI above ``ml.driftThreshold``) it calls ``request_retrain(model, reason)`` once for that
version, the reason naming the worst series and its PSI, and not before ``min_live`` candles since the version
began: right after a retrain the live window is mostly inside the new training window, and a regime that the
window still outweighs would otherwise ask for a retrain on every candle.

Drift is therefore either only reported (``drifted``: a series above the threshold, the version not judged yet,
which is all it ever is for a model retrained on schedule more often than every ``min_live`` candles) or acted on
(``early_retrain``: a retrain was asked for it, and the drift has not passed since, through any retrains and
restarts: every series judged and within the threshold, ``DriftMonitor.within``). Only the
second degrades the runtime's health (``engine.health.models_block``): the first is the schedule's to follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from slsbot_runtime.monitoring.drift import LIVE_WINDOW, MIN_LIVE, DriftMonitor, SeriesDrift, load_scipy

OUTPUT = "output"


class ReferenceSample(NamedTuple):
    """What a model was trained and validated on, to compare live values with."""

    version: str  # changes when the model is retrained
    features: Mapping[str, np.ndarray]  # the training window's values of each input feature
    output: np.ndarray | None  # the model's predictions on its validation data; None: its output is not tracked


class ModelReferences(Protocol):
    def reference(self, model: str) -> ReferenceSample | None:
        """The current reference of ``model``; None while it has none (not trained yet)."""
        ...


class RetrainRequester(Protocol):
    def request_retrain(self, model: str, reason: str) -> None:
        """Train ``model`` again before its schedule says so, because of ``reason``."""
        ...


@dataclass(frozen=True, slots=True)
class ModelDrift:
    model: str
    version: str
    drifted: bool
    threshold: float
    series: tuple[SeriesDrift, ...]
    early_retrain: bool = False  # drifted, and a retrain was asked for this drift (which has not passed since)

    def to_json(self) -> dict[str, object]:
        return {
            "drifted": self.drifted,
            "early_retrain": self.early_retrain,
            "threshold": self.threshold,
            "version": self.version,
            "series": [s.to_json() for s in self.series],
        }


def drift_reason(model: str, series: list[SeriesDrift], threshold: float) -> str:
    """``"drift: model anomaly, psi of volume_spike 0.312 > 0.200 (and 1 more series)"``."""
    worst = series[0]
    more = f" (and {len(series) - 1} more series)" if len(series) > 1 else ""
    return f"drift: model {model}, psi of {worst.name} {worst.psi:.3f} > {threshold:.3f}{more}"


class ModelDriftTracker:
    """Drift of each model against its registry's reference; asks for an early retrain when a model drifts."""

    def __init__(
        self,
        references: ModelReferences,
        retrain: RetrainRequester,
        *,
        threshold: float,
        window: int = LIVE_WINDOW,
        min_live: int = MIN_LIVE,
    ) -> None:
        load_scipy()  # at start, not at the first KS test, which a status publish computes in the loop's thread
        self.references = references
        self.retrain = retrain
        self.threshold = threshold
        self.window = window
        self.min_live = min_live
        self._monitors: dict[str, DriftMonitor] = {}
        self._versions: dict[str, str] = {}
        self._requested: dict[str, str] = {}  # model -> the version a retrain was asked for
        self._acted: set[str] = set()  # models asked to retrain for a drift that has not passed since
        self._since: dict[str, int] = {}  # model -> candles observed since its version began

    def observe(
        self, model: str, features: Mapping[str, float], output: float | None = None, *, judged: bool = True
    ) -> bool:
        """Take one candle's inputs and output of ``model``; True when this call asked for a retrain. Not ``judged``:
        a candle from before the version began (a restart replays them): its features go into the live windows (they
        do not depend on the model), but it neither counts towards ``min_live`` nor asks for a retrain."""
        reference = self.references.reference(model)
        if reference is None:
            return False
        monitor = self._monitor(model, reference)
        if output is None:
            monitor.observe(features)
        else:
            monitor.observe({**features, OUTPUT: output})
        if model in self._acted and monitor.within:
            self._acted.discard(model)  # the drift passed: what comes next is judged afresh
        if not judged:
            return False
        self._since[model] += 1
        if not monitor.drifted or self._requested.get(model) == reference.version:
            return False
        if self._since[model] < self.min_live:
            return False  # retrained a moment ago: its training window holds most of the live values
        self._requested[model] = reference.version
        self._acted.add(model)
        self.retrain.request_retrain(model, drift_reason(model, monitor.drifted_series(), self.threshold))
        return True

    def _monitor(self, model: str, reference: ReferenceSample) -> DriftMonitor:
        series = dict(reference.features)
        if reference.output is not None:
            series[OUTPUT] = reference.output
        monitor = self._monitors.get(model)
        if monitor is not None and self._versions[model] == reference.version:
            return monitor
        if monitor is None or set(monitor.names) != set(series):
            monitor = DriftMonitor(series, threshold=self.threshold, window=self.window, min_live=self.min_live)
            self._monitors[model] = monitor
        else:
            for name, values in series.items():
                monitor.set_reference(name, values, keep_live=name != OUTPUT)
        self._versions[model] = reference.version
        self._since[model] = 0
        return monitor

    def refresh(self, model: str) -> None:
        """Compare with the model's current reference now (a registry calls it right after a retrain, so that
        the cost of binning the new reference falls on the retrain, not on the next candle's decision)."""
        reference = self.references.reference(model)
        if reference is not None:
            self._monitor(model, reference)

    def drifted(self, model: str) -> bool:
        monitor = self._monitors.get(model)
        return monitor is not None and monitor.drifted

    def mark_acted(self, model: str) -> None:
        """``model``'s newest retrain was one its drift asked for (a restarted runtime, from its registry): its drift,
        while it lasts, is drift acted on, as it was before the restart."""
        self._acted.add(model)

    def early_retrain(self, model: str) -> bool:
        """Drifted, and a retrain was asked for this drift: the drift outlasted it, or it has not run yet."""
        return model in self._acted and self.drifted(model)

    def report(self, refresh_ks: int = 1) -> dict[str, ModelDrift]:
        """Every tracked model's figures, after bringing the KS test up to date for ``refresh_ks`` series in all."""
        budget = refresh_ks
        out = {}
        for model, monitor in self._monitors.items():
            budget -= monitor.refresh_ks(budget)
            series = tuple(monitor.report())
            out[model] = ModelDrift(
                model,
                self._versions[model],
                monitor.drifted,
                self.threshold,
                series,
                early_retrain=self.early_retrain(model),
            )
        return out
