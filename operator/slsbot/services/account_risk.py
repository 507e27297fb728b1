"""The account/global risk pass: for every RiskPolicy, read the figures of the runtimes under it, decide each one's
headroom (``domain.account_risk``) and push it (``RuntimeBackend.push_headroom``). The local supervisor calls it once
per pass; the operator from a timer per RiskPolicy (``interfaces.kopf_handlers``). Both pass a ``HeadroomPushes``
that lives as long as they do.

Idempotent: a headroom is pushed when it differs from the last one pushed to that runtime (flags, multiplier, or an
amount by more than ``AccountRiskSettings.change_fraction``), or when the last one is within half its TTL of
expiring; otherwise nothing is sent. The TTL is a few passes long, so a runtime whose control plane is gone falls
back to its own limits soon after, and one missed pass changes nothing.

Policies with ``scope: strategy`` have no shared limits: their runtimes are pushed a kill-switch-only headroom
(``scope: strategy``) while the policy's ``killSwitch`` is set, so that the kill acts in this pass, before the
config change restarts the runtimes; and one that lifts it when it is cleared.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slsbot.api import RiskPolicy, Strategy, TradingAccount
from slsbot.api.riskpolicy import RiskScope
from slsbot.api.strategy import StrategyPhase
from slsbot.domain.account_risk import (
    AGGREGATED_SCOPES,
    GroupFigures,
    Headroom,
    Member,
    RuntimeFigures,
    account_headroom,
)
from slsbot.domain.errors import BackendUnavailable, InvalidSpecError, RuntimeUnreachable
from slsbot.domain.ports import RuntimeBackend

log = logging.getLogger(__name__)

#: The phases of a Strategy whose runtime runs or starts: one of them that reports no figures blocks its group's room.
RUNTIME_PHASES = frozenset(
    {StrategyPhase.PROGRESSING, StrategyPhase.RUNNING, StrategyPhase.PAUSED, StrategyPhase.DEGRADED}
)


@dataclass(frozen=True, slots=True)
class AccountRiskSettings:
    ttl: timedelta = timedelta(seconds=15)  # a few passes of the supervisor (0.5 s) or the operator's timer (3 s)
    change_fraction: float = 0.01  # an amount that moved less than this (and 1 quote unit) is not pushed again


@dataclass(slots=True)
class HeadroomPushes:
    """What was last pushed to each runtime, and each runtime's last known figures (for a pass it does not answer)."""

    pushed: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    expires: dict[tuple[str, str], datetime] = field(default_factory=dict)
    figures: dict[tuple[str, str], RuntimeFigures] = field(default_factory=dict)

    def due(self, headroom: Headroom, now: datetime, settings: AccountRiskSettings) -> bool:
        key = (headroom.namespace, headroom.name)
        last = self.pushed.get(key)
        if last is None or now >= self.expires[key] - settings.ttl / 2:
            return True
        return _differs(last, headroom.body(), settings.change_fraction)

    def limited_under(self, namespace: str, policy: str) -> bool:
        """Whether a runtime was last pushed a kill switch or a size cut by ``policy`` (to be lifted when it ends)."""
        return any(
            key[0] == namespace and body.get("policy") == policy and _was_limited(body)
            for key, body in self.pushed.items()
        )

    def forget_except(self, keys: set[tuple[str, str]], policies: set[tuple[str, str]]) -> None:
        """Forget the runtimes last pushed to under one of ``policies`` (namespace, name) that are not in ``keys`` (no
        longer under it): what other policies pushed is theirs to keep (the operator runs one policy at a time)."""
        for key in [k for k, body in self.pushed.items() if (k[0], body.get("policy")) in policies and k not in keys]:
            del self.pushed[key]
            del self.expires[key]
            self.figures.pop(key, None)


@dataclass(slots=True)
class AccountRiskReport:
    pushed: list[str] = field(default_factory=list)  # "ns/name" of each runtime pushed to
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # "ns/name" -> what the runtime answered
    errors: list[str] = field(default_factory=list)
    groups: dict[str, tuple[GroupFigures, ...]] = field(default_factory=dict)  # per "ns/policy"


def account_risk_pass(
    *,
    policies: Iterable[RiskPolicy],
    accounts: Mapping[str, Mapping[str, TradingAccount]],
    strategies: Sequence[Strategy],
    backend: RuntimeBackend,
    now: datetime,
    pushes: HeadroomPushes,
    settings: AccountRiskSettings | None = None,
    size_cuts: Collection[tuple[str, str]] | None = None,
) -> AccountRiskReport:
    """One pass over ``policies`` (of any namespace; ``accounts`` by namespace, then name; ``strategies`` not being
    deleted). ``size_cuts``: the (namespace, account) pairs under a severity-2 incident, whose runtimes' entries are
    cut to the policy's ``incidents.sizeMultiplier`` (whatever the policy's scope).
    A runtime that cannot be read or pushed to is reported in ``errors`` and tried again next pass."""
    settings = settings or AccountRiskSettings()
    report = AccountRiskReport()
    seen: set[tuple[str, str]] = set()
    processed: set[tuple[str, str]] = set()
    for policy in policies:
        processed.add((policy.namespace, policy.name))
        members = _members(policy, accounts.get(policy.namespace, {}), strategies)
        if not members:
            continue
        seen.update((s.namespace, s.name) for s, _ in members)
        if policy.spec.scope in AGGREGATED_SCOPES:
            figured = [_with_figures(backend, strategy, account, pushes, report) for strategy, account in members]
            cut = policy.spec.incidents.size_multiplier
            multipliers = {a: cut for (ns, a) in (size_cuts or ()) if ns == policy.namespace}
            decision = account_headroom(policy, figured, now=now, ttl=settings.ttl, size_multipliers=multipliers)
            report.groups[f"{policy.namespace}/{policy.name}"] = decision.groups
            headrooms: Sequence[Headroom] = decision.headrooms
        else:
            cuts = {a for (ns, a) in (size_cuts or ()) if ns == policy.namespace}
            headrooms = [
                _strategy_scope(policy, strategy, now, settings, cut=account in cuts)
                for strategy, account in members
                if policy.spec.kill_switch
                or account in cuts
                or _was_limited(pushes.pushed.get((strategy.namespace, strategy.name), {}))
            ]
        for headroom in headrooms:
            if pushes.due(headroom, now, settings):
                _push(backend, headroom, pushes, report)
    pushes.forget_except(seen, processed)
    return report


