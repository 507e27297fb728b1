"""``GET /api/v1/fleet``: every bot (Strategy) at a glance, the Control Center's first view (viewer role): its phase,
equity, PnL today, drawdown, exposure, open incidents, circuit breaker and kill switch.

The figures are the Strategy's status (what its controller copied from the runtime) and the runtime's last
``/status`` (``pnl_today``, ``total_exposure``, ``breaker_level``, ``trading_mode``), as the supervisor last recorded
it (on a cluster, asked of each runtime through its Service; one that does not answer shows none). The kill switch is
that of the RiskPolicy the bot's TradingAccount names. Open incidents (open or acknowledged) are those naming the
Strategy, and those about its whole TradingAccount (naming the account and no Strategy).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from slsbot.api import RiskPolicy
from slsbot.domain.incidents import Incident
from slsbot.interfaces.admin_api.deps import DataDep, ViewerDep, known_query_parameters
from slsbot.interfaces.admin_api.schemas import StrategyView, error_responses
from slsbot.services.incidents import IncidentService

router = APIRouter(
    prefix="/api/v1", responses=error_responses(400, 401), dependencies=[Depends(known_query_parameters)]
)


class FleetBot(BaseModel):
    name: str
    namespace: str
    phase: str
    ready: str
    paused: bool
    account: str
    risk_policy: str | None = Field(description="The RiskPolicy the bot's TradingAccount names, if any.")
    kill_switch: bool = Field(description="Whether that RiskPolicy's kill switch is set.")
    equity: float | None
    return_percent: float | None
    pnl_today: float | None = Field(description="Equity change since 00:00 UTC, from the runtime's last /status.")
    drawdown_percent: float | None
    max_drawdown_percent: float | None
    exposure: float | None = Field(description="Held and incoming notional over every symbol, quote currency.")
    open_incidents: int | None = Field(description="Open or acknowledged incidents naming the bot or its account.")
    breaker_level: int | None = Field(description="The highest tripped circuit-breaker level (0: none).")
    trading_mode: str | None = Field(description="normal, safe or halted, as the runtime last said.")
    idle_reason: str | None
    trade_count: int | None
    last_heartbeat: datetime | None


class FleetView(BaseModel):
    bots: list[FleetBot]


def incidents_per_bot(
    incidents: Iterable[Incident], accounts: Mapping[tuple[str, str], str]
) -> dict[tuple[str, str], int]:
    """(namespace, strategy) -> its active incidents, each counted once: those naming it, and those naming its
    TradingAccount but no Strategy (about the whole account). One about another Strategy of the same account is that
    Strategy's, even when it names the account too."""
    counts: dict[tuple[str, str], int] = {}
    for incident in incidents:
        named = set(incident.spec.objects)
        about_strategies = any(item.startswith("Strategy/") for item in named)
        for (namespace, strategy), account in accounts.items():
            if namespace != incident.namespace:
                continue
            if f"Strategy/{strategy}" in named or (not about_strategies and f"TradingAccount/{account}" in named):
                counts[(namespace, strategy)] = counts.get((namespace, strategy), 0) + 1
    return counts


def _number(status: Mapping[str, Any], key: str) -> float | None:
    value = status.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@router.get("/fleet", response_model=FleetView, tags=["strategies"])
async def fleet(request: Request, data: DataDep, _: ViewerDep) -> FleetView:
    """Every bot with its phase, equity, PnL today, drawdown, exposure, open incidents, breaker and kill switch."""
    strategies = await data.objects("Strategy")
    runtimes = await data.runtimes(strategies)
    statuses = await data.runtime_statuses(strategies)
    policy_of_account = {
        (row.namespace, row.name): ((row.document.get("spec") or {}).get("riskPolicyRef") or {}).get("name")
        for row in await data.objects("TradingAccount")
    }
    killed: dict[tuple[str, str], bool] = {}
    for row in await data.objects("RiskPolicy"):
        policy = row.as_resource()
        killed[(row.namespace, row.name)] = isinstance(policy, RiskPolicy) and policy.spec.kill_switch
    accounts = {
        (row.namespace, row.name): str(((row.document.get("spec") or {}).get("accountRef") or {}).get("name", ""))
        for row in strategies
    }
    service: IncidentService | None = getattr(request.app.state, "incidents", None)
    active = await asyncio.to_thread(service.store.active_incidents) if service is not None else None
    per_bot = incidents_per_bot(active, accounts) if active is not None else None
    bots = []
    for row in strategies:
        key = (row.namespace, row.name)
        view = StrategyView.build(row, runtimes.get(key))
        status = statuses.get(key) or {}
        policy = policy_of_account.get((row.namespace, accounts[key]))
        level = status.get("breaker_level")
        bots.append(
            FleetBot(
                name=row.name,
                namespace=row.namespace,
                phase=view.phase,
                ready=view.ready,
                paused=view.paused,
                account=accounts[key],
                risk_policy=policy,
                kill_switch=killed.get((row.namespace, policy), False) if policy else False,
                equity=view.equity,
                return_percent=view.return_percent,
                pnl_today=_number(status, "pnl_today"),
                drawdown_percent=view.drawdown_percent,
                max_drawdown_percent=view.max_drawdown_percent,
                exposure=_number(status, "total_exposure"),
                open_incidents=per_bot.get(key, 0) if per_bot is not None else None,
                breaker_level=level if isinstance(level, int) and not isinstance(level, bool) else None,
                trading_mode=status.get("trading_mode") if isinstance(status.get("trading_mode"), str) else None,
                idle_reason=view.idle_reason,
                trade_count=view.trade_count,
                last_heartbeat=view.last_heartbeat,
            )
        )
    return FleetView(bots=bots)
