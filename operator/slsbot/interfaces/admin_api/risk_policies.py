"""The admin API's RiskPolicy routes: list them with their kill switch (viewer), and set or clear the kill switch
(operator): ``POST /api/v1/riskpolicies/{name}/kill-switch`` with ``{"on": true}`` or ``{"on": false}``.

The kill switch is ``spec.killSwitch``: set, every runtime the policy covers cancels its orders, flattens and halts.
The route calls nothing itself: it sets the flag through the ``AdminData`` port (locally an override over the YAML
spec that survives restarts and edits of the file, as a Strategy's pause; on a cluster a patch of the RiskPolicy's
spec), and the account risk pass pushes it to the runtimes (``services.account_risk``), before any other change.
Audited, refused or not (``app.audit_mutations``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from slsbot.api import RiskPolicy
from slsbot.domain.admin_data import AdminObject
from slsbot.interfaces.admin_api.deps import (
    DataDep,
    Namespace,
    OperatorDep,
    ViewerDep,
    find_object,
    known_query_parameters,
)
from slsbot.interfaces.admin_api.schemas import error_responses

router = APIRouter(
    prefix="/api/v1",
    tags=["riskpolicies"],
    responses=error_responses(400, 401),
    dependencies=[Depends(known_query_parameters)],
)


class RiskPolicyView(BaseModel):
    name: str
    namespace: str
    scope: str = Field(description="strategy, account or global.")
    kill_switch: bool = Field(description="spec.killSwitch in force (locally: the admin override if set).")
    kill_switch_override: bool | None = Field(
        description="Locally: set by POST .../kill-switch, over the YAML spec; None when unset (and on a cluster)."
    )
    phase: str | None = Field(description="The policy's status phase, when its controller wrote one.")

    @classmethod
    def build(cls, row: AdminObject) -> RiskPolicyView:
        policy = row.as_resource()
        assert isinstance(policy, RiskPolicy)
        override = (row.controls_override or {}).get("killSwitch")
        return cls(
            name=row.name,
            namespace=row.namespace,
            scope=str(policy.spec.scope),
            kill_switch=policy.spec.kill_switch,
            kill_switch_override=None if override is None else bool(override),
            phase=(row.status or {}).get("phase"),
        )


class KillSwitchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool = Field(description="true: cancel orders, flatten and halt every bot the policy covers; false: trade.")


def policy_audit_target(request: Request, name: str, namespace: Namespace) -> None:
    """The audit trail's target, known before the token is checked (a refused request names it too)."""
    request.state.audit_target = f"RiskPolicy {namespace or '*'}/{name}"


@router.get("/riskpolicies", response_model=list[RiskPolicyView])
async def list_risk_policies(data: DataDep, _: ViewerDep, namespace: Namespace) -> list[RiskPolicyView]:
    """Every RiskPolicy with its scope and kill switch."""
    return [RiskPolicyView.build(row) for row in await data.objects("RiskPolicy", namespace=namespace)]


@router.post(
    "/riskpolicies/{name}/kill-switch",
    response_model=RiskPolicyView,
    responses=error_responses(400, 403, 404),
    dependencies=[Depends(policy_audit_target)],
)
async def set_kill_switch(
    request: Request, data: DataDep, _: OperatorDep, name: str, body: KillSwitchRequest, namespace: Namespace
) -> RiskPolicyView:
    """Set (``{"on": true}``) or clear (``{"on": false}``) the policy's kill switch (spec.killSwitch). Set, every
    runtime it covers cancels its orders, flattens and halts. Survives restarts; audited."""
    row = await find_object(data, "RiskPolicy", name=name, namespace=namespace)
    request.state.audit_target = f"RiskPolicy {row.namespace}/{row.name}"
    return RiskPolicyView.build(await data.set_kill_switch(row, body.on))
