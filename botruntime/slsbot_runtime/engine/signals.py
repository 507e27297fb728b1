"""The decision side of the loop for one symbol: feature values, then the strategy ensemble.

The loop only needs ``decide(candle) -> SymbolDecision``; ``ComponentDecider`` adapts a single strategy
component (tests, simple bots) and ``EnsembleDecider`` the signal layer's ``Ensemble``. ``AnomalyScoringDecider``
wraps either and adds the anomaly detector's score of the candle, which the loop hands to the risk manager.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import IncrementalFeatures
from slsbot_runtime.monitoring.anomaly import AnomalyMonitor
from slsbot_runtime.strategy.base import StrategyComponent

NO_FEATURES: Mapping[str, float] = {}
_NOTHING = object()  # no decision seen yet


class SymbolDecision(NamedTuple):  # a NamedTuple: immutable and the cheapest to build, once per candle
    direction: float  # [-1, 1]
    confidence: float  # [0, 1]
    driver: str = ""
    anomaly_score: float | None = None  # the anomaly detector's score of this candle, when there is one


class Decider(Protocol):
    #: Whether its decisions may carry the anomaly detector's score (``AnomalyScoringDecider``); the loop hands the
    #: risk manager no score map for a symbol whose decider never has one. Absent means it may.
    scores_anomalies: bool

    def decide(self, candle: Candle) -> SymbolDecision: ...


class ComponentDecider:
    """One strategy component, fed the feature values (if any) of each candle."""

    scores_anomalies = False

    def __init__(self, component: StrategyComponent, features: IncrementalFeatures | None = None) -> None:
        self.component = component
        self.features = features

    def decide(self, candle: Candle) -> SymbolDecision:
        values = self.features.update(candle) if self.features is not None else NO_FEATURES
        signal = self.component.on_candle(candle, values)
        return SymbolDecision(signal.direction, signal.confidence, self.component.id)


class EnsembleDecider:
    """The signal layer's ensemble (anything with ``decide(candle, features)`` returning an object with
    ``direction``, ``confidence`` and ``driver``, not changed once returned). ``prepare(candle)``, when given, sees
    each candle before the ensemble does (the model bank: its members read what it computed for that candle).

    The ensemble may hand out the same decision again (a lone member's no-opinion decision, most candles): the
    answer made of it the last time is given again."""

    scores_anomalies = False

    def __init__(
        self,
        ensemble: Any,
        features: IncrementalFeatures | None = None,
        prepare: Callable[[Candle], None] | None = None,
    ) -> None:
        self.ensemble = ensemble
        self.features = features
        self.prepare = prepare
        self._last_decision: Any = _NOTHING  # the last decision the ensemble gave, and the answer made of it
        self._last_answer = SymbolDecision(0.0, 0.0)

    def decide(self, candle: Candle) -> SymbolDecision:
        if self.prepare is not None:
            self.prepare(candle)
        values = self.features.update(candle) if self.features is not None else NO_FEATURES
        decision = self.ensemble.decide(candle, values)
        if decision is self._last_decision:
            return self._last_answer
        answer = SymbolDecision(float(decision.direction), float(decision.confidence), str(decision.driver))
        self._last_decision, self._last_answer = decision, answer
        return answer


class AnomalyScoringDecider:
    """Another decider's decision with the anomaly detector's score of the same candle (``monitoring.anomaly``).
    Every candle goes through both, replayed ones included, so a restart rebuilds the detector as it was."""

    scores_anomalies = True

    def __init__(self, inner: Decider, monitor: AnomalyMonitor) -> None:
        self.inner = inner
        self.monitor = monitor

    def decide(self, candle: Candle) -> SymbolDecision:
        decision = self.inner.decide(candle)
        score = self.monitor.update(candle)
        return SymbolDecision(decision.direction, decision.confidence, decision.driver, score)