def _members(
    policy: RiskPolicy, accounts: Mapping[str, TradingAccount], strategies: Sequence[Strategy]
) -> list[tuple[Strategy, str]]:
    """Every Strategy of an account that uses ``policy``, with its account's name."""
    using = {
        name
        for name, account in accounts.items()
        if account.spec.risk_policy_ref is not None and account.spec.risk_policy_ref.name == policy.name
    }
    return [
        (s, s.spec.account_ref.name)
        for s in strategies
        if s.namespace == policy.namespace and s.spec.account_ref.name in using
    ]


def _with_figures(
    backend: RuntimeBackend, strategy: Strategy, account: str, pushes: HeadroomPushes, report: AccountRiskReport
) -> Member:
    key = (strategy.namespace, strategy.name)
    try:
        status = backend.runtime_status(strategy.namespace, strategy.name)
        figures = RuntimeFigures.from_status(status, strategy.spec.allocation_percent)
    except (RuntimeUnreachable, BackendUnavailable) as exc:
        report.errors.append(f"{strategy.namespace}/{strategy.name}: figures: {exc}")
        figures = None
    if figures is not None:
        pushes.figures[key] = figures
    else:
        figures = pushes.figures.get(key)  # the last known, while it does not answer
    phase = strategy.status.phase if strategy.status is not None else StrategyPhase.PENDING
    running = phase in RUNTIME_PHASES
    return Member(strategy.namespace, strategy.name, account, tuple(strategy.spec.symbols), figures, running)


def _was_limited(pushed: Mapping[str, Any]) -> bool:
    """A push of a strategy-scope policy that must be lifted by another: a kill switch, or a size cut."""
    return bool(pushed.get("kill_switch")) or float(pushed.get("size_multiplier", 1.0)) < 1.0


def _strategy_scope(
    policy: RiskPolicy, strategy: Strategy, now: datetime, settings: AccountRiskSettings, *, cut: bool
) -> Headroom:
    """A scope-strategy policy shares no room: its push carries only the kill switch and a severity-2 size cut (or
    lifts them)."""
    kill = policy.spec.kill_switch
    multiplier = policy.spec.incidents.size_multiplier if cut else 1.0
    reason = f"killSwitch is {'set' if kill else 'cleared'} on RiskPolicy {policy.name}"
    if cut:
        reason += f"; entries cut to x{multiplier} while a severity-2 incident of the account is open"
    return Headroom(
        namespace=strategy.namespace,
        name=strategy.name,
        scope=str(RiskScope.STRATEGY),
        policy=policy.name,
        total_exposure=None,
        symbol_exposure={},
        halt_entries=False,
        size_multiplier=multiplier,
        kill_switch=kill,
        reason=reason,
        expires_at=now + settings.ttl,
    )


def _push(backend: RuntimeBackend, headroom: Headroom, pushes: HeadroomPushes, report: AccountRiskReport) -> None:
    key = (headroom.namespace, headroom.name)
    body = headroom.body()
    try:
        answer = backend.push_headroom(headroom.namespace, headroom.name, body)
    except (RuntimeUnreachable, BackendUnavailable, InvalidSpecError) as exc:
        report.errors.append(f"{headroom.namespace}/{headroom.name}: headroom: {exc}")
        return
    before = pushes.pushed.get(key)
    if (
        before is None
        or before.get("kill_switch") != headroom.kill_switch
        or before.get("halt_entries") != (headroom.halt_entries)
    ):
        log.log(
            logging.WARNING if headroom.kill_switch or headroom.halt_entries else logging.INFO,
            "headroom for %s/%s (%s RiskPolicy %s): kill_switch=%s halt_entries=%s: %s",
            headroom.namespace,
            headroom.name,
            headroom.scope,
            headroom.policy,
            headroom.kill_switch,
            headroom.halt_entries,
            headroom.reason,
        )
    pushes.pushed[key] = body
    pushes.expires[key] = headroom.expires_at
    report.pushed.append(f"{headroom.namespace}/{headroom.name}")
    report.answers[f"{headroom.namespace}/{headroom.name}"] = answer


def _differs(last: Mapping[str, Any], new: Mapping[str, Any], fraction: float) -> bool:
    for name in ("scope", "policy", "halt_entries", "size_multiplier", "kill_switch"):
        if last.get(name) != new.get(name):
            return True
    if (last.get("total_exposure") is None) != (new.get("total_exposure") is None):
        return True
    pairs = [(last.get("total_exposure"), new.get("total_exposure"))]
    old_symbols, new_symbols = last.get("symbol_exposure") or {}, new.get("symbol_exposure") or {}
    if set(old_symbols) != set(new_symbols):
        return True
    pairs.extend((old_symbols[s], new_symbols[s]) for s in new_symbols)
    for old, value in pairs:
        if old is None or value is None:
            continue
        if abs(value - old) > max(fraction * max(abs(old), abs(value)), 1.0):
            return True
    return False
