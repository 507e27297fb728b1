"""``GET /api/v1/accounts/overview``: per TradingAccount and in total, the equity its Strategies trade with, their
exposure per symbol and in total, today's profit and the open incidents (viewer role).

The figures are the runtimes' own (``/status``: ``equity`` x the allocation in force, ``exposure``,
``total_exposure``, ``pnl_today``), as the supervisor last recorded them for each runtime (on a cluster, asked of each
runtime through its Service; one that does not answer is not counted); they are added up by
``domain.account_risk.account_totals``, the same figures the account risk pass works on.

Open incidents (open or acknowledged) come from the incidents service the app holds (``app.state.incidents``): an
account counts those naming it or one of its Strategies (``services.incidents.open_incidents_by_account``); the total
counts every open incident once.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from slsbot.domain.account_risk import AccountTotals, RuntimeFigures, account_totals
from slsbot.interfaces.admin_api.deps import DataDep, ViewerDep, known_query_parameters
from slsbot.interfaces.admin_api.schemas import error_responses
from slsbot.services.incidents import IncidentService, open_incidents_by_account

router = APIRouter(
    prefix="/api/v1", responses=error_responses(400, 401), dependencies=[Depends(known_query_parameters)]
)


class AccountFigures(BaseModel):
    equity: float = Field(description="What the account's Strategies trade with: each runtime's equity x allocation.")
    exposure: dict[str, float] = Field(description="Per symbol: held and incoming notional, in the quote currency.")
    total_exposure: float
    pnl_today: float = Field(description="Equity change since 00:00 UTC, summed over the runtimes.")
    open_incidents: int | None = Field(
        description="Open or acknowledged incidents naming the account or its Strategies."
    )
    strategies: int
    runtimes_reporting: int = Field(description="Runtimes whose figures are counted (the others report none yet).")

    @classmethod
    def of(cls, totals: AccountTotals, open_incidents: int | None) -> AccountFigures:
        return cls(
            equity=round(totals.equity, 2),
            exposure={s: round(v, 2) for s, v in totals.exposure.items()},
            total_exposure=round(totals.total_exposure, 2),
            pnl_today=round(totals.pnl_today, 2),
            open_incidents=open_incidents,
            strategies=totals.strategies,
            runtimes_reporting=totals.runtimes,
        )


class AccountOverview(AccountFigures):
    namespace: str
    account: str
    risk_policy: str | None = Field(description="The account's RiskPolicy, if it names one.")


class AccountsOverview(BaseModel):
    accounts: list[AccountOverview]
    total: AccountFigures = Field(description="Every account together (figures in each account's quote currency).")


@router.get("/accounts/overview", response_model=AccountsOverview, tags=["accounts"])
async def accounts_overview(request: Request, data: DataDep, _: ViewerDep) -> AccountsOverview:
    """Per TradingAccount and in total: equity, exposure, PnL today and open incidents."""
    strategies = await data.objects("Strategy")
    runtimes = await data.runtime_statuses(strategies)
    figures: dict[tuple[str, str], list[RuntimeFigures | None]] = defaultdict(list)
    strategy_accounts: dict[tuple[str, str], str] = {}
    for row in strategies:
        spec: dict[str, Any] = (row.document or {}).get("spec") or {}
        account = (spec.get("accountRef") or {}).get("name")
        if not account:
            continue
        strategy_accounts[(row.namespace, row.name)] = account
        status = runtimes.get((row.namespace, row.name)) or {}
        figures[(row.namespace, account)].append(RuntimeFigures.from_status(status, spec.get("allocationPercent", 100)))
    policies = {}
    for row in await data.objects("TradingAccount"):
        spec = (row.document or {}).get("spec") or {}
        figures.setdefault((row.namespace, row.name), [])
        policies[(row.namespace, row.name)] = (spec.get("riskPolicyRef") or {}).get("name")
    service: IncidentService | None = getattr(request.app.state, "incidents", None)
    active = await asyncio.to_thread(service.store.active_incidents) if service is not None else None
    by_account = open_incidents_by_account(active, strategy_accounts) if active is not None else None
    accounts = []
    for (namespace, account), items in sorted(figures.items()):
        count = by_account.get((namespace, account), 0) if by_account is not None else None
        accounts.append(
            AccountOverview(
                namespace=namespace,
                account=account,
                risk_policy=policies.get((namespace, account)),
                **AccountFigures.of(account_totals(items), count).model_dump(),
            )
        )
    everything = account_totals([f for items in figures.values() for f in items])
    total_incidents = None if active is None else len(active)
    return AccountsOverview(accounts=accounts, total=AccountFigures.of(everything, total_incidents))
