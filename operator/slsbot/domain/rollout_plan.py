"""The A/B rollout's decision: from the Experiment, its two Strategies and what their runtimes report, the next
actions (allocations to set, a spec to replace, a Strategy to retire), the status and when to look again.

Pure: no clock (``now`` is passed in, for the decision history), no I/O. Time inside a rollout is MARKET time: the
variants' newest candle (the older of the two), so an accelerated replay runs a day-long step in seconds and a live
runtime runs it in a day.

How a rollout moves (docs/concepts/rollouts.md), Argo Rollouts' steps with a sequential test for the analysis:

* Capital moves from the baseline to the candidate along ``schedule.steps``: at a step of ``s`` percent the
  candidate trades ``share * s / 100`` of the account and the baseline the rest of ``share``, the baseline
  Strategy's own allocation. Their sum never exceeds ``share``, and allocations are lowered before others are
  raised, so it is not exceeded between two calls either.
* Every look folds the new periods (both variants' returns on their allocated capital, paired by candle time,
  after the cursor) into the sequential test. The test only sees candles at which both had capital, so it runs on
  the steps below 100 %.
* A step below 100 % moves on once it was held ``stepInterval`` of market time and each variant closed
  ``minTrades`` trades in it, unless the test said ROLLBACK. The move to the 100 % step also needs the test's
  PROMOTE verdict (the candidate takes all the capital only on evidence that it is better); until then the last
  step below 100 % holds (``WaitingForEvidence``). PROMOTE is final once reached (an always-valid test stops at
  its first crossing): later steps still hold their time and trades.
* The 100 % step is held ``stepInterval`` and ``minTrades`` candidate trades, with the risk limits watched; then the
  candidate is promoted: it goes to zero capital, its trading logic replaces the baseline's spec, and once the
  baseline's runtime runs that spec the baseline's allocation returns to its spec share and the candidate is
  retired (deleted if the Experiment owns it, else left with no capital).
* Rollback (candidate to zero, baseline back to its share) at once on the test's ROLLBACK, or without waiting
  for any statistic when the candidate breaches its risk limits: drawdown beyond its RiskPolicy's
  maxDrawdownPercent, circuit breaker level 2 or more, a severity-1 incident.
* ``spec.paused`` holds the step and any promotion (rollbacks still happen); ``spec.abort`` rolls back now;
  ``spec.promote`` promotes now. Each is recorded in the decision history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from slsbot.api import Experiment, ExperimentStatus, Strategy, StrategySpec
from slsbot.api.base import parse_duration
from slsbot.api.experiment import RolloutDecision, RolloutStatus, VariantStatus
from slsbot.api.strategy import TIMEFRAME_SECONDS
from slsbot.domain.conditions import PROGRESSING, READY, get_condition, set_condition
from slsbot.domain.performance import annualised_sharpe, compounded_return_percent, paired_returns
from slsbot.domain.promotion import TRADING_LOGIC_FIELDS, promoted_spec, runs_current_spec, same_trading_logic
from slsbot.domain.runtime_performance import PerformancePeriod, RuntimePerformance
from slsbot.domain.sequential_test import SequentialDesign, SequentialState, Verdict, decide_test, update_test


class RolloutPhase(StrEnum):
    PENDING = "Pending"  # valid, waiting for the variants' first candles
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    PROMOTING = "Promoting"  # the candidate's logic is going to the baseline
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"


FINISHED = frozenset({RolloutPhase.PROMOTED, RolloutPhase.ROLLED_BACK, RolloutPhase.ABORTED})
HISTORY_LIMIT = 50
BREAKER_ROLLBACK_LEVEL = 2
INCIDENT_ROLLBACK_SEVERITY = 1
REQUEUE = {
    RolloutPhase.PENDING: timedelta(seconds=2),
    RolloutPhase.PROGRESSING: timedelta(seconds=2),
    RolloutPhase.PAUSED: timedelta(seconds=10),
    RolloutPhase.PROMOTING: timedelta(seconds=1),
}
FINISHED_REQUEUE = timedelta(minutes=5)
DAY_SECONDS = 86_400
_EPSILON = 1e-9


class DecisionAction(StrEnum):
    HOLD = "Hold"
    STEP = "Step"
    PROMOTE = "Promote"
    ROLLBACK = "Rollback"
    PAUSE = "Pause"
    RESUME = "Resume"
    ABORT = "Abort"


class RolloutActionKind(StrEnum):
    SET_ALLOCATION = "SetAllocation"  # percent None: back to the Strategy's spec share
    REPLACE_SPEC = "ReplaceSpec"
    DELETE = "Delete"


@dataclass(frozen=True, slots=True)
class RolloutAction:
    kind: RolloutActionKind
    strategy: str
    percent: float | None = None
    spec: StrategySpec | None = None


@dataclass(frozen=True, slots=True)
class RolloutEvent:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Incident:
    """An open incident about a runtime (incidents come in a later issue; until then none is ever passed)."""

    severity: int  # 1 is the most severe
    summary: str


@dataclass(frozen=True, slots=True)
class RolloutObserved:
    """What the service found. The Strategies and reports are None only where they are gone or not asked (a
    finished rollout whose candidate was deleted)."""

    baseline: Strategy | None
    candidate: Strategy | None
    baseline_report: RuntimePerformance | None
    candidate_report: RuntimePerformance | None
    drawdown_guard_percent: float  # the candidate's effective RiskPolicy maxDrawdownPercent
    candidate_owned: bool = False  # the Experiment owns the candidate Strategy: it is deleted when retired
    candidate_incidents: tuple[Incident, ...] = ()  # open incidents of the candidate; severity 1 rolls back


@dataclass(slots=True)
class RolloutPlan:
    actions: list[RolloutAction]
    status: ExperimentStatus
    events: list[RolloutEvent]
    requeue_after: timedelta


def baseline_share(strategy: Strategy) -> float:
    """The baseline Strategy's share of the account (``spec.allocationPercent``, from P4's allocation part)."""
    # getattr only until the allocation branch (P4) is merged: it adds the field (default 100); then read it plainly.
    return float(getattr(strategy.spec, "allocation_percent", 100.0))


def step_allocations(share: float, step_percent: float) -> tuple[float, float]:
    """(baseline, candidate) percent of the account at a step: the candidate takes ``step_percent`` of the
    baseline's ``share``, the baseline keeps the rest."""
    candidate = share * step_percent / 100.0
    baseline = share - candidate
    assert 0 <= candidate <= share + _EPSILON and baseline + candidate <= share + _EPSILON, (share, step_percent)
    return round(baseline, 6), round(candidate, 6)


