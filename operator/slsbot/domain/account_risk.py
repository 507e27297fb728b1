"""Account-wide and global risk: what each runtime under a RiskPolicy with ``scope: account`` or ``global`` may still
add, from the figures every runtime of the group reports. Pure: no I/O, no clock but the ``now`` it is given.

The group is every Strategy of one account using the policy (``scope: account``) or of every account using it
(``scope: global``). From the runtimes' ``/status`` figures (``exposure`` per symbol, ``total_exposure``,
``pnl_today``, ``equity_day_start``, ``equity``, ``drawdown_pct``, the allocation in force):

* the group's capital is the sum over its runtimes of ``equity x allocation / 100`` (what each trades with; the
  allocations of one account add up to at most 100, so for one account this is the account's equity in use);
* its symbol and total limits are the policy's ``maxSymbolExposurePercent`` / ``maxTotalExposurePercent`` of that
  capital; what is left (the limit minus the group's exposure, never below 0) is apportioned to the runtimes by
  their allocated capital, among those that trade the symbol for a symbol limit: a fair share that no runtime can
  take from another, and that adds up to the room left;
* its daily loss is the sum of the runtimes' ``pnl_today`` against the sum of their allocated opening equities
  (``equity_day_start x allocation / 100``); its drawdown adds up each runtime's loss below its own peak (from its
  ``drawdown_pct``) against the capital plus those losses: peaks reached at different times are added as if they
  were one, so the figure is never below the group's true drawdown. Beyond ``dailyLossLimitPercent`` or
  ``maxDrawdownPercent``, every runtime of the group gets ``halt_entries``;
* ``killSwitch`` goes to every runtime at once, and ``size_multiplier`` is 1 unless a multiplier is given for the
  account (the severity-2 size cut of the incident rules).

A runtime whose figures are unknown (not reporting yet, unreachable) counts with its last known figures; with none,
its group's room is 0 for everyone until it reports (an exposure nobody knows cannot be left room beside), unless its
Strategy does not run (``Member.running`` false: Pending, Failed, refused), which then holds nothing and is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slsbot.api import RiskPolicy
from slsbot.api.riskpolicy import RiskScope

AGGREGATED_SCOPES = (RiskScope.ACCOUNT, RiskScope.GLOBAL)


@dataclass(frozen=True, slots=True)
class RuntimeFigures:
    """What one runtime's ``/status`` says of its account (contract: issue 9, section 2)."""

    equity: float
    exposure: Mapping[str, float]
    total_exposure: float
    pnl_today: float
    equity_day_start: float
    drawdown_percent: float = 0.0
    allocation_percent: float = 100.0
    at: str | None = None  # the status's heartbeat (ISO): what the runtime had done when it was read

    @classmethod
    def from_status(cls, status: Mapping[str, Any], spec_allocation: float) -> RuntimeFigures | None:
        """From a ``/status`` body; None when it lacks the figures (a runtime of an older version, or starting)."""
        try:
            equity = float(status["equity"])
            exposure = {str(k): float(v) for k, v in dict(status["exposure"] or {}).items()}
            total = float(status["total_exposure"])
            day_start = status.get("equity_day_start")
            day_start = equity if day_start is None else float(day_start)
            pnl = status.get("pnl_today")
            pnl = 0.0 if pnl is None else float(pnl)
            drawdown = float(status.get("drawdown_pct") or 0.0)
            allocation = status.get("allocation") or {}
            percent = float(allocation.get("percent", spec_allocation))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        heartbeat = status.get("heartbeat")
        return cls(equity, exposure, total, pnl, day_start, drawdown, percent, str(heartbeat) if heartbeat else None)

    @property
    def capital(self) -> float:
        return max(self.equity, 0.0) * self.allocation_percent / 100.0


@dataclass(frozen=True, slots=True)
class Member:
    """One Strategy under the policy: where it trades, and its runtime's figures (None: unknown)."""

    namespace: str
    name: str
    account: str
    symbols: tuple[str, ...]
    figures: RuntimeFigures | None
    running: bool = True  # its Strategy runs or starts a runtime (not Pending, Failed or refused)


