"""What the admin API returns. Stored rows use the store's ``*Public`` models; these are the views built here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from slsbot.adapters.store import RuntimeRecord, StoredObject
from slsbot.api import StrategyStatus


class ConditionView(BaseModel):
    type: str
    status: str
    reason: str
    message: str
    last_transition_time: datetime
    observed_generation: int


class StrategyView(BaseModel):
    name: str
    namespace: str
    phase: str = Field(description="Pending, Progressing, Running, Paused, Degraded, Failed or Terminating.")
    conditions: list[ConditionView]
    generation: int
    observed_generation: int
    paused: bool = Field(description="The desired paused flag: the admin override if set, else the YAML spec.")
    paused_override: bool | None = Field(description="Set by POST .../pause and .../resume; None when unset.")
    restarts: int
    pid: int | None = Field(description="The runtime's process id, while it runs.")
    last_heartbeat: datetime | None
    equity: float | None
    open_positions: int | None
    trade_count: int | None
    config_hash: str | None
    deleting: bool

    @classmethod
    def build(cls, row: StoredObject, runtime: RuntimeRecord | None) -> StrategyView:
        status = StrategyStatus.model_validate(row.status or {})
        spec_paused = bool((row.document.get("spec") or {}).get("paused", False))
        running = runtime is not None and runtime.pid is not None
        return cls(
            name=row.name,
            namespace=row.namespace,
            phase=status.phase,
            conditions=[ConditionView(**c.model_dump()) for c in status.conditions],
            generation=row.generation,
            observed_generation=status.observed_generation,
            paused=row.paused_override if row.paused_override is not None else spec_paused,
            paused_override=row.paused_override,
            restarts=runtime.restarts if runtime is not None else status.restarts,
            pid=runtime.pid if running else None,
            last_heartbeat=status.last_heartbeat,
            equity=status.equity,
            open_positions=status.open_positions,
            trade_count=status.trade_count,
            config_hash=status.config_hash,
            deleting=row.deleting,
        )


class OrderView(BaseModel):
    """One order as the runtime reports it (``GET /orders`` of the runtime)."""

    client_order_id: str
    symbol: str
    side: str
    quantity: float
    filled_quantity: float | None = None
    status: str
    created_at: datetime | str | None = None
    updated_at: datetime | str | None = None

    @classmethod
    def from_runtime(cls, item: dict[str, Any]) -> OrderView:
        return cls.model_validate({key: item.get(key) for key in cls.model_fields if key in item})


class HealthView(BaseModel):
    status: str = "ok"
