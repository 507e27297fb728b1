"""A bounded journal of recent risk decisions and counters by rule and by action, for people and metrics."""

from __future__ import annotations

from collections import Counter, deque

from slsbot_runtime.risk.base import JournalEntry, RiskDecision, TradeProposal

DEFAULT_JOURNAL_SIZE = 500


class DecisionJournal:
    def __init__(self, size: int = DEFAULT_JOURNAL_SIZE) -> None:
        if size < 1:
            raise ValueError(f"journal size: {size} must be at least 1")
        self._entries: deque[JournalEntry] = deque(maxlen=size)
        self._rules: Counter[str] = Counter()
        self._actions: Counter[str] = Counter()

    def record(self, ts: int, proposal: TradeProposal, decision: RiskDecision) -> None:
        action, events = decision.action, decision.events
        self._entries.append(
            JournalEntry(ts, proposal.symbol, proposal.side, proposal.is_entry, action, decision.quantity, events)
        )
        self._actions[str(action)] += 1
        for event in events:
            self._rules[str(event.rule)] += 1

    def entries(self, limit: int | None = None) -> list[JournalEntry]:
        """The most recent decisions, oldest first; at most ``limit`` of them when given."""
        entries = list(self._entries)
        return entries if limit is None else entries[-limit:] if limit > 0 else []

    def rule_counts(self) -> dict[str, int]:
        """How many events each rule has produced since start."""
        return dict(self._rules)

    def action_counts(self) -> dict[str, int]:
        """How many decisions ended approved, reduced or rejected since start."""
        return dict(self._actions)
