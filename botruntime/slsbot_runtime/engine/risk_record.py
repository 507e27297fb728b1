"""``RiskDecisionRecorder``: every decision of the risk manager counted, every rejection or reduction kept.

Issue 3 §4: "Every rejection or reduction is recorded with its reason". The loop hands each verdict here right
after ``RiskManager.evaluate``. Counting: ``risk_decisions_total{action, rule}`` once per rule the decision names
(``rule="none"`` when it names none, as a plain approval does), and ``risk_rejections_total{rule}`` for refused
entries. Recording: a rejection or reduction is staged in the state file's ``risk_decisions`` table, so it is
committed in the same transaction as the candle that made it (a candle processed again after a crash stages it
again, never twice on disk) and ``slsbot report`` lists it.
"""

from __future__ import annotations

from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.base import RiskAction, RiskDecision, TradeProposal

NO_RULE = "none"
_APPROVED = RiskAction.APPROVED  # read once: Python 3.11 reads an enum member through a Python-level hook


class RiskDecisionRecorder:
    def __init__(self, store: StateStore, metrics: RuntimeMetrics | None = None) -> None:
        self.store = store
        self.metrics = metrics

    def record(self, ts: int, proposal: TradeProposal, decision: RiskDecision) -> None:
        """Count ``decision`` (made on ``proposal`` at candle ``ts``) and stage it unless it is a plain approval."""
        action, events = decision.action, decision.events
        metrics = self.metrics
        if metrics is not None:
            self._count(metrics, proposal, decision)
        if action is _APPROVED:
            return
        self.store.stage_risk_decision(
            ts=ts,
            symbol=proposal.symbol,
            side=str(proposal.side),
            is_entry=proposal.is_entry,
            action=str(action),
            requested_quantity=proposal.requested_quantity,
            quantity=decision.quantity,
            events=[(event.rule, event.message) for event in events],
        )

    @staticmethod
    def _count(metrics: RuntimeMetrics, proposal: TradeProposal, decision: RiskDecision) -> None:
        action, events = str(decision.action), decision.events
        if not events:
            metrics.risk_decisions.labels(action, NO_RULE).inc()
            return
        for event in events:
            metrics.risk_decisions.labels(action, str(event.rule)).inc()
        if decision.action is RiskAction.REJECTED and proposal.is_entry:
            for event in events:
                metrics.risk_rejections.labels(str(event.rule)).inc()
