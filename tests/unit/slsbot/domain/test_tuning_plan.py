"""plan_tuning, the tuning controller's decision: every branch, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slsbot.api import Experiment, ExperimentStatus, RuntimeAccount, RuntimeConfig, Strategy
from slsbot.api.experiment import Acceptance, TuningProposal, TuningStatus
from slsbot.domain.conditions import READY, get_condition
from slsbot.domain.tuning_plan import (
    COMPLETED,
    FAILED,
    FINALIZING,
    PROMOTED,
    PROPOSAL_ACCEPTED,
    TUNING,
    FinalizeState,
    ObservedFinalize,
    ObservedTuning,
    ObservedWorkers,
    StudySummary,
    TuningActionKind,
    TuningDesired,
    TuningPolicy,
    candidate_name,
    cron_problem,
    judge_proposal,
    next_run_time,
    object_name,
    plan_fingerprint,
    plan_tuning,
    promotion_objects,
    render_plan,
    run_phase,
    study_name,
)

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
RESULT = {
    "proposal": {"trial": 7, "params": {"sma.fast": 12, "sma.slow": 40}, "inSampleValues": [1.4], "rule": "best"},
    "outOfSample": {"sharpe": 0.9, "totalReturnPct": 12.0},
    "buyAndHold": {"sharpe": 0.5},
    "dsr": 0.97,
    "deflatedSharpe": {"sharpe": 1.1, "trials": 20},
    "pbo": 0.2,
    "trialsCounted": 20,
}


def strategy(fast: int = 10) -> Strategy:
    return Strategy.model_validate(
        {
            "metadata": {"name": "btc-trend", "namespace": "default"},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "ensemble": {
                    "members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": fast, "slow": 30}}]
                },
            },
        }
    )


def experiment(status: ExperimentStatus | None = None, *, generation: int = 1, **spec: Any) -> Experiment:
    body = {
        "type": "tuning",
        "strategyRef": {"name": "btc-trend"},
        "searchSpace": [{"name": "sma.fast", "type": "int", "low": 5, "high": 20}],
        "budget": {"maxTrials": 20, "maxDuration": "1h", "parallelism": 2},
        **spec,
    }
    return Experiment.model_validate(
        {
            "metadata": {"name": "btc-tuning", "namespace": "default", "generation": generation, "uid": "u-1"},
            "spec": body,
            "status": status.to_wire() if status is not None else None,
        }
    )


def base(fast: int = 10) -> RuntimeConfig:
    s = strategy(fast)
    return RuntimeConfig(
        name=s.name,
        account=RuntimeAccount(name="paper", exchange="binance"),
        symbols=s.spec.symbols,
        ensemble=s.spec.ensemble,
    )


def desired(exp: Experiment, fast: int = 10) -> TuningDesired:
    return TuningDesired(experiment=exp, strategy=strategy(fast), base=base(fast), data_dir="/data/market")


def decide(exp: Experiment, observed: ObservedTuning | None = None, *, now: datetime = T0, fast: int = 10, **kw: Any):
    return plan_tuning(
        desired(exp, fast), observed or ObservedTuning(), status=exp.status or ExperimentStatus(), now=now, **kw
    )


def advance(exp: Experiment, decision, *, generation: int | None = None) -> Experiment:
    """The Experiment as the next pass sees it: with the status this decision wrote."""
    status = decision.status.model_copy(update={"observed_generation": exp.metadata.generation})
    return experiment(
        status,
        generation=generation or exp.metadata.generation,
        **exp.spec.model_dump(by_alias=True, exclude_none=True, exclude={"type", "strategy_ref", "search_space"}),
        searchSpace=[p.to_wire() for p in exp.spec.search_space],
    )


def started(**spec: Any) -> Experiment:
    exp = experiment(**spec)
    return advance(exp, decide(exp))


def kinds(decision) -> list[TuningActionKind]:
    return [a.kind for a in decision.actions]


def study(finished: int, running: int = 0) -> StudySummary:
    return StudySummary(complete=finished, running=running, best_value=1.2, best_params={"sma.fast": 12})


# --- the plan ------------------------------------------------------------------------------------------------


def test_the_plan_carries_what_the_engine_reads_in_its_wire_names():
    exp = experiment(
        secondObjective={"metric": "maxDrawdown", "direction": "minimize"}, history={"end": "2024-12-01T00:00:00Z"}
    )
    plan = render_plan(desired(exp), run=1, started_at=T0)
    assert plan["searchSpace"] == [{"name": "sma.fast", "type": "int", "low": 5.0, "high": 20.0, "log": False}]
    assert [o["metric"] for o in plan["objectives"]] == ["sharpe", "maxDrawdown"]
    assert plan["pruning"] is False  # two objectives: Optuna cannot prune
    assert plan["deadline"] == "2026-01-05T13:00:00Z"
    assert plan["windowEnd"] == "2024-12-01T00:00:00Z"
    assert plan["maxTrials"] == 20 and plan["dataDir"] == "/data/market"
    assert plan["base"]["ensemble"]["members"][0]["params"] == {"fast": 10, "slow": 30}
    assert plan["walkForward"] == {"trainDays": 90, "testDays": 30, "folds": 4}
    assert plan["acceptance"] == {"minDeflatedSharpe": 0.95, "maxPbo": 0.5}


def test_a_plan_is_a_function_of_its_inputs_and_its_fingerprint_ignores_the_run():
    exp = experiment()
    first = render_plan(desired(exp), run=1, started_at=T0)
    assert render_plan(desired(exp), run=1, started_at=T0) == first
    later = render_plan(desired(exp), run=2, started_at=T0 + timedelta(days=7))
    assert later["seed"] != first["seed"] and later["deadline"] != first["deadline"]
    assert plan_fingerprint(later) == plan_fingerprint(first)
    stricter = render_plan(desired(experiment(acceptance={"maxPbo": 0.1})), run=1, started_at=T0)
    assert plan_fingerprint(stricter) == plan_fingerprint(first)  # thresholds judge the result, not the trials
    other = render_plan(desired(exp, fast=11), run=1, started_at=T0)
    assert plan_fingerprint(other) != plan_fingerprint(first)
    assert study_name("default", "btc-tuning", 1, "abcd1234") == "default.btc-tuning.r1-abcd1234"


# --- starting ---------------------------------------------------------------------------------------------------


def test_the_first_pass_starts_run_one_with_parallelism_workers():
    decision = decide(experiment())
    assert kinds(decision) == [TuningActionKind.START_WORKERS]
    action = decision.actions[0]
    assert action.count == 2 and action.run.run == 1 and action.run.parallelism == 2
    tuning = decision.status.tuning
    assert tuning.run == 1 and tuning.run_started_at == T0 and tuning.study == action.run.study
    assert tuning.study.startswith("default.btc-tuning.r1-")
    assert decision.status.phase == TUNING
    assert [e.reason for e in decision.events] == ["TuningStarted"]
    assert get_condition(decision.status.conditions, READY).reason == "Tuning"


# --- tuning -----------------------------------------------------------------------------------------------------


def test_while_workers_run_it_reports_the_study_and_looks_again_soon():
    exp = started()
    decision = decide(
        exp, ObservedTuning(study(7, running=2), ObservedWorkers(running=2)), now=T0 + timedelta(minutes=5)
    )
    assert decision.actions == [] and decision.events == []
    assert decision.status.phase == TUNING
    trials = decision.status.tuning.trials
    assert (trials.complete, trials.running) == (7, 2)
    assert decision.status.tuning.best_value == 1.2 and decision.status.tuning.best_params == {"sma.fast": 12}
    assert decision.requeue_after == TuningPolicy().poll
    assert "7 of 20 trials" in get_condition(decision.status.conditions, READY).message


def test_workers_that_are_gone_are_started_again_while_the_study_is_not_done():
    exp = started()
    one_left = decide(exp, ObservedTuning(study(3), ObservedWorkers(running=1)), now=T0 + timedelta(minutes=1))
    assert kinds(one_left) == [TuningActionKind.START_WORKERS] and one_left.actions[0].count == 1
    none_left = decide(exp, ObservedTuning(study(3), ObservedWorkers()), now=T0 + timedelta(minutes=1))
    assert kinds(none_left) == [TuningActionKind.START_WORKERS] and none_left.actions[0].count == 2
    assert none_left.actions[0].run.study == exp.status.tuning.study  # the same study: it resumes


def test_a_backend_that_restarts_its_workers_is_left_to_it():
    exp = started()
    job = ObservedWorkers(running=1, failed=1, restarts_itself=True, present=True)
    assert decide(exp, ObservedTuning(study(3), job), now=T0 + timedelta(minutes=1)).actions == []
    pending = ObservedWorkers(restarts_itself=True, present=True)
    assert decide(exp, ObservedTuning(study(3), pending), now=T0 + timedelta(minutes=1)).actions == []
    gone = ObservedWorkers(restarts_itself=True, present=False)
    again = decide(exp, ObservedTuning(study(3), gone), now=T0 + timedelta(minutes=1))
    assert kinds(again) == [TuningActionKind.START_WORKERS]


def test_a_worker_that_fails_repeatedly_fails_the_run_with_its_last_error():
    exp = started()
    failing = ObservedWorkers(failed=3, last_error="exit code 2: ConfigError: searchSpace[0].name: bad")
    decision = decide(exp, ObservedTuning(study(1), failing), now=T0 + timedelta(minutes=1))
    assert kinds(decision) == [TuningActionKind.STOP_WORKERS]
    assert decision.status.phase == FAILED
    ready = get_condition(decision.status.conditions, READY)
    assert ready.status == "False" and ready.reason == "WorkerFailed"
    assert "ConfigError: searchSpace[0].name: bad" in ready.message
    assert [e.reason for e in decision.events] == ["WorkerFailed"]
    assert decision.requeue_after is None  # no cron: it waits for an edit
    assert run_phase(decision.status.tuning, decision.status.phase) == FAILED


def test_fewer_failures_restart_the_worker_with_a_warning():
    exp = started()
    decision = decide(exp, ObservedTuning(study(1), ObservedWorkers(failed=1, last_error="killed by SIGKILL")))
    assert kinds(decision) == [TuningActionKind.START_WORKERS]
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "WorkerFailed")]


@pytest.mark.parametrize(
    ("observed", "now", "why"),
    [
        (ObservedTuning(study(20), ObservedWorkers()), T0 + timedelta(minutes=9), "20 finished trials"),
        (ObservedTuning(study(5), ObservedWorkers()), T0 + timedelta(hours=1), "maxDuration passed"),
        (ObservedTuning(study(5), ObservedWorkers(succeeded=1)), T0 + timedelta(minutes=9), "workers finished"),
    ],
)
def test_a_done_study_without_workers_is_finalized(observed, now, why):
    decision = decide(started(), observed, now=now)
    assert kinds(decision) == [TuningActionKind.START_FINALIZE]
    assert decision.status.phase == FINALIZING
    assert [e.reason for e in decision.events] == ["Finalizing"] and why in decision.events[0].message


def test_a_done_study_waits_for_its_workers_to_finish_their_trials_then_stops_them_past_the_grace():
    exp = started()
    busy = ObservedTuning(study(20, running=1), ObservedWorkers(running=1))
    waiting = decide(exp, busy, now=T0 + timedelta(minutes=30))
    assert waiting.actions == [] and waiting.status.phase == TUNING
    late = decide(exp, busy, now=T0 + timedelta(hours=1) + TuningPolicy().stop_grace)
    assert kinds(late) == [TuningActionKind.STOP_WORKERS]


# --- finalizing -------------------------------------------------------------------------------------------------


def finalizing() -> Experiment:
    exp = started()
    return advance(exp, decide(exp, ObservedTuning(study(20)), now=T0 + timedelta(minutes=9)))


def test_finalizing_waits_for_the_step_and_starts_it_again_when_it_is_gone():
    exp = finalizing()
    assert exp.status.phase == FINALIZING
    running = decide(exp, ObservedTuning(study(20), finalize=ObservedFinalize(FinalizeState.RUNNING)))
    assert running.actions == [] and running.status.phase == FINALIZING
    gone = decide(exp, ObservedTuning(study(20), finalize=ObservedFinalize(FinalizeState.ABSENT)))
    assert kinds(gone) == [TuningActionKind.START_FINALIZE]
    once = decide(exp, ObservedTuning(study(20), finalize=ObservedFinalize(FinalizeState.FAILED, failures=1)))
    assert kinds(once) == [TuningActionKind.START_FINALIZE]


def test_a_finalize_step_that_keeps_failing_fails_the_run():
    exp = finalizing()
    final = ObservedFinalize(FinalizeState.FAILED, failures=2, last_error="exit code 1: DataError: no candles")
    decision = decide(exp, ObservedTuning(study(20), finalize=final))
    assert decision.actions == [] and decision.status.phase == FAILED
    ready = get_condition(decision.status.conditions, READY)
    assert ready.reason == "FinalizeFailed" and "DataError: no candles" in ready.message


def completed(result: dict[str, Any] = RESULT, **spec: Any) -> tuple[Experiment, Any]:
    exp = started(**spec)
    exp = advance(exp, decide(exp, ObservedTuning(study(20)), now=T0 + timedelta(minutes=9)))
    final = ObservedFinalize(FinalizeState.SUCCEEDED, result=result, report="/api/v1/experiments/btc-tuning/report")
    decision = decide(exp, ObservedTuning(study(20), finalize=final), now=T0 + timedelta(minutes=10))
    return advance(exp, decision), decision


def test_a_result_is_recorded_with_its_proposal_and_whether_it_is_accepted():
    exp, decision = completed()
    assert decision.status.phase == COMPLETED
    tuning = decision.status.tuning
    proposal = tuning.proposal
    assert proposal.params == {"sma.fast": 12, "sma.slow": 40} and proposal.in_sample_value == 1.4
    assert (proposal.deflated_sharpe, proposal.pbo, proposal.trials_counted) == (0.97, 0.2, 20)
    assert proposal.out_of_sample == {"sharpe": 0.9, "totalReturnPct": 12.0}
    assert proposal.accepted and proposal.reason.startswith("accepted: deflated Sharpe 0.970 >= 0.95")
    assert tuning.report == "/api/v1/experiments/btc-tuning/report"
    assert tuning.run_finished_at == T0 + timedelta(minutes=10) and tuning.next_run_at is None
    assert [e.reason for e in decision.events] == ["TuningCompleted", "ProposalAccepted"]
    assert get_condition(decision.status.conditions, PROPOSAL_ACCEPTED).status == "True"
    promoted = get_condition(decision.status.conditions, PROMOTED)
    assert (promoted.status, promoted.reason) == ("False", "Manual")  # manual: nothing else happens
    assert decision.actions == [] and decision.requeue_after is None
    again = decide(exp, ObservedTuning(study(20)), now=T0 + timedelta(days=3))
    assert again.actions == [] and again.events == [] and again.status.phase == COMPLETED


def passed_on(exp: Experiment, *, reason: str = "Valid", ok: bool = True, phase: str | None = None) -> ExperimentStatus:
    """The status a pass hands the plan: the stored one with Ready as the validation (or a refusal) set it."""
    status = exp.status.model_copy(deep=True)
    status.conditions = [
        c.model_copy(update={"status": "True" if ok else "False", "reason": reason, "message": f"({reason})"})
        if c.type == READY
        else c
        for c in status.conditions
    ]
    if phase is not None:
        status.phase = phase
    return status


def later_pass(exp: Experiment, status: ExperimentStatus, *, days: int = 1):
    return plan_tuning(desired(exp), ObservedTuning(study(20)), status=status, now=T0 + timedelta(days=days))


def test_a_finished_run_keeps_its_ready_condition_over_the_validation_each_pass_starts_from():
    exp, decision = completed({**RESULT, "pbo": 0.8})
    finished = get_condition(decision.status.conditions, READY)
    assert (finished.status, finished.reason) == ("True", "Completed") and "rejected" in finished.message
    later = later_pass(exp, passed_on(exp))  # as the service hands it over: Ready says only that the spec is valid
    assert get_condition(later.status.conditions, READY) == finished  # its transition time too


def test_a_completed_run_refused_for_a_while_is_completed_again_once_the_problem_is_fixed():
    exp, decision = completed()
    finished = get_condition(decision.status.conditions, READY)
    # a pass refused it (its Strategy could not run): phase Pending, Ready False, as the service stores it
    refused = exp.model_copy(
        update={"status": passed_on(exp, reason="WaitingForDependency", ok=False, phase="Pending")}
    )
    fixed = later_pass(refused, passed_on(refused), days=2)
    ready = get_condition(fixed.status.conditions, READY)
    assert fixed.status.phase == COMPLETED
    assert (ready.status, ready.reason, ready.message) == ("True", "Completed", finished.message)
    # an edit that measures the same (the acceptance thresholds): still the completed run's verdict, this generation
    edited = advance(exp, decision, generation=2)
    again = later_pass(edited, passed_on(edited), days=3)
    assert get_condition(again.status.conditions, READY).reason == "Completed"
    assert get_condition(again.status.conditions, READY).observed_generation == 2


def test_a_failed_run_keeps_why_it_failed_but_not_a_refusal_that_came_after():
    exp = finalizing()
    final = ObservedFinalize(FinalizeState.FAILED, failures=2, last_error="exit code 1: DataError: no candles")
    failed = advance(exp, decide(exp, ObservedTuning(study(20), finalize=final)))
    why = get_condition(failed.status.conditions, READY)
    later = later_pass(failed, passed_on(failed))
    assert later.status.phase == FAILED and get_condition(later.status.conditions, READY) == why
    refused = failed.model_copy(update={"status": passed_on(failed, reason="InvalidSpec", ok=False, phase="Invalid")})
    after = later_pass(refused, passed_on(refused), days=2)
    assert after.status.phase == FAILED and get_condition(after.status.conditions, READY).reason == "Valid"


@pytest.mark.parametrize(
    ("result", "why"),
    [
        ({**RESULT, "dsr": 0.6}, "deflated Sharpe 0.600 is below acceptance.minDeflatedSharpe 0.95"),
        ({**RESULT, "pbo": 0.7}, "PBO 0.700 is above acceptance.maxPbo 0.5"),
        ({**RESULT, "dsr": None}, "the result carries no deflated Sharpe ratio"),
        ({**RESULT, "pbo": float("nan")}, "no probability of backtest overfitting"),
    ],
)
def test_a_proposal_below_the_thresholds_is_rejected_saying_why(result, why):
    proposal = judge_proposal(result, Acceptance())
    assert not proposal.accepted and why in proposal.reason


def test_a_rejected_proposal_is_never_promoted():
    exp, decision = completed({**RESULT, "pbo": 0.8}, promotion="ab")
    assert decision.actions == []
    assert [e.reason for e in decision.events] == ["TuningCompleted", "ProposalRejected", "NotPromoted"]
    promoted = get_condition(decision.status.conditions, PROMOTED)
    assert promoted.reason == "Rejected" and "PBO 0.800 is above" in promoted.message
    later = decide(exp, ObservedTuning(study(20)), now=T0 + timedelta(hours=1))
    assert later.actions == [] and later.events == []


def test_an_accepted_proposal_with_promotion_ab_becomes_a_candidate_and_an_ab_experiment():
    exp, decision = completed(promotion="ab", schedule={"steps": [20, 100], "minTrades": 5, "stepInterval": "6h"})
    assert kinds(decision) == [TuningActionKind.PROMOTE]
    action = decision.actions[0]
    candidate, rollout = action.candidate, action.rollout
    assert candidate.name == "btc-trend-btc-tuning-r1" and candidate.namespace == "default"
    assert candidate.spec.ensemble.members[0].params == {"fast": 12, "slow": 40}
    assert rollout.name == "btc-tuning-r1-ab" and rollout.spec.type == "ab"
    assert rollout.spec.strategy_ref.name == "btc-trend"
    assert rollout.spec.baseline.strategy_ref.name == "btc-trend"
    assert rollout.spec.candidate.strategy_ref.name == candidate.name
    assert rollout.spec.schedule.steps == [20, 100] and rollout.spec.schedule.min_trades == 5
    assert rollout.spec.schedule.step_interval == "6h"
    assert decision.status.tuning.candidate == candidate.name and decision.status.tuning.rollout == rollout.name
    assert "Promoted" in [e.reason for e in decision.events]
    assert get_condition(decision.status.conditions, PROMOTED).status == "True"
    assert decide(exp, ObservedTuning(study(20)), now=T0 + timedelta(hours=1)).actions == []  # once


def test_a_promotion_that_did_not_happen_is_tried_again():
    exp, _ = completed(promotion="ab")
    tuning = exp.status.tuning.model_copy(update={"candidate": None, "rollout": None})
    exp = experiment(exp.status.model_copy(update={"tuning": tuning}), promotion="ab")
    assert kinds(decide(exp, ObservedTuning(study(20)), now=T0 + timedelta(hours=1))) == [TuningActionKind.PROMOTE]


def test_the_candidate_takes_the_proposals_parameters_member_by_member_and_leaves_the_tuned_strategy_alone():
    tuned = strategy()
    proposal = TuningProposal(params={"sma.fast": 14, "sma.slow": 55}, accepted=True)
    candidate, _ = promotion_objects(experiment(), tuned, proposal, 3)
    assert candidate.spec.ensemble.members[0].params == {"fast": 14, "slow": 55}
    assert tuned.spec.ensemble.members[0].params == {"fast": 10, "slow": 30}
    assert candidate.metadata.labels == {"slsbot.io/experiment": "btc-tuning", "slsbot.io/tuning-run": "3"}
    assert candidate.spec.account_ref == tuned.spec.account_ref


def test_long_names_are_shortened_to_a_dns_label():
    name = candidate_name("s" * 40, "e" * 40, 12)
    assert len(name) == 63 and name != candidate_name("s" * 40, "e" * 41, 12)
    assert object_name("a", "b") == "a-b"


# --- re-runs ----------------------------------------------------------------------------------------------------


def test_cron_schedules_the_next_run_which_starts_a_new_study():
    exp, decision = completed(schedule={"cron": "0 3 * * 0"})
    due = datetime(2026, 1, 11, 3, 0, tzinfo=UTC)  # T0 is a Monday
    assert decision.status.tuning.next_run_at == due
    assert decision.requeue_after == timedelta(hours=1)
    before = decide(exp, ObservedTuning(study(20)), now=due - timedelta(minutes=30))
    assert before.actions == [] and before.requeue_after == timedelta(minutes=30)
    fired = decide(exp, ObservedTuning(study(20)), now=due)
    assert kinds(fired) == [TuningActionKind.START_WORKERS]
    run = fired.actions[0].run
    assert run.run == 2 and run.study != exp.status.tuning.study and run.study.startswith("default.btc-tuning.r2-")
    tuning = fired.status.tuning
    assert tuning.run == 2 and tuning.run_started_at == due and tuning.proposal is None
    assert get_condition(fired.status.conditions, PROPOSAL_ACCEPTED) is None


def test_an_edit_of_what_the_study_measures_mid_run_starts_a_new_run():
    exp = started()
    edited = experiment(
        exp.status, generation=2, searchSpace=[{"name": "sma.fast", "type": "int", "low": 5, "high": 30}]
    )
    decision = decide(edited, ObservedTuning(study(4), ObservedWorkers(running=2)))
    assert kinds(decision) == [TuningActionKind.STOP_WORKERS, TuningActionKind.START_WORKERS]
    assert decision.actions[0].run.study == exp.status.tuning.study
    assert decision.actions[1].run.run == 2 and decision.actions[1].run.study != exp.status.tuning.study
    assert [e.reason for e in decision.events] == ["SpecChanged"]


def test_an_edit_of_the_tuned_strategy_mid_run_starts_a_new_run_but_not_after_it_completed():
    exp = started()
    mid = decide(exp, ObservedTuning(study(4), ObservedWorkers(running=2)), fast=11)
    assert kinds(mid) == [TuningActionKind.STOP_WORKERS, TuningActionKind.START_WORKERS]
    done, _ = completed()
    assert decide(done, ObservedTuning(study(20)), fast=11).actions == []


def test_an_edit_that_measures_the_same_keeps_the_run():
    exp = started()
    edited = experiment(exp.status, generation=2, budget={"maxTrials": 20, "maxDuration": "1h", "parallelism": 3})
    decision = decide(edited, ObservedTuning(study(4), ObservedWorkers(running=2)))
    assert kinds(decision) == [TuningActionKind.START_WORKERS] and decision.actions[0].count == 1
    assert decision.actions[0].run.study == exp.status.tuning.study


def test_a_failed_run_starts_again_after_any_edit():
    exp = started()
    failed = advance(exp, decide(exp, ObservedTuning(study(1), ObservedWorkers(failed=3))))
    assert failed.status.phase == FAILED
    assert decide(failed).actions == []
    edited = experiment(failed.status, generation=2, budget={"maxTrials": 20, "maxDuration": "1h", "parallelism": 1})
    assert kinds(decide(edited)) == [TuningActionKind.START_WORKERS]


def test_the_run_survives_a_pass_that_reported_something_else():
    exp = started()
    invalid = exp.status.model_copy(update={"phase": "Invalid"})
    decision = decide(experiment(invalid), ObservedTuning(study(3), ObservedWorkers(running=2)))
    assert decision.status.phase == TUNING and decision.actions == []
    assert run_phase(TuningStatus(), "Tuning") == "Pending"


# --- cron --------------------------------------------------------------------------------------------------------


def test_cron_schedules_are_checked_and_read_in_utc():
    assert cron_problem(None) is None and cron_problem("0 3 * * 0") is None
    problem = cron_problem("61 * * * *")
    assert problem is not None and "'61 * * * *' is not a cron schedule" in problem and "five fields" in problem
    assert "has 6 fields" in cron_problem("0 0 3 * * 0")
    assert next_run_time("0 3 * * 0", T0) == datetime(2026, 1, 11, 3, 0, tzinfo=UTC)  # 0 is Sunday, as in crontab
    assert next_run_time("*/15 * * * *", datetime(2026, 1, 1, 10, 15, tzinfo=UTC)) == datetime(
        2026, 1, 1, 10, 30, tzinfo=UTC
    )
