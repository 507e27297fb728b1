-- Argo CD health of a slsbot.io/TradingAccount (argocd-cm key resource.customizations.health.slsbot.io_TradingAccount).
-- The operator validates an account (its exchange, its credentials reference, its RiskPolicy): Healthy when valid,
-- Progressing while it waits for a dependency or has not looked at the current generation, Degraded when refused.
-- Runs as Argo CD runs it: Lua 5.1 with only the base and table libraries (no string library).
local hs = {}

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function said(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report on the TradingAccount"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on generation " .. generation
  return hs
end

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
