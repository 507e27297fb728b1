-- Argo CD health of a slsbot.io/TradingAccount (argocd-cm key resource.customizations.health.slsbot.io_TradingAccount).
-- The operator validates an account (its exchange, its credentials reference, its RiskPolicy): Healthy when valid,
-- Progressing while it waits for a dependency or has not looked at the current generation, Degraded when refused.
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
  hs.message = "Waiting for the operator to validate the TradingAccount"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = said(ready, "the spec is valid")
  return hs
end
if ready.reason == "WaitingForDependency" then
  hs.status = "Progressing"
  hs.message = said(ready, ready.reason)
  return hs
end
hs.status = "Degraded"
hs.message = said(ready, ready.reason)
return hs
