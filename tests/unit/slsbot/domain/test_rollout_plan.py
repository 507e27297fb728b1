"""plan_rollout: the A/B rollout's decision over observed figures, with no I/O.

``Market`` below plays the two runtimes: it keeps their allocations (the decision's actions applied), their market
clock and one period per candle hour, and answers ``PerformanceReport``s as ``GET /performance?since=`` would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slsbot.api import Experiment, Strategy
from slsbot.api.base import Condition
from slsbot.domain.rollout_plan import (
    HISTORY_LIMIT,
    Incident,
    RolloutAction,
    RolloutActionKind,
    RolloutObserved,
    RolloutPlan,
    plan_rollout,
    sequential_design,
    step_allocations,
)
from slsbot.domain.runtime_performance import PerformancePeriod as Period
from slsbot.domain.runtime_performance import RuntimePerformance as PerformanceReport
from slsbot.domain.sequential_test import SequentialDesign, SequentialState, update_test

NOW = datetime(2026, 3, 1, tzinfo=UTC)
T0 = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
HOUR = 3_600_000
BASE, CAND = "btc", "btc-v2"


def _strategy(name: str, *, fast: int = 10, account: str = "paper", generation: int = 1, ready: bool = True):
    status = None
    if ready:
        status = {
            "observedGeneration": generation,
            "conditions": [
                Condition(
                    type="Ready",
                    status="True",
                    reason="RuntimeReady",
                    last_transition_time=NOW,
                    observed_generation=generation,
                ).to_wire()
            ],
        }
    return Strategy.model_validate(
        {
            "metadata": {"name": name, "generation": generation},
            "spec": {
                "accountRef": {"name": account},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": fast}}]},
                "marketData": {"source": "replay", "secondsPerCandle": 0.05},
            },
            "status": status,
        }
    )


def _experiment(*, steps=(10, 25, 50, 100), interval="4h", min_trades=2, **controls) -> Experiment:
    return Experiment.model_validate(
        {
            "metadata": {"name": "ab", "generation": 1},
            "spec": {
                "type": "ab",
                "strategyRef": {"name": BASE},
                "variants": [
                    {"name": "baseline", "strategyRef": {"name": BASE}},
                    {"name": "candidate", "strategyRef": {"name": CAND}},
                ],
                "schedule": {"steps": list(steps), "stepInterval": interval, "minTrades": min_trades},
                **controls,
            },
        }
    )


@dataclass
class Market:
    """Two runtimes on one market clock. ``hours(n, base, cand)`` moves the clock n candles, each variant earning
    ``base``/``cand`` (a number, or a callable of the hour) on its allocated capital and closing one trade every
    ``trade_every`` candles."""

    allocation: dict[str, float] = field(default_factory=lambda: {BASE: 100.0, CAND: 0.0})
    clock: int = T0
    periods: dict[str, list[Period]] = field(default_factory=lambda: {BASE: [], CAND: []})
    closes: dict[str, list[int]] = field(default_factory=lambda: {BASE: [], CAND: []})
    drawdown: dict[str, float] = field(default_factory=lambda: {BASE: 0.0, CAND: 0.0})
    breaker: dict[str, int] = field(default_factory=lambda: {BASE: 0, CAND: 0})
    trade_every: int = 1
    started: bool = True
    behind: dict[str, int] = field(default_factory=lambda: {BASE: 0, CAND: 0})  # candles a runtime lags
    shares: list[dict[str, float]] = field(default_factory=list)  # allocations after every action, in order

    def hours(self, n: int, base=0.0, cand=0.0) -> None:
        for _ in range(n):
            self.clock += HOUR
            hour = (self.clock - T0) // HOUR
            for name, ret in ((BASE, base), (CAND, cand)):
                value = ret(hour) if callable(ret) else ret
                capital = self.allocation[name] * 100.0
                self.periods[name].append(Period(self.clock, 10_000.0, capital, value if capital > 0 else None))
                if capital > 0 and hour % self.trade_every == 0:
                    self.closes[name].append(self.clock)

    def report(self, name: str, since: int) -> PerformanceReport:
        clock = self.clock - self.behind[name] * HOUR
        return PerformanceReport(
            allocation_percent=self.allocation[name],
            last_candle_ts=clock if self.started else None,
            periods=tuple(p for p in self.periods[name] if since < p.ts <= clock),
            closed_trades=sum(1 for ts in self.closes[name] if ts > since),
            drawdown_percent=self.drawdown[name],
            breaker_level=self.breaker[name],
        )

    def apply(self, actions: list[RolloutAction], share: float = 100.0) -> None:
        for action in actions:
            if action.kind is RolloutActionKind.SET_ALLOCATION:
                self.allocation[action.strategy] = share if action.percent is None else action.percent
                self.shares.append(dict(self.allocation))


@dataclass
class Rollout:
    """The Experiment and its Strategies, looked at again and again as the controller would."""

    experiment: Experiment
    market: Market = field(default_factory=Market)
    baseline: Strategy = field(default_factory=lambda: _strategy(BASE))
    candidate: Strategy | None = field(default_factory=lambda: _strategy(CAND, fast=20))
    guard: float = 20.0
    owned: bool = False
    incidents: tuple[Incident, ...] = ()
    plans: list[RolloutPlan] = field(default_factory=list)

    def look(self) -> RolloutPlan:
        rollout = self.experiment.status.rollout if self.experiment.status else None
        started = rollout.step_started_at if rollout is not None else None
        since = int(started.timestamp() * 1000) if started is not None else 2**53
        observed = RolloutObserved(
            baseline=self.baseline,
            candidate=self.candidate,
            baseline_report=self.market.report(BASE, since),
            candidate_report=self.market.report(CAND, since) if self.candidate is not None else None,
            drawdown_guard_percent=self.guard,
            candidate_owned=self.owned,
            candidate_incidents=self.incidents,
        )
        plan = plan_rollout(self.experiment, observed, now=NOW)
        self.market.apply(plan.actions)
        self.experiment = self.experiment.model_copy(update={"status": plan.status})
        self.plans.append(plan)
        return plan

    @property
    def status(self):
        return self.experiment.status

    def decisions(self) -> list[str]:
        return [d.action for d in self.status.rollout.decisions]

    def reasons(self) -> list[str]:
        return [e.reason for plan in self.plans for e in plan.events]


def _kinds(plan: RolloutPlan) -> list[tuple[str, str, float | None]]:
    return [(a.kind, a.strategy, a.percent) for a in plan.actions if a.kind is RolloutActionKind.SET_ALLOCATION]


def _progressing(status) -> str:
    return next(c.reason for c in status.conditions if c.type == "Progressing")


def _noise(seed: int, scale: float):
    rng = random.Random(seed)
    cache: dict[int, float] = {}
    return lambda hour: cache.setdefault(hour, rng.gauss(0, scale))


# --- starting ---------------------------------------------------------------------------------------------------


def test_the_first_look_starts_step_one_lowering_the_baseline_before_raising_the_candidate():
    rollout = Rollout(_experiment())
    plan = rollout.look()
    assert _kinds(plan) == [("SetAllocation", BASE, 90.0), ("SetAllocation", CAND, 10.0)]
    assert rollout.status.phase == "Progressing"
    assert rollout.status.rollout.current_step_index == 0
    assert rollout.status.rollout.step_started_at == datetime.fromtimestamp(T0 / 1000, UTC)  # market time
    assert rollout.status.rollout.cursor == T0
    assert rollout.decisions() == ["Step"]
    assert [(e.type, e.reason) for e in plan.events] == [("Normal", "StepStarted")]
    assert {v.strategy: v.allocation_percent for v in rollout.status.rollout.variants} == {BASE: 90.0, CAND: 10.0}


def test_nothing_moves_before_both_runtimes_report_a_candle():
    rollout = Rollout(_experiment(), market=Market(started=False))
    plan = rollout.look()
    assert plan.actions == [] and rollout.status.phase == "Pending"
    assert _progressing(rollout.status) == "WaitingForCandles"
    assert rollout.status.rollout.step_started_at is None


# --- holding a step ---------------------------------------------------------------------------------------------


def test_a_step_is_held_for_step_interval_of_market_time_whatever_the_trades():
    rollout = Rollout(_experiment(interval="4h", min_trades=1))
    rollout.look()
    rollout.market.hours(3)
    plan = rollout.look()
    assert plan.actions == [] and rollout.status.rollout.current_step_index == 0
    assert _progressing(rollout.status) == "WaitingForTime"
    assert "held 3h of 4h" in next(c.message for c in rollout.status.conditions if c.type == "Progressing")


def test_a_step_is_held_until_each_variant_has_closed_min_trades_in_it():
    rollout = Rollout(_experiment(interval="1h", min_trades=3), market=Market(trade_every=2))
    rollout.look()
    rollout.market.hours(5)  # two trades each
    rollout.look()
    assert rollout.status.rollout.current_step_index == 0
    assert _progressing(rollout.status) == "WaitingForTrades"
    rollout.market.hours(1)  # the third
    plan = rollout.look()
    assert rollout.status.rollout.current_step_index == 1
    assert _kinds(plan) == [("SetAllocation", BASE, 75.0), ("SetAllocation", CAND, 25.0)]
    assert [e.reason for e in plan.events] == ["StepStarted"]


def test_trades_count_from_the_start_of_the_step_not_before():
    rollout = Rollout(_experiment(interval="2h", min_trades=2))
    rollout.look()
    rollout.market.hours(2)
    rollout.look()  # step 2 starts: the trades of step 1 do not count for it
    assert rollout.status.rollout.current_step_index == 1
    rollout.market.hours(1)
    rollout.look()
    assert _progressing(rollout.status) == "WaitingForTime"
    rollout.market.hours(1)
    rollout.look()
    assert rollout.status.rollout.current_step_index == 2


def test_the_last_step_below_100_waits_for_the_tests_promote_verdict_and_says_so_once():
    rollout = Rollout(_experiment(steps=(50, 100), interval="1h", min_trades=1))
    rollout.look()
    noise = _noise(1, 0.01)
    for _ in range(3):
        rollout.market.hours(2, base=noise, cand=noise)  # the same returns: no evidence either way
        plan = rollout.look()
        assert _kinds(plan) == []
    assert rollout.status.rollout.current_step_index == 0
    assert _progressing(rollout.status) == "WaitingForEvidence"
    assert rollout.decisions() == ["Step", "Hold"]
    assert rollout.reasons().count("WaitingForEvidence") == 1


# --- promotion and rollback on the test -------------------------------------------------------------------------


def _run(rollout: Rollout, *, base, cand, looks: int = 200, hours: int = 24) -> None:
    for _ in range(looks):
        if rollout.status.phase in ("Promoted", "RolledBack"):
            return
        rollout.market.hours(hours, base=base, cand=cand)
        rollout.look()
        if rollout.status.phase == "Promoting":
            rollout.baseline = _promoted(rollout)


def _promoted(rollout: Rollout) -> Strategy:
    """What the OwnedObjects port and the Strategy reconciler do with a ReplaceSpec: the spec is replaced (the
    generation moves on) and the runtime then runs it."""
    replace = [a for a in rollout.plans[-1].actions if a.kind is RolloutActionKind.REPLACE_SPEC]
    if not replace:
        return rollout.baseline
    generation = rollout.baseline.metadata.generation + 1
    baseline = _strategy(BASE, generation=generation)
    return baseline.model_copy(update={"spec": replace[0].spec})


def test_a_better_candidate_goes_through_every_step_and_is_promoted_into_the_baseline():
    rollout = Rollout(_experiment(interval="12h", min_trades=2))
    rollout.look()
    _run(rollout, base=_noise(2, 0.004), cand=lambda h: 0.002 + _noise(3, 0.004)(h))
    status = rollout.status
    assert status.phase == "Promoted", _progressing(status)
    steps = [d.step for d in status.rollout.decisions if d.action == "Step"]
    assert steps == [0, 1, 2, 3]  # every step, in order, none skipped
    assert status.rollout.verdict == "promote"
    assert rollout.reasons().count("StepStarted") == 4
    assert {"Promoting", "Promoted"} <= set(rollout.reasons())
    assert rollout.baseline.spec.ensemble.members[0].params == {"fast": 20}  # the candidate's logic
    assert rollout.market.allocation == {BASE: 100.0, CAND: 0.0}
    assert "stays, with no capital" in next(c.message for c in status.conditions if c.type == "Progressing")


def test_a_worse_candidate_is_rolled_back_on_the_tests_verdict_candidate_first():
    rollout = Rollout(_experiment(interval="12h", min_trades=2))
    rollout.look()
    _run(rollout, base=_noise(4, 0.004), cand=lambda h: -0.002 + _noise(5, 0.004)(h))
    status = rollout.status
    assert status.phase == "RolledBack"
    assert status.rollout.verdict == "rollback"
    last = rollout.plans[-1]
    assert _kinds(last)[0] == ("SetAllocation", CAND, 0.0)  # the candidate's capital goes first
    assert rollout.market.allocation == {BASE: 100.0, CAND: 0.0}
    assert [(e.type, e.reason) for e in last.events] == [("Warning", "RolledBack")]
    assert status.rollout.decisions[-1].action == "Rollback"
    assert "worse" in status.rollout.decisions[-1].reason


def test_the_test_sees_each_paired_period_once_only_where_both_had_capital():
    rollout = Rollout(_experiment(interval="100h"))
    rollout.look()  # cursor at T0, the candidate gets capital now
    rollout.market.hours(5, base=0.01, cand=0.02)
    # A candle only one runtime reported, and one at which the candidate had no capital, do not pair.
    rollout.market.periods[CAND].pop(1)
    rollout.market.periods[BASE][3] = Period(T0 + 4 * HOUR, 10_000.0, 0.0, None)
    rollout.look()
    rollout.look()  # the same figures again: nothing new to fold
    expected = update_test(SequentialState(), [(0.01, 0.02)] * 3, SequentialDesign(alpha=0.05))
    assert rollout.status.rollout.test_state == expected.model_dump(mode="json", by_alias=True)
    assert rollout.status.rollout.cursor == T0 + 5 * HOUR
    rollout.market.hours(2, base=0.01, cand=0.02)
    rollout.look()
    expected = update_test(SequentialState(), [(0.01, 0.02)] * 5, SequentialDesign(alpha=0.05))
    assert rollout.status.rollout.test_state == expected.model_dump(mode="json", by_alias=True)


def test_a_candle_only_one_runtime_has_passed_waits_for_the_other():
    rollout = Rollout(_experiment(interval="100h"))
    rollout.look()
    rollout.market.hours(3, base=0.01, cand=0.02)
    rollout.market.behind[BASE] = 1
    rollout.look()
    assert rollout.status.rollout.cursor == T0 + 2 * HOUR  # the older clock: candle 3 is not folded yet
    expected = update_test(SequentialState(), [(0.01, 0.02)] * 2, SequentialDesign(alpha=0.05))
    assert rollout.status.rollout.test_state == expected.model_dump(mode="json", by_alias=True)


# --- rollback at once ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drawdown", "breaker", "incidents", "why"),
    [
        (0.0, 2, (), "circuit breaker is at level 2"),
        (20.5, 0, (), "drawdown 20.50 % is beyond its RiskPolicy's maxDrawdownPercent 20 %"),
        (0.0, 0, (Incident(1, "exchange rejects every order"),), "severity-1 incident: exchange rejects"),
    ],
)
def test_a_candidate_that_breaches_its_risk_limits_is_rolled_back_at_once(drawdown, breaker, incidents, why):
    rollout = Rollout(_experiment(interval="100h"))
    rollout.look()
    rollout.market.hours(1)
    rollout.market.drawdown[CAND], rollout.market.breaker[CAND] = drawdown, breaker
    rollout.incidents = incidents
    plan = rollout.look()
    assert rollout.status.phase == "RolledBack"
    assert why in rollout.status.rollout.decisions[-1].reason
    assert _kinds(plan) == [("SetAllocation", CAND, 0.0), ("SetAllocation", BASE, None)]
    assert rollout.status.rollout.verdict in (None, "continue")  # no statistic was waited for


@pytest.mark.parametrize(
    ("drawdown", "breaker", "incidents"), [(20.0, 0, ()), (0.0, 1, ()), (0.0, 0, (Incident(2, "slow fills"),))]
)
def test_within_the_limits_the_rollout_goes_on(drawdown, breaker, incidents):
    rollout = Rollout(_experiment(interval="100h"))
    rollout.look()
    rollout.market.hours(1)
    rollout.market.drawdown[CAND], rollout.market.breaker[CAND] = drawdown, breaker
    rollout.incidents = incidents
    rollout.look()
    assert rollout.status.phase == "Progressing"


def test_a_breach_rolls_back_even_while_paused():
    rollout = Rollout(_experiment(interval="100h", paused=True))
    rollout.look()
    rollout.market.hours(1)
    rollout.look()
    assert rollout.status.phase == "Paused"
    rollout.market.breaker[CAND] = 3
    rollout.look()
    assert rollout.status.phase == "RolledBack"


# --- manual controls --------------------------------------------------------------------------------------------


def test_paused_holds_the_step_and_resume_moves_on_each_recorded_once():
    rollout = Rollout(_experiment(interval="1h", min_trades=1))
    rollout.look()
    rollout.experiment.spec.paused = True
    for _ in range(2):
        rollout.market.hours(3)
        plan = rollout.look()
        assert rollout.status.phase == "Paused" and _kinds(plan) == []
    assert rollout.status.rollout.current_step_index == 0 and rollout.status.rollout.paused
    assert next(c for c in rollout.status.conditions if c.type == "Progressing").status == "False"
    rollout.experiment.spec.paused = False
    plan = rollout.look()
    assert rollout.status.phase == "Progressing" and rollout.status.rollout.current_step_index == 1
    assert rollout.decisions() == ["Step", "Pause", "Resume", "Step"]
    assert [e.reason for e in plan.events] == ["Resumed", "StepStarted"]


def test_abort_rolls_back_now_and_stays_aborted():
    rollout = Rollout(_experiment())
    rollout.look()
    rollout.look()
    rollout.experiment.spec.abort = True
    plan = rollout.look()
    assert rollout.status.phase == "Aborted"
    assert _kinds(plan) == [("SetAllocation", CAND, 0.0), ("SetAllocation", BASE, None)]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "Aborted")]
    assert rollout.status.rollout.decisions[-1].action == "Abort"
    assert "spec.abort" in rollout.status.rollout.decisions[-1].reason
    rollout.experiment.spec.abort = False
    rollout.experiment.spec.promote = True  # a finished rollout stays finished
    plan = rollout.look()
    assert rollout.status.phase == "Aborted" and plan.actions == [] and plan.events == []


def test_promote_now_moves_the_candidates_logic_into_the_baseline_whatever_the_test_says():
    rollout = Rollout(_experiment(), owned=True)
    rollout.look()  # step 1: 90 / 10
    rollout.experiment.spec.promote = True
    plan = rollout.look()
    assert rollout.status.phase == "Promoting"
    assert [(a.kind, a.strategy, a.percent) for a in plan.actions] == [
        ("SetAllocation", CAND, 0.0),  # the candidate's capital first, then its logic moves
        ("ReplaceSpec", BASE, None),
    ]
    spec = plan.actions[1].spec
    assert spec.ensemble.members[0].params == {"fast": 20}
    assert spec.account_ref.name == "paper" and spec.market_data == rollout.baseline.spec.market_data
    assert rollout.status.rollout.decisions[-1].action == "Promote"
    assert "spec.promote" in rollout.status.rollout.decisions[-1].reason
    # The spec is replaced, its runtime is not running it yet: the baseline keeps its 90 %, the candidate nothing.
    rollout.baseline = _promoted(rollout).model_copy(update={"status": rollout.baseline.status})
    plan = rollout.look()
    assert plan.actions == [] and _progressing(rollout.status) == "WaitingForBaselineRollout"
    assert rollout.market.allocation == {BASE: 90.0, CAND: 0.0}
    rollout.baseline = _strategy(BASE, generation=2).model_copy(update={"spec": rollout.baseline.spec})
    plan = rollout.look()
    assert rollout.status.phase == "Promoted"
    assert [(a.kind, a.strategy, a.percent) for a in plan.actions] == [
        ("SetAllocation", BASE, None),
        ("Delete", CAND, None),  # the Experiment owns it
    ]
    assert [e.reason for e in plan.events] == ["Promoted"]
    assert next(c for c in rollout.status.conditions if c.type == "Progressing").status == "False"


def test_a_finished_rollout_keeps_its_allocations_and_makes_no_new_decision():
    rollout = Rollout(_experiment())
    rollout.look()
    rollout.experiment.spec.abort = True
    rollout.look()
    decisions = rollout.decisions()
    rollout.market.allocation[CAND] = 10.0  # a runtime came back on an old override
    plan = rollout.look()
    assert _kinds(plan) == [("SetAllocation", CAND, 0.0)]
    assert rollout.decisions() == decisions and plan.events == []
    assert plan.requeue_after >= timedelta(minutes=1)


# --- invariants -------------------------------------------------------------------------------------------------


@given(share=st.floats(min_value=0, max_value=100), step=st.floats(min_value=0.01, max_value=100))
def test_step_allocations_never_exceed_the_baselines_share(share, step):
    baseline, candidate = step_allocations(share, step)
    assert baseline >= -1e-9 and candidate >= 0
    assert baseline + candidate <= share + 1e-6


@pytest.mark.parametrize("share", [100.0, 60.0, 33.3])
def test_allocations_never_exceed_the_share_after_any_action_through_a_whole_rollout(share, monkeypatch):
    rollout = Rollout(_experiment(interval="6h", min_trades=1))
    rollout.market.allocation = {BASE: share, CAND: 0.0}
    monkeypatch.setattr("slsbot.domain.rollout_plan.baseline_share", lambda strategy: share)
    apply = rollout.market.apply
    rollout.market.apply = lambda actions, _share=share: apply(actions, _share)  # type: ignore[method-assign]
    rollout.look()
    _run(rollout, base=_noise(6, 0.004), cand=lambda h: 0.002 + _noise(7, 0.004)(h), hours=6)
    assert rollout.status.phase == "Promoted"
    sums = [sum(shares.values()) for shares in rollout.market.shares]
    assert len(sums) >= 8 and max(sums) <= share + 1e-6
    assert rollout.market.allocation == {BASE: share, CAND: 0.0}


def test_the_decision_history_keeps_the_last_50():
    rollout = Rollout(_experiment())
    rollout.look()
    for i in range(60):
        rollout.experiment.spec.paused = i % 2 == 0
        rollout.look()
    decisions = rollout.status.rollout.decisions
    assert len(decisions) == HISTORY_LIMIT
    assert decisions[-1].action == "Resume"


@pytest.mark.parametrize(("timeframe", "periods"), [("5m", 288), ("1h", 24), ("4h", 6), ("1d", 1)])
def test_a_test_block_is_a_day_of_candles_and_alpha_is_the_significance(timeframe, periods):
    experiment = _experiment()
    experiment.spec.schedule.significance = 0.01
    baseline = _strategy(BASE)
    baseline.spec.timeframe = timeframe
    design = sequential_design(experiment, baseline)
    assert (design.periods_per_block, design.alpha) == (periods, 0.01)


def test_a_rollout_paused_before_it_starts_moves_no_capital_until_resumed():
    rollout = Rollout(_experiment(paused=True))
    plan = rollout.look()
    assert rollout.status.phase == "Paused" and plan.actions == []
    assert rollout.status.rollout.step_started_at is None and rollout.decisions() == ["Pause"]
    rollout.experiment.spec.paused = False
    plan = rollout.look()
    assert rollout.status.phase == "Progressing" and rollout.decisions() == ["Pause", "Resume", "Step"]
    assert _kinds(plan) == [("SetAllocation", BASE, 90.0), ("SetAllocation", CAND, 10.0)]
