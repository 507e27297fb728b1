"""What the anomaly detectors show: the ``/status`` keys ``anomaly_score``, ``anomaly_scores`` and ``drift``, and the
matching metrics, built when the loop publishes its status (not per candle).

``drift`` is keyed by model name::

    {"anomaly": {"drifted": false, "threshold": 0.2, "fits": {"first": 1, "schedule": 12},
                 "series": [{"symbol": "BTC/USDT", "name": "volume_spike", "psi": 0.031, "ks_statistic": 0.04,
                             "ks_pvalue": 0.61, "drifted": false, "live": 500}, ...]}}

The KS test is the costly part of drift, so each publish brings it up to date for one series, in turn over the
symbols; PSI and ``drifted`` are always current.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from slsbot_runtime.engine.signals import AnomalyScoringDecider, Decider
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.monitoring.anomaly import AnomalyMonitor

MODEL_DRIFT_INTERVAL_S = 1.0  # the signal models' drift figures in /status are at most this old
ALL_SYMBOLS = "all"  # the metrics' symbol label of a series pooled over the symbols (a signal model's)


class ModelDriftSource(Protocol):
    """The signal models' drift (``ml.bank.ModelBank.drift_status``)."""

    def drift_status(self, refresh_ks: int = 1) -> dict[str, dict[str, Any]]: ...


class MonitoringView:
    """The anomaly monitors behind a loop's deciders, and the signal models' drift, as status figures and metrics."""

    def __init__(
        self,
        deciders: Iterable[Decider],
        metrics: RuntimeMetrics | None = None,
        models: ModelDriftSource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.monitors: list[AnomalyMonitor] = [d.monitor for d in deciders if isinstance(d, AnomalyScoringDecider)]
        self.models = models
        self.metrics = metrics
        self._turn = 0
        self._fits_shown: dict[tuple[str, str], int] = {}
        self._clock = clock
        self._model_drift_at = -math.inf
        self._model_drift_cache: dict[str, dict[str, Any]] = {}

    def _model_drift(self) -> dict[str, dict[str, Any]]:
        """The signal models' drift entries, rebuilt at most every ``MODEL_DRIFT_INTERVAL_S``: hundreds of series
        and a KS test, which a publish every 20 ms would otherwise pay on the candle that triggers it."""
        if self.models is None:
            return {}
        now = self._clock()
        if now - self._model_drift_at >= MODEL_DRIFT_INTERVAL_S:
            self._model_drift_cache = self.models.drift_status(refresh_ks=1)
            self._model_drift_at = now
        return self._model_drift_cache

    def status(self) -> dict[str, Any]:
        """The status keys; empty without an anomaly model or signal models watched for drift (the status then keeps
        its defaults)."""
        monitors = self.monitors
        model_drift = self._model_drift()
        if not monitors and not model_drift:
            return {}
        if not monitors:
            self._turn += 1
            if self.metrics is not None:
                self._export({}, model_drift)
            return {"drift": model_drift}
        refreshing = monitors[self._turn % len(monitors)]
        self._turn += 1
        scores: dict[str, float | None] = {}
        models: dict[str, dict[str, Any]] = {}
        for monitor in monitors:
            figures = monitor.figures(refresh_ks=1 if monitor is refreshing else 0)
            scores[monitor.symbol] = None if figures.score is None else round(figures.score, 6)
            model = monitor.settings.model
            entry = models.setdefault(
                model,
                {
                    "drifted": False,
                    "early_retrain": False,
                    "threshold": monitor.settings.drift_threshold,
                    "fits": {},
                    "series": [],
                },
            )
            for kind, count in monitor.fit_counts.items():
                entry["fits"][kind] = entry["fits"].get(kind, 0) + count
            if figures.drift is not None:
                entry["drifted"] = entry["drifted"] or figures.drift.drifted
                entry["early_retrain"] = entry["early_retrain"] or figures.drift.early_retrain
                entry["series"].extend({"symbol": monitor.symbol, **s.to_json()} for s in figures.drift.series)
        models.update(model_drift)
        if self.metrics is not None:
            self._export(scores, models)
        known = [score for score in scores.values() if score is not None]
        return {"anomaly_score": max(known) if known else None, "anomaly_scores": scores, "drift": models}

    def _export(self, scores: dict[str, float | None], models: dict[str, dict[str, Any]]) -> None:
        metrics = self.metrics
        assert metrics is not None
        for symbol, score in scores.items():
            if score is not None:
                metrics.anomaly_score.labels(symbol).set(score)
        for model, entry in models.items():
            metrics.model_drifted.labels(model).set(1 if entry["drifted"] else 0)
            for series in entry["series"]:
                if series["psi"] is not None:
                    symbol = series.get("symbol") or ALL_SYMBOLS
                    metrics.drift_psi.labels(model, symbol, series["name"]).set(series["psi"])
            for kind, count in entry.get("fits", {}).items():
                shown = self._fits_shown.get((model, kind), 0)
                if count > shown:
                    metrics.model_fits.labels(model, kind).inc(count - shown)
                    self._fits_shown[(model, kind)] = count
