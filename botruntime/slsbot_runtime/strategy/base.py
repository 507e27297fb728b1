"""The strategy component interface, version 1. The ensemble holds components only through it.

A component is stateful: the runtime feeds it every candle of its symbol in time order, and asks for a
``Signal`` after each. A component that can also compute its signals for a whole history at once overrides
``signals`` so the fast backtest mode can use it; the two must give the same values.

A component that can leave the vote for a while (a model that is missing, failed, stale or drifted) overrides
``in_vote`` (asked after each ``on_candle``) and ``vote_mask`` (its fast-mode twin); while out, its weight is 0.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from slsbot_runtime.domain.types import Candle, Signal
from slsbot_runtime.features.base import OHLCV

INTERFACE_VERSION = 1


class StrategyParams(BaseModel):
    """Base of every component's parameters: unknown names are rejected with the field named."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StrategyComponent(ABC):
    #: Library id used in ``Strategy.spec.ensemble.members[].strategy``.
    id: ClassVar[str]
    #: Interface version the component implements.
    version: ClassVar[int] = INTERFACE_VERSION
    #: The parameter model; its field descriptions are the documentation.
    Params: ClassVar[type[StrategyParams]]
    #: Feature-engine names the component reads from ``features``; the engine may compute only these.
    #: Library components compute their own indicators from the candles and need none.
    required_features: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params = self.Params.model_validate(dict(params or {}))

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Candles needed before the signal means anything."""

    @abstractmethod
    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        """The signal after ``candle`` closed. ``features`` are the feature engine's values at that candle."""

    def signals(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """Vectorized directions for a whole history, or None when the component cannot do it."""
        return None

    def in_vote(self) -> bool:
        """Whether the component's last signal takes part in the vote (its weight is 0 while not)."""
        return True

    def vote_mask(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """``in_vote`` after each candle of ``history`` (bools), or None for always."""
        return None

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """Vectorized ``(directions, confidences)`` for a whole history, or None.

        ``directions[t]`` and ``confidences[t]`` equal the ``Signal`` that ``on_candle`` returns after candle
        t. The default takes ``signals`` with confidence 1 (``Signal``'s default); components whose
        confidence varies override this and derive ``signals`` from it.
        """
        directions = self.signals(history, features)
        if directions is None:
            return None
        return directions, np.ones(len(directions))