@dataclass(frozen=True, slots=True)
class Headroom:
    """What one runtime may still add: the body of its ``POST /headroom`` (``body``)."""

    namespace: str
    name: str
    scope: str
    policy: str
    total_exposure: float | None
    symbol_exposure: Mapping[str, float]
    halt_entries: bool
    size_multiplier: float
    kill_switch: bool
    reason: str
    expires_at: datetime
    figures_at: str | None = None

    def body(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "policy": self.policy,
            "total_exposure": None if self.total_exposure is None else round(self.total_exposure, 2),
            "symbol_exposure": {s: round(v, 2) for s, v in sorted(self.symbol_exposure.items())},
            "halt_entries": self.halt_entries,
            "size_multiplier": self.size_multiplier,
            "kill_switch": self.kill_switch,
            "reason": self.reason,
            "expires_at": self.expires_at.isoformat().replace("+00:00", "Z"),
            "figures_at": self.figures_at,
        }


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """One group's aggregate (an account, or every account of a global policy), for the policy's status and logs."""

    key: str  # the account's name, or "*" for a global policy
    capital: float
    exposure: Mapping[str, float]
    total_exposure: float
    pnl_today: float
    daily_loss_percent: float
    drawdown_percent: float
    halted: str | None  # why entries are halted, None when not
    unknown: tuple[str, ...] = ()  # runtimes without figures


@dataclass(frozen=True, slots=True)
class AccountRiskDecision:
    headrooms: tuple[Headroom, ...]
    groups: tuple[GroupFigures, ...] = field(default=())


def account_headroom(
    policy: RiskPolicy,
    members: Sequence[Member],
    *,
    now: datetime,
    ttl: timedelta,
    size_multipliers: Mapping[str, float] | None = None,
) -> AccountRiskDecision:
    """The headroom of every member of ``policy`` (scope account or global; none for scope strategy), valid until
    ``now + ttl``. ``size_multipliers``: account name -> multiplier (0 < m <= 1) to apply to that account's runtimes."""
    spec = policy.spec
    if spec.scope not in AGGREGATED_SCOPES or not members:
        return AccountRiskDecision(())
    groups: dict[str, list[Member]] = {}
    for member in members:
        groups.setdefault(member.account if spec.scope == RiskScope.ACCOUNT else "*", []).append(member)
    headrooms: list[Headroom] = []
    summaries: list[GroupFigures] = []
    for key, group in sorted(groups.items()):
        summary, rooms = _group(policy, key, group)
        summaries.append(summary)
        for member in group:
            symbol_room, total_room = rooms[(member.namespace, member.name)]
            multiplier = (size_multipliers or {}).get(member.account, 1.0)
            reason = _reason(policy, summary, multiplier)
            headrooms.append(
                Headroom(
                    namespace=member.namespace,
                    name=member.name,
                    scope=str(spec.scope),
                    policy=policy.name,
                    total_exposure=total_room,
                    symbol_exposure=symbol_room,
                    halt_entries=summary.halted is not None,
                    size_multiplier=min(max(multiplier, 0.01), 1.0),
                    kill_switch=spec.kill_switch,
                    reason=reason,
                    expires_at=now + ttl,
                    figures_at=None if member.figures is None else member.figures.at,
                )
            )
    return AccountRiskDecision(tuple(headrooms), tuple(summaries))


