"""A test-only model bank that looks ahead on purpose, for the lookahead check to catch.

``WholeHistoryBank`` is the classic leak of a model backtest: in fast mode (``run_batch``) every retrain learns
from the newest candles of the whole history it is given (the end of the backtest) instead of those before its
retrain point, so the model that decides in January was fitted on March. Its step path (``observe``) is the real
bank's: it only ever sees the candles fed so far. It reaches into ``ModelBank``'s fast path (``_retrain_batch``,
``_history_window``), which is what such a leak would change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from slsbot.api import RuntimeConfig
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.ml import bank as bank_module
from slsbot_runtime.ml.bank import ModelBank, Trainer
from slsbot_runtime.ml.wiring import model_specs


class WholeHistoryBank(ModelBank):
    _whole: tuple[OHLCV, ...] = ()

    def run_batch(self, histories: Sequence[OHLCV]) -> None:
        self._whole = tuple(histories)
        super().run_batch(histories)

    def _retrain_batch(self, group, point, windows, reason):  # type: ignore[no-untyped-def]
        after_the_end = [int(np.asarray(h.ts)[-1]) + 1 for h in self._whole]
        newest = tuple(
            bank_module._history_window(h, end, group.history)
            for h, end in zip(self._whole, after_the_end, strict=True)
        )
        return super()._retrain_batch(group, point, newest, reason)


def whole_history_bank(config: RuntimeConfig, symbol: str, trainer_factory: Callable[[], Trainer]) -> ModelBank:
    """A ``lookahead.BankFactory`` building the leaky bank."""
    return WholeHistoryBank(model_specs(config), (symbol,), trainer_factory=trainer_factory, registry=None)
