"""The anomaly rule: no new entry on a candle the anomaly detector finds unusual, and a halt when a symbol keeps
having such candles.

The loop hands the risk manager each candle's anomaly score per symbol (``monitoring.anomaly``: about 0.5 for an
ordinary candle, towards 1 for an unusual one; None while the detector warms up). With the policy's ``anomaly``
section enabled:

* **veto**: an entry on a symbol whose latest score is above ``threshold`` is rejected (rule ``anomaly``);
* **halt**: when a symbol has had ``count`` candles above the threshold within ``window`` (the latest included),
  no entry on any symbol is taken until ``cooldown`` after that candle (rule ``anomaly_halt``); each further
  anomalous candle while the count holds extends it. With ``action: flattenAndHalt`` every position is also
  closed meanwhile (``must_flatten``).

The latest score is kept per symbol whatever the policy says (the runtime's status shows it). The state is part of
the risk snapshot (``AnomalySnapshot``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

from slsbot.api.base import parse_duration
from slsbot.api.riskpolicy import AnomalyAction, AnomalyPolicy
from slsbot_runtime.domain.timeframes import utc_minute
from slsbot_runtime.risk.snapshot import AnomalySnapshot


class AnomalyGuard:
    """Latest score and recent anomalous candles per symbol, and the halt; fed once per candle."""

    def __init__(
        self,
        *,
        enabled: bool,
        threshold: float,
        count: int,
        window_ms: int,
        action: str,
        cooldown_ms: int,
        window_text: str = "",
    ) -> None:
        self.enabled = enabled
        self.threshold = threshold
        self.count = count
        self.window_ms = window_ms
        self.window_text = window_text or f"{window_ms // 1000}s"
        self.action = action
        self.cooldown_ms = cooldown_ms
        self.scores: dict[str, tuple[int, float | None]] = {}  # symbol -> (candle ts, latest score)
        self.recent: dict[str, deque[int]] = {}  # symbol -> open times of its anomalous candles within the window
        self.halted_until: int | None = None
        self.tripped_ts: int | None = None  # the candle that started the current (or last) halt
        self.tripped_symbol: str | None = None
        self.changes = 0  # halts started so far: a reader compares it to see that one started

    @classmethod
    def from_spec(cls, spec: AnomalyPolicy) -> AnomalyGuard:
        return cls(
            enabled=spec.enabled,
            threshold=spec.threshold,
            count=spec.count,
            window_ms=int(parse_duration(spec.window).total_seconds() * 1000),
            action=str(spec.action),
            cooldown_ms=int(parse_duration(spec.cooldown).total_seconds() * 1000),
            window_text=spec.window,
        )

    def observe(self, ts: int, scores: Mapping[str, float | None]) -> None:
        """Take in candle ``ts``'s score of each symbol given (a symbol's candle seen already is not counted again)."""
        for symbol, score in scores.items():
            seen = self.scores.get(symbol)
            if seen is not None and ts <= seen[0]:
                continue
            if score is not None and not math.isfinite(score):
                score = None
            if score is None and seen is None:
                continue  # no detector on this symbol (yet): nothing to keep
            self.scores[symbol] = (ts, score)
            if score is None or not self.enabled or score <= self.threshold:
                continue
            recent = self.recent.get(symbol)
            if recent is None:
                recent = self.recent[symbol] = deque()
            recent.append(ts)
            while recent[0] <= ts - self.window_ms:
                recent.popleft()
            if len(recent) >= self.count:
                if not self.halted_at(ts):
                    self.tripped_ts, self.tripped_symbol = ts, symbol
                    self.changes += 1
                self.halted_until = max(self.halted_until or ts, ts + self.cooldown_ms)

    def score(self, symbol: str) -> float | None:
        seen = self.scores.get(symbol)
        return None if seen is None else seen[1]

    def veto(self, symbol: str) -> str | None:
        """Why an entry on ``symbol`` is refused now by its latest score; None when it is not."""
        seen = self.scores.get(symbol)
        if not self.enabled or seen is None or seen[1] is None or seen[1] <= self.threshold:
            return None
        ts, score = seen
        shown, threshold = _distinct(score, self.threshold)
        return (
            f"anomaly score {shown} of the {utc_minute(ts)} candle on {symbol} is above the {threshold} "
            "threshold (riskPolicy anomaly.threshold): no new entry on this candle"
        )

    def halted_at(self, ts: int) -> bool:
        return self.enabled and self.halted_until is not None and ts < self.halted_until

    def halt_message(self, ts: int) -> str | None:
        """Why entries are halted at ``ts``; None when they are not."""
        if not self.halted_at(ts):
            return None
        assert self.halted_until is not None and self.tripped_ts is not None
        return (
            f"anomaly halt: {self.tripped_symbol} had {self.count} candles scoring above {self.threshold:.3f} "
            f"within {self.window_text} (tripped at {utc_minute(self.tripped_ts)}); no new entries until "
            f"{utc_minute(self.halted_until)} (riskPolicy anomaly: count {self.count}, window {self.window_text}, "
            f"cooldown after the last anomalous candle, action {self.action})"
        )

    def must_flatten(self, ts: int) -> bool:
        return self.action == AnomalyAction.FLATTEN_AND_HALT and self.halted_at(ts)

    def max_score(self) -> float | None:
        """The highest latest score over the symbols (None without any)."""
        values = [score for _, score in self.scores.values() if score is not None]
        return max(values) if values else None

    def snapshot(self) -> dict[str, Any]:
        """The state as ``AnomalySnapshot`` dumps it to JSON."""
        return {
            "halted_until": self.halted_until,
            "tripped_ts": self.tripped_ts,
            "tripped_symbol": self.tripped_symbol,
            "symbols": {
                symbol: {
                    "ts": ts,
                    "score": None if score is None else float(score),
                    "recent": list(self.recent.get(symbol, ())),
                }
                for symbol, (ts, score) in sorted(self.scores.items())
            },
        }

    def restored(self, snapshot: AnomalySnapshot) -> AnomalyGuard:
        """A new guard with this policy and the snapshot's state."""
        guard = AnomalyGuard(
            enabled=self.enabled,
            threshold=self.threshold,
            count=self.count,
            window_ms=self.window_ms,
            action=self.action,
            cooldown_ms=self.cooldown_ms,
            window_text=self.window_text,
        )
        guard.halted_until, guard.tripped_ts = snapshot.halted_until, snapshot.tripped_ts
        guard.tripped_symbol = snapshot.tripped_symbol
        for symbol, item in snapshot.symbols.items():
            guard.scores[symbol] = (item.ts, item.score)
            if item.recent:
                guard.recent[symbol] = deque(item.recent)
        return guard


def _distinct(score: float, threshold: float) -> tuple[str, str]:
    """Both numbers with 3 decimals, or as many more as it takes to tell them apart (0.6003 above 0.6000)."""
    for digits in range(3, 10):
        shown, limit = f"{score:.{digits}f}", f"{threshold:.{digits}f}"
        if shown != limit:
            return shown, limit
    return repr(score), repr(threshold)