def _group(
    policy: RiskPolicy, key: str, group: Sequence[Member]
) -> tuple[GroupFigures, dict[tuple[str, str], tuple[dict[str, float], float]]]:
    spec = policy.spec
    known = [m for m in group if m.figures is not None]
    unknown = tuple(f"{m.namespace}/{m.name}" for m in group if m.figures is None and m.running)
    capital = sum(m.figures.capital for m in known if m.figures is not None)
    exposure: dict[str, float] = {}
    for member in known:
        assert member.figures is not None
        for symbol, value in member.figures.exposure.items():
            exposure[symbol] = exposure.get(symbol, 0.0) + value
    total = sum(m.figures.total_exposure for m in known if m.figures is not None)
    pnl = sum(m.figures.pnl_today for m in known if m.figures is not None)
    day_start = sum(
        m.figures.equity_day_start * m.figures.allocation_percent / 100.0 for m in known if m.figures is not None
    )
    daily_loss = max(-pnl, 0.0) / day_start * 100.0 if day_start > 0 else 0.0
    below_peaks = 0.0
    for member in known:
        assert member.figures is not None
        figures = member.figures
        dd = min(max(figures.drawdown_percent, 0.0), 99.999)
        below_peaks += figures.capital * dd / (100.0 - dd)  # peak - equity, from equity and drawdown
    drawdown = below_peaks / (capital + below_peaks) * 100.0 if capital + below_peaks > 0 else 0.0
    halted = None
    if daily_loss >= spec.daily_loss_limit_percent:
        halted = f"daily loss {daily_loss:.2f}% reached the {spec.daily_loss_limit_percent:.2f}% limit"
    elif drawdown >= spec.max_drawdown_percent:
        halted = f"drawdown {drawdown:.2f}% reached the {spec.max_drawdown_percent:.2f}% maximum"
    summary = GroupFigures(key, capital, exposure, total, pnl, daily_loss, drawdown, halted, unknown)

    rooms: dict[tuple[str, str], tuple[dict[str, float], float]] = {}
    symbol_limit = spec.max_symbol_exposure_percent * capital / 100.0
    total_left = 0.0 if unknown else max(spec.max_total_exposure_percent * capital / 100.0 - total, 0.0)
    for member in group:
        share = _share(member, group, None)
        symbol_room = {}
        for symbol in member.symbols:
            left = 0.0 if unknown else max(symbol_limit - exposure.get(symbol, 0.0), 0.0)
            symbol_room[symbol] = left * _share(member, group, symbol)
        rooms[(member.namespace, member.name)] = (symbol_room, total_left * share)
    return summary, rooms


def _share(member: Member, group: Sequence[Member], symbol: str | None) -> float:
    """The member's part of the room: its allocated capital over that of the group's runtimes that trade ``symbol``
    (every runtime for the total). 0 without figures."""
    if member.figures is None:
        return 0.0
    peers = [m for m in group if m.figures is not None and (symbol is None or symbol in m.symbols)]
    whole = sum(m.figures.capital for m in peers if m.figures is not None)
    if whole <= 0:
        return 1.0 / len(peers) if peers else 0.0
    return member.figures.capital / whole


def _reason(policy: RiskPolicy, summary: GroupFigures, multiplier: float) -> str:
    spec = policy.spec
    where = "account " + summary.key if summary.key != "*" else "every account using it"
    parts = []
    if spec.kill_switch:
        parts.append(f"killSwitch is set on RiskPolicy {policy.name}")
    if summary.halted:
        parts.append(f"{where}: {summary.halted}")
    if summary.unknown:
        parts.append(f"no room while {', '.join(summary.unknown)} report no figures")
    if multiplier < 1.0:
        parts.append(f"sizes of {where} multiplied by {multiplier:.2f}")
    if not parts:
        parts.append(
            f"{where}: exposure {summary.total_exposure:.2f} of {spec.max_total_exposure_percent:g}% x "
            f"{summary.capital:.2f}"
        )
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class AccountTotals:
    """One account's (or every account's) figures for the consolidated view: what its runtimes report, added up."""

    equity: float  # the equity its Strategies trade with: each runtime's equity x its allocation / 100
    exposure: Mapping[str, float]
    total_exposure: float
    pnl_today: float
    runtimes: int  # runtimes whose figures are counted
    strategies: int  # Strategies of the account, reporting or not


def account_totals(figures: Sequence[RuntimeFigures | None]) -> AccountTotals:
    """The sum of the runtimes' figures (None: a runtime that reports none, counted as a Strategy only)."""
    known = [f for f in figures if f is not None]
    exposure: dict[str, float] = {}
    for item in known:
        for symbol, value in item.exposure.items():
            exposure[symbol] = exposure.get(symbol, 0.0) + value
    return AccountTotals(
        equity=sum(f.capital for f in known),
        exposure=dict(sorted(exposure.items())),
        total_exposure=sum(f.total_exposure for f in known),
        pnl_today=sum(f.pnl_today for f in known),
        runtimes=len(known),
        strategies=len(figures),
    )
