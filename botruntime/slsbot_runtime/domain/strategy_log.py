"""``StrategyLog``: a logger whose every line starts with the strategy it is about (``default/btc-trend: ...``).

The bot's activity (orders sent, fills, cancels, refused entries, breaker changes, shutdown) is logged at INFO, one
line per event, by the module that sees it. A runtime is one strategy, but its log is read next to others (the
local supervisor's folder, a cluster's log store): every line names the strategy. The prefix is only built when
the line is written (``LoggerAdapter`` checks ``isEnabledFor`` first), so a backtest, which does not log at INFO,
pays one level check per event and formats nothing. Never pass a secret to it.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any


class StrategyLog(logging.LoggerAdapter[logging.Logger]):
    def __init__(self, logger: logging.Logger, strategy_key: str) -> None:
        super().__init__(logger, {"strategy": strategy_key})
        self.strategy_key = strategy_key

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return f"{self.strategy_key}: {msg}", kwargs
