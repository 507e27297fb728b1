"""Incident signals: what a severity rule (or the healing ladder's Incident rung) raises. Pure.

Only the signal type lives here on this branch (issue 9 contract section 3); the severity rules themselves
(``severity_signals``) are part I's, in this same module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class IncidentSignal:
    cause: str  # dedup key, stable: f"{failure_class or rule}:{namespace}/{object}"
    severity: int  # 1, 2, 3
    rule: str  # CamelCase rule, or "Healing<FailureClass>" when the ladder reached its Incident rung
    namespace: str
    objects: tuple[str, ...]  # "Strategy/btc-trend", "TradingAccount/binance", ...
    message: str  # no secrets
    runbook: str  # "runbooks/<file>.md" that exists
    detected_at: datetime
    actions: tuple[str, ...] = ()  # what was done automatically, e.g. ("CancelOrders","Flatten","Halt")
