-- Argo CD health of a slsbot.io/Strategy (argocd-cm key resource.customizations.health.slsbot.io_Strategy).
-- Reads the status the operator writes (docs/how-to/argo-cd.md): Healthy once the runtime runs the current spec,
-- Suspended while spec.paused holds it, Degraded with the operator's message when the spec is refused or the
-- runtime fails, Progressing while the operator has not caught up or the runtime starts.
-- generate.py puts _common.lua (hs, condition, said, operator_behind) before this script.

local behind = operator_behind()
if behind ~= nil then
  hs.status = "Progressing"
  hs.message = behind
  return hs
end
local status = obj.status

local ready = condition(status.conditions, "Ready")
local degraded = condition(status.conditions, "Degraded")
local progressing = condition(status.conditions, "Progressing")
local trading = condition(status.conditions, "Trading")

if obj.metadata.deletionTimestamp ~= nil or status.phase == "Terminating" then
  hs.status = "Progressing"
  hs.message = "Being deleted: the runtime drains (spec.onDelete) before it is removed"
  return hs
end
if status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = said(ready, "the spec is refused")
  return hs
end
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = said(degraded, "the runtime is degraded")
  return hs
end
if ready ~= nil and ready.status == "True" then
  if status.phase == "Paused" then
    hs.status = "Suspended"
    hs.message = said(trading, "paused: no new positions are opened")
    return hs
  end
  hs.status = "Healthy"
  hs.message = said(ready, "the runtime runs the current spec")
  if trading ~= nil and trading.status == "False" then
    hs.message = hs.message .. "; not trading now: " .. said(trading, trading.reason)
  end
  return hs
end
-- Pending (waiting for its TradingAccount, RiskPolicy or credentials Secret) or Progressing (its runtime is created,
-- rolled out or starting): the message names what it waits for.
hs.status = "Progressing"
hs.message = said(ready, said(progressing, "Waiting for the runtime to become ready"))
return hs
