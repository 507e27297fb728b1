"""The risk manager's persisted state as plain JSON-able data, validated on the way back in.

Only what changes decisions is kept: the last equity (before the first candle, the opening equity), peaks, the
UTC day and its opening equity, tripped breaker levels with their until-timestamps, and each symbol's
volatility windows. The journal and the rule counters are not: they are for people and metrics, and restart
from empty.

Version 2 added the anomaly rule's state (``anomaly``: each symbol's latest score and recent anomalous candles,
and the halt). The migration is additive: a version 1 snapshot is read as one with no anomaly state, which is
what a runtime without an anomaly model has. What ``day_start_equity`` holds was corrected without a new version:
a version 1 snapshot written before the correction holds the equity after the day's first candle, which
restores as that day's opening and is right again from the next 00:00 UTC.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from slsbot_runtime.domain.errors import StateError

SNAPSHOT_VERSION = 2
#: Versions ``parse_snapshot`` reads: each older one differs from the current only by fields that have defaults.
READABLE_VERSIONS = (1, 2)


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrippedLevelSnapshot(_Snapshot):
    level: StrictInt = Field(ge=1, le=3)
    action: str
    tripped_ts: StrictInt
    until_ts: StrictInt


class BreakerSnapshot(_Snapshot):
    peak: float | None = None
    tripped: list[TrippedLevelSnapshot] = Field(default_factory=list)


class SymbolVolatilitySnapshot(_Snapshot):
    last_ts: StrictInt
    last_close: float = Field(gt=0)
    returns: list[float] = Field(default_factory=list)
    history: list[float] = Field(default_factory=list)
    zscore: float | None = None
    halted_until: StrictInt | None = None


class SymbolAnomalySnapshot(_Snapshot):
    ts: StrictInt
    score: float | None = None
    recent: list[StrictInt] = Field(default_factory=list)


class AnomalySnapshot(_Snapshot):
    halted_until: StrictInt | None = None
    tripped_ts: StrictInt | None = None
    tripped_symbol: str | None = None
    symbols: dict[str, SymbolAnomalySnapshot] = Field(default_factory=dict)


class RiskSnapshot(_Snapshot):
    version: StrictInt = SNAPSHOT_VERSION
    ts: StrictInt | None = None
    equity: float | None = None
    peak_equity: float | None = None
    day: StrictInt | None = None
    day_start_equity: float | None = None
    daily_limit_hit: bool = False
    breaker: BreakerSnapshot = Field(default_factory=BreakerSnapshot)
    volatility: dict[str, SymbolVolatilitySnapshot] = Field(default_factory=dict)
    anomaly: AnomalySnapshot = Field(default_factory=AnomalySnapshot)  # since version 2


def parse_snapshot(data: Any) -> RiskSnapshot:
    """The snapshot ``data`` validated; raises StateError naming the first bad field and the fix."""
    if not isinstance(data, dict):
        raise StateError(f"risk snapshot: expected an object as written by RiskManager.snapshot(), got {data!r:.80}")
    try:
        snapshot = RiskSnapshot.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise StateError(
            f"risk snapshot field {where}: {first['msg']}; restore only what RiskManager.snapshot() wrote, "
            "or start without the risk snapshot to rebuild it by replay"
        ) from None
    if snapshot.version not in READABLE_VERSIONS:
        raise StateError(
            f"risk snapshot field version: {snapshot.version} is not one of the supported "
            f"{', '.join(map(str, READABLE_VERSIONS))}; start without the risk snapshot to rebuild it by replay"
        )
    if snapshot.version == 1 and "anomaly" in data:
        raise StateError(
            "risk snapshot field anomaly: a version 1 snapshot has no anomaly state; restore only what "
            "RiskManager.snapshot() wrote, or start without the risk snapshot to rebuild it by replay"
        )
    return snapshot
