"""``LiveAccuracy``: how often one signal model's live predictions came true, over its last scored ones.

A model predicts that the close ``horizon`` candles ahead is above this candle's close (``labels``): "up" when it
gives up a probability p above 0.5, "not up" otherwise, the rule its holdout accuracy uses at training
(``training.scores_of``), so the two compare. Each prediction waits, with its candle's close, until the candle
``horizon`` candles later of the same symbol arrives; that close scores it (up when strictly above, as the label).
Candles are counted per symbol, as the labels count them; a candle the model made no prediction on (its features not
defined yet, the model out of the vote) scores nothing later.

The scored predictions of every symbol are pooled in one rolling window of the last ``window``; the accuracy is the
share that came true, reported once at least ``min_scored`` are in it (None before). A new version of the model is
a new model: ``reset`` forgets its window and the predictions still waiting.

Cost: O(1) per prediction and per candle (a deque per symbol holds at most ``horizon`` waiting predictions, and a
running count of hits keeps the share without summing the window). A measurement only: nothing here changes a vote.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

#: Scored predictions the live accuracy is computed over, and the fewest it is reported with (``ml.accuracy``).
DEFAULT_WINDOW = 200
DEFAULT_MIN_SCORED = 50


class LiveAccuracy:
    __slots__ = ("_hits", "_outcomes", "_waiting", "horizon", "min_scored", "window")

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        horizon: int,
        window: int = DEFAULT_WINDOW,
        min_scored: int = DEFAULT_MIN_SCORED,
    ) -> None:
        if horizon < 1:
            raise ValueError(f"horizon: must be at least 1 candle, got {horizon}")
        if not 1 <= min_scored <= window:
            raise ValueError(f"min_scored: must be between 1 and the window ({window}), got {min_scored}")
        self.horizon, self.window, self.min_scored = horizon, window, min_scored
        #: per symbol, the predictions waiting for their outcome: (candle number, close, predicted up)
        self._waiting: dict[str, deque[tuple[int, float, bool]]] = {s: deque() for s in symbols}
        self._outcomes: deque[bool] = deque()
        self._hits = 0

    def candle(self, symbol: str, number: int, close: float) -> bool:
        """Candle ``number`` (counted per symbol) of ``symbol`` closed at ``close``: score the prediction made
        ``horizon`` candles before, if there is one (True when one was). Call it before ``predicted`` for the same
        candle."""
        waiting = self._waiting[symbol]
        due = number - self.horizon
        scored = False
        while waiting and waiting[0][0] <= due:
            made, then, up = waiting.popleft()
            if made == due:
                self._score((close > then) == up)
                scored = True
        return scored

    def predicted(self, symbol: str, number: int, close: float, p: float) -> None:
        """The model gave "up" probability ``p`` on candle ``number`` of ``symbol``, which closed at ``close``."""
        self._waiting[symbol].append((number, close, p > 0.5))

    def _score(self, hit: bool) -> None:
        outcomes = self._outcomes
        if len(outcomes) == self.window:
            self._hits -= outcomes.popleft()
        outcomes.append(hit)
        self._hits += hit

    def reset(self) -> None:
        """A new version is in use: its accuracy is measured from nothing."""
        for waiting in self._waiting.values():
            waiting.clear()
        self._outcomes.clear()
        self._hits = 0

    @property
    def scored(self) -> int:
        """Scored predictions in the window now."""
        return len(self._outcomes)

    @property
    def value(self) -> float | None:
        """The share of the window's predictions that came true; None below ``min_scored``."""
        scored = len(self._outcomes)
        return None if scored < self.min_scored else self._hits / scored
