-- Argo CD health of a slsbot.io/Experiment (argocd-cm key resource.customizations.health.slsbot.io_Experiment).
-- An A/B rollout reads as Argo Rollouts' does: Progressing while it steps, Suspended while spec.paused holds it,
-- Healthy once promoted, Degraded once rolled back or aborted (with why). A tuning run is Progressing while it runs,
-- Healthy once completed with a proposal, Degraded when it failed or when promotion: ab could not create the
-- candidate. A refused spec, or one no controller runs, is Degraded; waiting for a Strategy is Progressing.
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

-- Waiting for something that is on its way: a Strategy not created yet, a variant's runtime starting.
local WAITING = { WaitingForDependency = true, WaitingForRuntime = true }

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report on the Experiment"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on generation " .. generation
  return hs
end

local ready = condition(status.conditions, "Ready")
local progressing = condition(status.conditions, "Progressing")
local promoted = condition(status.conditions, "Promoted")

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to start the Experiment"
  return hs
end
if ready.status ~= "True" then
  if WAITING[ready.reason] then
    hs.status = "Progressing"
  else
    hs.status = "Degraded"
  end
  hs.message = said(ready, ready.reason)
  return hs
end

local phase = status.phase
if obj.spec ~= nil and obj.spec.type == "ab" then
  if phase == "Paused" then
    hs.status = "Suspended"
    hs.message = said(progressing, "paused by spec.paused")
  elseif phase == "Promoted" then
    hs.status = "Healthy"
    hs.message = said(ready, "the candidate was promoted")
  elseif phase == "RolledBack" or phase == "Aborted" then
    -- The candidate has no capital left; the baseline trades on. As an aborted Argo Rollout: Degraded until the
    -- spec changes (a new candidate) or the Experiment is deleted.
    hs.status = "Degraded"
    hs.message = said(progressing, said(ready, phase))
  else
    -- Pending (waiting for both variants' first candles), Progressing (at a step, which the message names), Promoting.
    hs.status = "Progressing"
    hs.message = said(progressing, said(ready, phase))
  end
  return hs
end

-- A tuning Experiment.
if phase == "Completed" then
  if promoted ~= nil and promoted.status == "False" and promoted.reason == "PromotionFailed" then
    hs.status = "Degraded"
    hs.message = said(promoted, promoted.reason)
    return hs
  end
  hs.status = "Healthy"
  hs.message = said(ready, "the run completed")
  return hs
end
-- Pending, Tuning or Finalizing: a run is on its way (a failed run has Ready False, above).
hs.status = "Progressing"
hs.message = said(ready, phase)
return hs
