-- Common to slsbot's Argo CD health checks: deploy/argocd/generate.py puts this file before each
-- <group>_<Kind>.lua in argocd-cm, so each key stays one whole script, as Argo CD runs it.
-- Runs as Argo CD runs it: Lua 5.1 with only the base and table libraries (no string library).
local hs = {}

-- The condition of type `kind` in `conditions`, or nil.
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

-- The condition's message, or `fallback` when it has none.
local function said(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

-- What the object waits for while the operator has not reported on its current spec (no status yet, or a status of
-- an older generation), else nil: every kind is Progressing then, so a sync does not count an edited object on the
-- old spec's status.
local function operator_behind()
  if obj.status == nil then
    return "Waiting for the operator to report on the " .. obj.kind
  end
  local generation = obj.metadata.generation
  if generation ~= nil and (obj.status.observedGeneration == nil or obj.status.observedGeneration < generation) then
    return "Waiting for the operator to act on generation " .. generation
  end
  return nil
end

