-- Argo CD health of a slsbot.io/Experiment (argocd-cm key resource.customizations.health.slsbot.io_Experiment).
-- An A/B rollout reads as Argo Rollouts' does: Progressing while it steps, Suspended while spec.paused holds it,
-- Healthy once promoted, Degraded once rolled back or aborted (with why). A tuning run is Progressing while it runs,
-- Healthy once completed with a proposal, Degraded when it failed or when promotion: ab could not create the
-- candidate. A refused spec, or one no controller runs, is Degraded; waiting for a Strategy is Progressing.
-- generate.py puts _common.lua (hs, condition, said, operator_behind) before this script.

-- Waiting for something that is on its way: a Strategy not created yet, a variant's runtime starting.
local WAITING = { WaitingForDependency = true, WaitingForRuntime = true }

local behind = operator_behind()
if behind ~= nil then
  hs.status = "Progressing"
  hs.message = behind
  return hs
end
local status = obj.status

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
