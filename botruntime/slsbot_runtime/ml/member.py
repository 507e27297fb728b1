"""``ModelMember``: a signal model as an ensemble member, through the strategy component interface.

It reads what the runtime's ``ModelBank`` computed for its symbol: in the loop, ``on_candle`` answers the model's
vote after that candle (the bank observed it first); in fast mode, ``signal_arrays`` answers the whole history's
(after ``ModelBank.run_batch``). ``in_vote`` / ``vote_mask`` tell the ensemble when the model is out of the vote
(missing, failed, stale or drifted): its weight is then 0, so the rule-based members decide alone and the
attribution still sums to the net vote.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field

from slsbot_runtime.domain.types import FLAT, Candle, Signal
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.ml.bank import ModelBank
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams


class ModelParams(StrategyParams):
    model: str = Field(description="The ml.models[] entry this member votes for.")


class ModelMember(StrategyComponent):
    id = "ml_model"
    Params = ModelParams

    def __init__(self, bank: ModelBank, symbol: str, model: str) -> None:
        super().__init__({"model": model})
        self.bank = bank
        self.symbol = symbol
        self.model = model

    @property
    def warmup(self) -> int:
        return 0  # the bank's features say when the model has an opinion

    def on_candle(self, candle: Candle, features: Mapping[str, float]) -> Signal:
        direction, confidence = self.bank.signal(self.symbol, self.model)
        if direction == 0.0:
            return FLAT
        return Signal(direction, confidence, self.model)

    def in_vote(self) -> bool:
        return self.bank.in_vote(self.model)

    def signal_arrays(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.bank.has_batch(self.symbol):
            return None
        return self.bank.signal_arrays(self.symbol, self.model)

    def vote_mask(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> np.ndarray | None:
        if not self.bank.has_batch(self.symbol):
            return None
        return self.bank.vote_mask(self.symbol, self.model)