def performance_since(experiment: Experiment, *, now: datetime) -> int:
    """The ``since`` (ms) to ask the runtimes' performance from: the start of the current step in market time, or
    ``now`` before the rollout starts (only their clocks and allocations are needed then)."""
    rollout = experiment.status.rollout if experiment.status is not None else None
    started = _ms(rollout.step_started_at) if rollout is not None else None
    return started if started is not None else int(now.timestamp() * 1000)


def sequential_design(experiment: Experiment, baseline: Strategy | None) -> SequentialDesign:
    """The sequential test's design: alpha is ``schedule.significance``; a block is a day of the variants' candles
    (24 hourly ones, 288 of five minutes), so each block absorbs the dependence within a day whatever the timeframe."""
    timeframe = baseline.spec.timeframe if baseline is not None else "1h"
    return SequentialDesign(
        alpha=experiment.spec.schedule.significance,
        periods_per_block=max(1, DAY_SECONDS // TIMEFRAME_SECONDS[timeframe]),
    )


def plan_rollout(experiment: Experiment, observed: RolloutObserved, *, now: datetime) -> RolloutPlan:
    """One look at an A/B rollout whose references are valid: the actions to take, in order, and the status."""
    look = _Look.begin(experiment, observed, now)
    if look.phase in FINISHED:
        look.finish_again()
    elif look.phase is RolloutPhase.PROMOTING:
        look.promote()
    elif experiment.spec.abort:
        look.roll_back(RolloutPhase.ABORTED, DecisionAction.ABORT, "aborted by hand (spec.abort)")
    elif experiment.spec.promote:
        look.decide(DecisionAction.PROMOTE, "promoted by hand (spec.promote), whatever the test says")
        look.promote()
    else:
        look.progress()
    return look.plan()


# --- one look ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Look:
    experiment: Experiment
    observed: RolloutObserved
    now: datetime
    phase: RolloutPhase
    rollout: RolloutStatus
    status: ExperimentStatus
    actions: list[RolloutAction] = field(default_factory=list)
    events: list[RolloutEvent] = field(default_factory=list)
    progress_reason: str = ""
    progress_message: str = ""

    @classmethod
    def begin(cls, experiment: Experiment, observed: RolloutObserved, now: datetime) -> _Look:
        previous = experiment.status or ExperimentStatus()
        try:
            phase = RolloutPhase(previous.phase)
        except ValueError:  # Invalid, Ready...: what validation wrote before the rollout began
            phase = RolloutPhase.PENDING
        rollout = (previous.rollout or RolloutStatus()).model_copy(deep=True)
        return cls(experiment, observed, now, phase, rollout, previous.model_copy(deep=True))

    # -- names and figures --

    @property
    def steps(self) -> list[float]:
        return self.experiment.spec.schedule.steps

    @property
    def index(self) -> int:
        return min(self.rollout.current_step_index, len(self.steps) - 1)

    @property
    def baseline_name(self) -> str:
        variant = self.experiment.spec.baseline
        assert variant is not None  # the API model refuses an ab Experiment without one
        return variant.strategy_ref.name

    @property
    def candidate_name(self) -> str:
        variant = self.experiment.spec.candidate
        assert variant is not None
        return variant.strategy_ref.name

    @property
    def share(self) -> float:
        baseline = self.observed.baseline
        return baseline_share(baseline) if baseline is not None else 100.0

    def market_now(self) -> int | None:
        """The variants' market clock: the older of their newest candles (ms); None before both have one."""
        reports = (self.observed.baseline_report, self.observed.candidate_report)
        clocks = [r.last_candle_ts for r in reports if r is not None]
        if len(clocks) < 2 or any(c is None for c in clocks):
            return None
        return min(c for c in clocks if c is not None)

    def step_label(self, index: int | None = None) -> str:
        i = self.index if index is None else index
        return f"step {i + 1} of {len(self.steps)} ({self.steps[i]:g} %)"

    # -- history, events, conditions --

    def decide(self, action: DecisionAction, reason: str) -> None:
        entry = RolloutDecision(
            time=self.now,
            step=self.index,
            action=action,
            reason=reason,
            statistic=self.rollout.statistic,
            threshold=self.rollout.threshold,
        )
        self.rollout.decisions = [*self.rollout.decisions, entry][-HISTORY_LIMIT:]

    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.events.append(RolloutEvent("Warning" if warning else "Normal", reason, message))

    def progressing(self, reason: str, message: str) -> None:
        self.progress_reason, self.progress_message = reason, message

    # -- allocations --

    def current_allocations(self) -> dict[str, float]:
        reports = {
            self.baseline_name: self.observed.baseline_report,
            self.candidate_name: self.observed.candidate_report,
        }
        return {name: (r.allocation_percent if r is not None else 0.0) for name, r in reports.items()}

    def allocate(self, baseline: float | None, candidate: float | None) -> None:
        """Bring the variants to these allocations (the baseline's None: back to its spec share; the candidate's
        None: left as it is), lowering before raising, so their sum never exceeds the share on the way."""
        share = self.share
        current = self.current_allocations()
        target = {
            self.baseline_name: share if baseline is None else baseline,
            self.candidate_name: current[self.candidate_name] if candidate is None else candidate,
        }
        if candidate is not None:
            assert target[self.baseline_name] + candidate <= share + _EPSILON, (target, share)
        reports = {
            self.baseline_name: self.observed.baseline_report,
            self.candidate_name: self.observed.candidate_report,
        }
        changes: list[tuple[float, RolloutAction]] = []
        for name, percent in ((self.baseline_name, baseline), (self.candidate_name, candidate)):
            if reports[name] is None or (name == self.candidate_name and candidate is None):
                continue
            delta = target[name] - current[name]
            if abs(delta) > _EPSILON:
                changes.append((delta, RolloutAction(RolloutActionKind.SET_ALLOCATION, name, percent=percent)))
        self.actions += [action for _, action in sorted(changes, key=lambda item: item[0])]
        self.rollout.variants = self._variant_statuses(target)

    def _variant_statuses(self, allocation: dict[str, float]) -> list[VariantStatus]:
        spec = self.experiment.spec
        start = _ms(self.rollout.step_started_at)
        until = self.market_now()
        rows = []
        for variant in spec.variants:
            name = variant.strategy_ref.name
            is_baseline = name == self.baseline_name
            report = self.observed.baseline_report if is_baseline else self.observed.candidate_report
            strategy = self.observed.baseline if is_baseline else self.observed.candidate
            periods: list[PerformancePeriod] = []
            if report is not None and start is not None and until is not None:
                periods = [p for p in report.periods if start < p.ts <= until]
            timeframe = strategy.spec.timeframe if strategy is not None else "1h"
            rows.append(
                VariantStatus(
                    name=variant.name,
                    strategy=name,
                    allocation_percent=round(allocation.get(name, 0.0), 6),
                    trades=report.closed_trades if report is not None and start is not None else 0,
                    return_percent=_rounded(compounded_return_percent(periods)),
                    sharpe=_rounded(annualised_sharpe(periods, timeframe=timeframe)),
                    drawdown_percent=_rounded(report.drawdown_percent) if report is not None else None,
                )
            )
        return rows

    # -- the rollout's moves --

    def progress(self) -> None:
        breach = self._risk_breach()
        if breach is not None:
            self.roll_back(RolloutPhase.ROLLED_BACK, DecisionAction.ROLLBACK, breach)
            return
        market_now = self.market_now()
        if market_now is None:
            self.progressing("WaitingForCandles", "waiting for both variants' runtimes to report a candle")
            self._hold_allocations()
            return
        started = self.rollout.step_started_at is not None
        if started:
            self._fold_test(market_now)
            if self.rollout.verdict == Verdict.ROLLBACK.value:
                reason = (
                    f"the sequential test says the candidate is worse: statistic {self.rollout.statistic:.3g} "
                    f"reached {self.rollout.threshold:.3g}"
                )
                self.roll_back(RolloutPhase.ROLLED_BACK, DecisionAction.ROLLBACK, reason)
                return
        if self._held_by_hand():
            return
        if not started:
            self._start_step(0, market_now, first=True)
            return
        self.phase = RolloutPhase.PROGRESSING
        self._gate(market_now)

    def _held_by_hand(self) -> bool:
        """``spec.paused``: hold where the rollout is (before its first step too), recording each pause and resume."""
        paused = self.experiment.spec.paused
        where = self.step_label() if self.rollout.step_started_at is not None else "the start"
        if paused != self.rollout.paused:
            self.rollout.paused = paused
            action = DecisionAction.PAUSE if paused else DecisionAction.RESUME
            self.decide(action, f"{'paused' if paused else 'resumed'} by hand (spec.paused: {str(paused).lower()})")
            self.event("Paused" if paused else "Resumed", f"{'paused' if paused else 'resumed'} at {where}")
        if not paused:
            return False
        self.phase = RolloutPhase.PAUSED
        self.progressing("Paused", f"paused at {where}: no step moves and nothing is promoted")
        self._hold_allocations()
        return True

    def _gate(self, market_now: int) -> None:
        schedule = self.experiment.spec.schedule
        i, step = self.index, self.steps[self.index]
        interval = parse_duration(schedule.step_interval)
        held = timedelta(milliseconds=market_now - (_ms(self.rollout.step_started_at) or market_now))
        baseline_trades = self.observed.baseline_report.closed_trades if self.observed.baseline_report else 0
        candidate_trades = self.observed.candidate_report.closed_trades if self.observed.candidate_report else 0
        needs_baseline = step < 100  # at 100 % the baseline has no capital and trades nothing
        label = self.step_label()
        if held < interval:
            self.progressing(
                "WaitingForTime", f"{label}: held {_span(held)} of {_span(interval)} (market time, stepInterval)"
            )
        elif candidate_trades < schedule.min_trades or (needs_baseline and baseline_trades < schedule.min_trades):
            counts = f"the candidate closed {candidate_trades}" + (
                f" and the baseline {baseline_trades}" if needs_baseline else ""
            )
            self.progressing("WaitingForTrades", f"{label}: {counts} of {schedule.min_trades} trades (minTrades)")
        elif self.rollout.verdict != Verdict.PROMOTE.value and (step == 100 or self.steps[i + 1] == 100):
            message = (
                f"{label} is done; the candidate takes all the capital only once the sequential test says it is "
                f"better: statistic {_number(self.rollout.statistic)} of threshold {_number(self.rollout.threshold)}"
            )
            if not self._holding_for_evidence():
                self.decide(DecisionAction.HOLD, message)
                self.event("WaitingForEvidence", message)
            self.progressing("WaitingForEvidence", message)
        elif step == 100:
            self.decide(
                DecisionAction.PROMOTE,
                f"the sequential test said the candidate is better and it held {label} for {_span(held)} and "
                f"{candidate_trades} trades",
            )
            self.promote()
            return
        else:
            self._start_step(i + 1, market_now, first=False)
            return
        self._hold_allocations()

    def _holding_for_evidence(self) -> bool:
        last = self.rollout.decisions[-1] if self.rollout.decisions else None
        return last is not None and last.action == DecisionAction.HOLD and last.step == self.index

    def _start_step(self, index: int, market_now: int, *, first: bool) -> None:
        self.rollout.current_step_index = index
        self.rollout.step_started_at = _datetime(market_now)
        self.rollout.cursor = max(self.rollout.cursor or market_now, market_now)
        self.phase = RolloutPhase.PROGRESSING
        baseline, candidate = step_allocations(self.share, self.steps[index])
        why = "the rollout starts" if first else "the step before held its time and trades"
        message = (
            f"{self.step_label(index)}: candidate {self.candidate_name} trades {candidate:g} % of the account, "
            f"baseline {self.baseline_name} {baseline:g} %"
        )
        self.decide(DecisionAction.STEP, f"{why}; {message}")
        self.event("StepStarted", message)
        self.progressing("StepStarted", message)
        self.allocate(baseline, candidate)

    def _hold_allocations(self) -> None:
        if self.rollout.step_started_at is None:  # not started: nothing is moved yet
            self.rollout.variants = self._variant_statuses(self.current_allocations())
            return
        self.allocate(*step_allocations(self.share, self.steps[self.index]))

    def _fold_test(self, market_now: int) -> None:
        """Fold the paired periods after the cursor into the test (until its verdict is final), move the cursor
        to the market clock: a candle both have passed that did not pair never will."""
        cursor = self.rollout.cursor or market_now
        design = sequential_design(self.experiment, self.observed.baseline)
        if self.rollout.verdict not in (Verdict.PROMOTE.value, Verdict.ROLLBACK.value):
            baseline, candidate = self.observed.baseline_report, self.observed.candidate_report
            assert baseline is not None and candidate is not None
            pairs = paired_returns(baseline.periods, candidate.periods, after=cursor, until=market_now)
            state = (
                SequentialState.model_validate(self.rollout.test_state)
                if self.rollout.test_state
                else SequentialState()
            )
            if pairs:
                state = update_test(state, [(b, c) for _, b, c in pairs], design)
            decision = decide_test(state, design)
            self.rollout.test_state = state.model_dump(mode="json", by_alias=True)
            self.rollout.statistic = _rounded(decision.statistic)
            self.rollout.threshold = _rounded(decision.threshold)
            self.rollout.verdict = Verdict(decision.verdict).value
            if decision.verdict == Verdict.PROMOTE:
                self.decide(
                    DecisionAction.HOLD,
                    f"the sequential test says the candidate is better ({decision.detail}); the steps go on and it "
                    "is promoted after the 100 % step",
                )
                self.event("TestSaysPromote", f"the sequential test says the candidate is better: {decision.detail}")
        self.rollout.cursor = max(cursor, market_now)

    def _risk_breach(self) -> str | None:
        report = self.observed.candidate_report
        name = self.candidate_name
        for incident in self.observed.candidate_incidents:
            if incident.severity <= INCIDENT_ROLLBACK_SEVERITY:
                return f"candidate {name} has a severity-{incident.severity} incident: {incident.summary}"
        if report is None:
            return None
        if report.breaker_level >= BREAKER_ROLLBACK_LEVEL:
            return f"candidate {name}'s circuit breaker is at level {report.breaker_level}"
        if report.drawdown_percent > self.observed.drawdown_guard_percent:
            return (
                f"candidate {name}'s drawdown {report.drawdown_percent:.2f} % is beyond its RiskPolicy's "
                f"maxDrawdownPercent {self.observed.drawdown_guard_percent:g} %"
            )
        return None

    def roll_back(self, phase: RolloutPhase, action: DecisionAction, reason: str) -> None:
        self.phase = phase
        self.decide(action, reason)
        self.event("Aborted" if phase is RolloutPhase.ABORTED else "RolledBack", reason, warning=True)
        self.progressing(phase.value, f"{reason}; the candidate has no capital, the baseline its whole share")
        self.allocate(None, 0.0)

    def promote(self) -> None:
        """Promotion, over as many looks as it takes: candidate to zero capital, its logic over the baseline's
        spec, then (once the baseline's runtime runs that spec) the baseline's share back and the candidate
        retired."""
        if self.phase is not RolloutPhase.PROMOTING:
            self.phase = RolloutPhase.PROMOTING
            self.event("Promoting", f"promoting candidate {self.candidate_name} into baseline {self.baseline_name}")
        baseline, candidate = self.observed.baseline, self.observed.candidate
        assert baseline is not None
        # Until the baseline's runtime runs the promoted logic it keeps what it had (never more than its share)
        # and the candidate has nothing.
        holding = min(self.current_allocations()[self.baseline_name], self.share)
        if candidate is not None and not same_trading_logic(baseline.spec, candidate.spec):
            self.allocate(holding, 0.0)
            spec = promoted_spec(baseline.spec, candidate.spec)
            self.actions.append(RolloutAction(RolloutActionKind.REPLACE_SPEC, self.baseline_name, spec=spec))
            self.progressing(
                "ReplacingSpec",
                f"the candidate's trading logic ({', '.join(TRADING_LOGIC_FIELDS)}) goes into {self.baseline_name}",
            )
            return
        if not runs_current_spec(baseline):
            self.allocate(holding, 0.0)
            self.progressing(
                "WaitingForBaselineRollout",
                f"waiting for {self.baseline_name}'s runtime to run the promoted spec; the candidate has no capital "
                "meanwhile",
            )
            return
        self.phase = RolloutPhase.PROMOTED
        delete = candidate is not None and self.observed.candidate_owned
        self.allocate(None, None if delete else 0.0)
        if delete:
            self.actions.append(RolloutAction(RolloutActionKind.DELETE, self.candidate_name))
            retired = f"candidate {self.candidate_name} was deleted (this Experiment owns it)"
        else:
            retired = (
                f"candidate {self.candidate_name} is not this Experiment's: it stays, with no capital; delete it "
                "when you no longer need it"
            )
        message = f"{self.baseline_name} runs the candidate's trading logic with its whole share; {retired}"
        self.event("Promoted", message)
        self.progressing("Promoted", message)

    def finish_again(self) -> None:
        """A finished rollout keeps its outcome's allocations (say a runtime came back on an old override)."""
        previous = get_condition(self.status.conditions, PROGRESSING)
        self.progressing(self.phase.value, previous.message if previous is not None else f"the rollout is {self.phase}")
        deleted = self.phase is RolloutPhase.PROMOTED and self.observed.candidate_owned
        self.allocate(None, None if deleted else 0.0)
        if deleted and self.observed.candidate is not None:  # its deletion did not go through: again (idempotent)
            self.actions.append(RolloutAction(RolloutActionKind.DELETE, self.candidate_name))

    # -- the result --

    def plan(self) -> RolloutPlan:
        generation = self.experiment.metadata.generation
        status = self.status
        status.phase = self.phase.value
        status.rollout = self.rollout
        status.observed_generation = generation
        finished = self.phase in FINISHED
        status.conditions = set_condition(
            status.conditions,
            type=READY,
            status=True,
            reason=self.phase.value,
            message=f"the A/B rollout is {self.phase.value}: {self.progress_message}",
            generation=generation,
            now=self.now,
        )
        status.conditions = set_condition(
            status.conditions,
            type=PROGRESSING,
            status=not finished and self.phase is not RolloutPhase.PAUSED,
            reason=self.progress_reason or self.phase.value,
            message=self.progress_message,
            generation=generation,
            now=self.now,
        )
        requeue = FINISHED_REQUEUE if finished else REQUEUE[self.phase]
        return RolloutPlan(actions=self.actions, status=status, events=self.events, requeue_after=requeue)


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds:
        return f"{seconds // 60}m"
    return f"{seconds}s"
