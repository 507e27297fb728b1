"""The daily account report's figures: one TradingAccount, one UTC day, from what its Strategies' runtimes recorded.

Pure: the inputs are plain data read from the runtimes' state files (``services.daily_reports`` reads them) and the
incidents; nothing here does I/O. The day is ``[00:00, 24:00)`` UTC on the runtimes' clock (the candles' open times:
a replay of recorded candles reports on the market's dates).

Per Strategy:

- ``pnl``: equity at the day's end minus equity at its start, so realised profit, the change in unrealised profit and
  every fee together. Equity at the start is the last recorded equity before the day (the starting cash when there
  is none); at the end, the last recorded in the day (the start's when there is none).
- ``realised_pnl``, ``wins``, ``losses``: the trades closed in the day, net of both fees, booked by the runtime's own
  ``Ledger`` replaying every fill since the start (a trade closed in the day may have been opened before it).
- ``unrealised_change``: ``pnl - realised_pnl``: the open positions' marks moving.
- ``max_drawdown_pct``: the deepest fall below the running peak within the day, the peak starting at the start's equity.

The account adds its Strategies up (its equity curve is the sum of theirs, each carried forward between its own
points); its win rate is over every trade closed in the day; best and worst are the Strategies with the highest and
lowest ``pnl``. Risk decisions are counted by action (``rejected``: a refusal, ``reduced``: a cut) and rule, one
count per rule a decision named. Incidents count when they name the account or one of its Strategies, by when they
opened and when they were resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from slsbot.domain.incidents import Incident
from slsbot_runtime.domain.types import Fill
from slsbot_runtime.execution.ledger import Ledger

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class RiskDecisionRecord:
    """One decision of a runtime's risk manager as its state file keeps it: when, what it did, the rules it named."""

    ts: int
    action: str  # "rejected" or "reduced"
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StrategyRecord:
    """What a Strategy's runtime recorded: every equity point (ms, equity after the last symbol of that time), every
    fill in the order applied, every risk decision."""

    name: str
    starting_cash: float
    equity: Sequence[tuple[int, float]] = ()
    fills: Sequence[Fill] = ()
    decisions: Sequence[RiskDecisionRecord] = ()
    quote_currency: str = "USDT"


@dataclass(frozen=True, slots=True)
class RiskDecisionCount:
    action: str
    rule: str
    count: int


@dataclass(frozen=True, slots=True)
class StrategyDay:
    name: str
    equity_start: float
    equity_end: float
    pnl: float
    realised_pnl: float
    unrealised_change: float
    fees: float
    wins: int
    losses: int
    max_drawdown_pct: float
    curve: tuple[tuple[int, float], ...]  # the day's points, after the start's (at the day's first ms)
    risk_decisions: tuple[RiskDecisionCount, ...]

    @property
    def closed_trades(self) -> int:
        return self.wins + self.losses

    @property
    def win_rate_pct(self) -> float | None:
        return 100.0 * self.wins / self.closed_trades if self.closed_trades else None


@dataclass(frozen=True, slots=True)
class IncidentLine:
    id: str
    severity: int
    rule: str
    state: str
    opened_at: datetime
    resolved_at: datetime | None
    message: str


@dataclass(frozen=True, slots=True)
class AccountDay:
    namespace: str
    account: str
    day: date
    strategies: tuple[StrategyDay, ...]
    curve: tuple[tuple[int, float], ...]
    max_drawdown_pct: float
    risk_decisions: tuple[RiskDecisionCount, ...]
    incidents_opened: tuple[IncidentLine, ...]
    incidents_resolved: tuple[IncidentLine, ...]
    unavailable: tuple[str, ...] = ()  # the account's Strategies left out: no state yet, or unreadable

    @property
    def equity_start(self) -> float:
        return sum(s.equity_start for s in self.strategies)

    @property
    def equity_end(self) -> float:
        return sum(s.equity_end for s in self.strategies)

    @property
    def pnl(self) -> float:
        return sum(s.pnl for s in self.strategies)

    @property
    def pnl_pct(self) -> float | None:
        return 100.0 * self.pnl / self.equity_start if self.equity_start else None

    @property
    def realised_pnl(self) -> float:
        return sum(s.realised_pnl for s in self.strategies)

    @property
    def unrealised_change(self) -> float:
        return sum(s.unrealised_change for s in self.strategies)

    @property
    def fees(self) -> float:
        return sum(s.fees for s in self.strategies)

    @property
    def wins(self) -> int:
        return sum(s.wins for s in self.strategies)

    @property
    def losses(self) -> int:
        return sum(s.losses for s in self.strategies)

    @property
    def win_rate_pct(self) -> float | None:
        closed = self.wins + self.losses
        return 100.0 * self.wins / closed if closed else None

    @property
    def best(self) -> StrategyDay | None:
        return max(self.strategies, key=lambda s: (s.pnl, s.name), default=None)

    @property
    def worst(self) -> StrategyDay | None:
        return min(self.strategies, key=lambda s: (s.pnl, s.name), default=None)

    @property
    def refusals(self) -> int:
        return sum(c.count for c in self.risk_decisions if c.action == "rejected")

    @property
    def cuts(self) -> int:
        return sum(c.count for c in self.risk_decisions if c.action == "reduced")


