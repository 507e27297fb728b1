-- Argo CD health of a slsbot.io/RiskPolicy (argocd-cm key resource.customizations.health.slsbot.io_RiskPolicy).
-- The operator validates a policy: Healthy when valid, Degraded when refused, Progressing until it has looked at the
-- current generation. spec.killSwitch: true (every bot under the policy cancels, flattens and halts until a person
-- turns it off) is Suspended, so the Application shows it and a sync waits at the policy's wave.
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
  hs.message = "Waiting for the operator to report on the RiskPolicy"
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
