-- Argo CD health of a slsbot.io/RiskPolicy (argocd-cm key resource.customizations.health.slsbot.io_RiskPolicy).
-- The operator validates a policy: Healthy when valid, Degraded when refused, Progressing until it has looked at the
-- current generation. spec.killSwitch: true (every bot under the policy cancels, flattens and halts until a person
-- turns it off) is Suspended, so the Application shows it and a sync waits at the policy's wave.
-- generate.py puts _common.lua (hs, condition, said, operator_behind) before this script.

local behind = operator_behind()
if behind ~= nil then
  hs.status = "Progressing"
  hs.message = behind
  return hs
end
local status = obj.status

local ready = condition(status.conditions, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to validate the RiskPolicy"
  return hs
end
if ready.status == "True" and obj.spec ~= nil and obj.spec.killSwitch == true then
  hs.status = "Suspended"
  hs.message = "kill switch on: every bot under this policy cancels its orders, flattens and halts; "
    .. "set spec.killSwitch: false to trade again"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = said(ready, "the spec is valid")
  return hs
end
hs.status = "Degraded"
hs.message = said(ready, ready.reason)
return hs