def day_bounds(day: date) -> tuple[int, int]:
    """The day's first millisecond and the next day's, UTC, in ms since the epoch."""
    start = int(datetime.combine(day, time(), tzinfo=UTC).timestamp() * 1000)
    return start, start + DAY_MS


def previous_day(now: datetime) -> date:
    """The last whole UTC day before ``now``: what a report sent at 00:05 covers."""
    return (now.astimezone(UTC) - timedelta(days=1)).date()


def strategy_day(record: StrategyRecord, day: date) -> StrategyDay:
    start_ms, end_ms = day_bounds(day)
    points: dict[int, float] = {}
    for ts, equity in record.equity:  # several symbols share a time: the account after the last of them
        if ts < end_ms:
            points[ts] = equity
    before = [ts for ts in points if ts < start_ms]
    equity_start = points[max(before)] if before else record.starting_cash
    curve = tuple(sorted((ts, e) for ts, e in points.items() if ts >= start_ms))
    equity_end = curve[-1][1] if curve else equity_start
    ledger = Ledger(cash=record.starting_cash, quote_currency=record.quote_currency)
    realised_start, wins_start, losses_start = 0.0, 0, 0
    fees = 0.0
    started = False
    for fill in record.fills:
        if fill.ts >= end_ms:
            break
        if fill.ts >= start_ms:
            if not started:
                realised_start, wins_start, losses_start = ledger.realized()
                started = True
            fees += fill.fee
        ledger.apply(fill)
    if not started:
        realised_start, wins_start, losses_start = ledger.realized()
    realised_end, wins_end, losses_end = ledger.realized()
    pnl = equity_end - equity_start
    realised = realised_end - realised_start
    decisions = [d for d in record.decisions if start_ms <= d.ts < end_ms]
    return StrategyDay(
        name=record.name,
        equity_start=equity_start,
        equity_end=equity_end,
        pnl=pnl,
        realised_pnl=realised,
        unrealised_change=pnl - realised,
        fees=fees,
        wins=wins_end - wins_start,
        losses=losses_end - losses_start,
        max_drawdown_pct=max_drawdown_pct(equity_start, [e for _, e in curve]),
        curve=curve,
        risk_decisions=count_decisions(decisions),
    )


def account_day(
    *,
    namespace: str,
    account: str,
    day: date,
    strategies: Iterable[StrategyRecord],
    incidents: Iterable[Incident] = (),
    unavailable: Iterable[str] = (),
) -> AccountDay:
    """``unavailable``: the account's Strategies whose records could not be had (named in the report, not counted)."""
    days = tuple(strategy_day(record, day) for record in sorted(strategies, key=lambda r: r.name))
    curve = account_curve(days)
    left_out = tuple(sorted(unavailable))
    names = {f"TradingAccount/{account}"} | {f"Strategy/{s}" for s in (*(d.name for d in days), *left_out)}
    own = [i for i in incidents if i.namespace == namespace and names.intersection(i.spec.objects)]
    start, end = (datetime.fromtimestamp(ms / 1000, UTC) for ms in day_bounds(day))
    opened = sorted((i for i in own if start <= i.status.opened_at < end), key=lambda i: (i.status.opened_at, i.id))
    resolved = sorted(
        (i for i in own if i.status.resolved_at is not None and start <= i.status.resolved_at < end),
        key=lambda i: (i.status.resolved_at, i.id),
    )
    totals: dict[tuple[str, str], int] = {}
    for strategy in days:
        for count in strategy.risk_decisions:
            totals[count.action, count.rule] = totals.get((count.action, count.rule), 0) + count.count
    return AccountDay(
        namespace=namespace,
        account=account,
        day=day,
        strategies=days,
        curve=curve,
        max_drawdown_pct=max_drawdown_pct(sum(s.equity_start for s in days), [e for _, e in curve]),
        risk_decisions=_sorted_counts(totals),
        incidents_opened=tuple(_line(i) for i in opened),
        incidents_resolved=tuple(_line(i) for i in resolved),
        unavailable=left_out,
    )


def account_curve(days: Sequence[StrategyDay]) -> tuple[tuple[int, float], ...]:
    """The account's equity at every time any of its Strategies recorded one, each carried forward from its start."""
    current = {s.name: s.equity_start for s in days}
    changes: dict[int, list[tuple[str, float]]] = {}
    for strategy in days:
        for ts, equity in strategy.curve:
            changes.setdefault(ts, []).append((strategy.name, equity))
    curve = []
    for ts in sorted(changes):
        for name, equity in changes[ts]:
            current[name] = equity
        curve.append((ts, sum(current.values())))
    return tuple(curve)


def max_drawdown_pct(start: float, equities: Iterable[float]) -> float:
    """The deepest fall below the running peak (which starts at ``start``), in percent of that peak."""
    peak, deepest = start, 0.0
    for equity in equities:
        peak = max(peak, equity)
        if peak > 0:
            deepest = max(deepest, (peak - equity) / peak * 100.0)
    return deepest


def count_decisions(decisions: Iterable[RiskDecisionRecord]) -> tuple[RiskDecisionCount, ...]:
    counts: dict[tuple[str, str], int] = {}
    for decision in decisions:
        for rule in dict.fromkeys(decision.rules):  # a rule named twice by one decision counts once
            counts[decision.action, rule] = counts.get((decision.action, rule), 0) + 1
    return _sorted_counts(counts)


def _sorted_counts(counts: dict[tuple[str, str], int]) -> tuple[RiskDecisionCount, ...]:
    ordered = sorted(counts.items(), key=lambda item: (item[0][0], -item[1], item[0][1]))
    return tuple(RiskDecisionCount(action, rule, count) for (action, rule), count in ordered)


def _line(incident: Incident) -> IncidentLine:
    return IncidentLine(
        id=incident.id,
        severity=incident.spec.severity,
        rule=incident.spec.rule,
        state=str(incident.state),
        opened_at=incident.status.opened_at,
        resolved_at=incident.status.resolved_at,
        message=incident.spec.message,
    )


def money(value: float) -> str:
    return f"{value:+,.2f}"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} %"


def summary_lines(report: AccountDay) -> list[tuple[str, str]]:
    """The report's headline figures as (label, text), in the order both the PDF's title page and the Slack message
    show them."""
    best, worst = report.best, report.worst
    closed = report.wins + report.losses
    return [
        ("PnL", f"{money(report.pnl)} ({percent(report.pnl_pct)})"),
        ("Realised", money(report.realised_pnl)),
        ("Unrealised change", money(report.unrealised_change)),
        ("Fees", f"{report.fees:,.2f}"),
        ("Equity", f"{report.equity_start:,.2f} -> {report.equity_end:,.2f}"),
        ("Win rate", f"{percent(report.win_rate_pct)} of {closed} closed trades"),
        ("Max drawdown", percent(report.max_drawdown_pct)),
        ("Best strategy", "none" if best is None else f"{best.name} {money(best.pnl)}"),
        ("Worst strategy", "none" if worst is None else f"{worst.name} {money(worst.pnl)}"),
        ("Incidents", f"{len(report.incidents_opened)} opened, {len(report.incidents_resolved)} resolved"),
        ("Risk decisions", f"{report.refusals} refusals, {report.cuts} cuts"),
    ] + ([("Not counted", ", ".join(report.unavailable) + " (no readable state)")] if report.unavailable else [])


def decision_lines(report: AccountDay) -> list[str]:
    """One line per (action, rule): ``refused by daily_loss: 2``."""
    label = {"rejected": "refused", "reduced": "cut"}
    return [f"{label.get(c.action, c.action)} by {c.rule}: {c.count}" for c in report.risk_decisions]


def title(report: AccountDay) -> str:
    return f"Daily report {report.day.isoformat()}: {report.namespace}/{report.account}"
