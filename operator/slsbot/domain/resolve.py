"""What a schema cannot check: references between objects, and policies that contradict themselves.

Each finding is a ``Problem`` that names the field, so the reconciler can report ``Ready=False`` with reason
``InvalidSpec`` (the user must fix this object) or ``WaitingForDependency`` (another object is missing or not
valid yet; the reconciler retries).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic.alias_generators import to_camel

from slsbot.api import Experiment, ExperimentType, RiskPolicy, RiskPolicySpec, Strategy, TradingAccount
from slsbot.api.base import parse_duration
from slsbot.api.riskpolicy import BreakerAction, RiskLimits

INVALID_SPEC = "InvalidSpec"
WAITING = "WaitingForDependency"


@dataclass(frozen=True, slots=True)
class Problem:
    reason: Literal["InvalidSpec", "WaitingForDependency"]
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class ResolvedStrategy:
    """A Strategy with everything it depends on, valid and found."""

    strategy: Strategy
    account: TradingAccount
    policy: RiskPolicySpec  # effective: the account's policy with the strategy's overrides applied
    policy_name: str | None


def check_policy(spec: RiskPolicySpec) -> list[Problem]:
    """Contradictions inside one RiskPolicy."""
    problems: list[Problem] = []
    if spec.per_trade.min_percent > spec.per_trade.max_percent:
        problems.append(
            Problem(
                INVALID_SPEC,
                "spec.perTrade.minPercent",
                f"{spec.per_trade.min_percent} is above perTrade.maxPercent {spec.per_trade.max_percent}; "
                "lower minPercent or raise maxPercent",
            )
        )
    if spec.per_trade.max_percent > spec.max_symbol_exposure_percent:
        problems.append(
            Problem(
                INVALID_SPEC,
                "spec.perTrade.maxPercent",
                f"{spec.per_trade.max_percent} exceeds maxSymbolExposurePercent {spec.max_symbol_exposure_percent}",
            )
        )
    if spec.max_symbol_exposure_percent > spec.max_total_exposure_percent:
        problems.append(
            Problem(
                INVALID_SPEC,
                "spec.maxSymbolExposurePercent",
                f"{spec.max_symbol_exposure_percent} exceeds maxTotalExposurePercent {spec.max_total_exposure_percent}",
            )
        )
    if spec.max_total_exposure_percent > 100 * spec.max_leverage:
        problems.append(
            Problem(
                INVALID_SPEC,
                "spec.maxTotalExposurePercent",
                f"{spec.max_total_exposure_percent}% needs leverage above maxLeverage {spec.max_leverage}",
            )
        )
    levels = spec.circuit_breaker.levels
    order = [BreakerAction.REDUCE_SIZE, BreakerAction.STOP_ENTRIES, BreakerAction.FLATTEN_AND_HALT]
    ranks = [order.index(BreakerAction(level.action)) for level in levels]
    if ranks != sorted(ranks) or len(set(ranks)) != len(ranks):
        problems.append(
            Problem(
                INVALID_SPEC,
                "spec.circuitBreaker.levels",
                "levels must escalate once each, in the order reduceSize, stopEntries, flattenAndHalt",
            )
        )
    for i in range(1, len(levels)):
        if levels[i].drawdown_percent <= levels[i - 1].drawdown_percent:
            problems.append(
                Problem(
                    INVALID_SPEC,
                    f"spec.circuitBreaker.levels[{i}].drawdownPercent",
                    f"{levels[i].drawdown_percent} must be above the previous level's {levels[i - 1].drawdown_percent}",
                )
            )
    for i, level in enumerate(levels):
        if level.drawdown_percent > spec.max_drawdown_percent:
            problems.append(
                Problem(
                    INVALID_SPEC,
                    f"spec.circuitBreaker.levels[{i}].drawdownPercent",
                    f"{level.drawdown_percent} is beyond maxDrawdownPercent {spec.max_drawdown_percent}; "
                    "the level could never trip",
                )
            )
    anomaly = spec.anomaly
    if parse_duration(anomaly.window).total_seconds() <= 0:
        problems.append(
            Problem(
                INVALID_SPEC,
                "spec.anomaly.window",
                f"{anomaly.window} holds no candle, so anomalies are never counted; use a positive duration such as "
                "24h",
            )
        )
    if parse_duration(anomaly.cooldown).total_seconds() <= 0:
        problems.append(
            Problem(
                INVALID_SPEC,
                "spec.anomaly.cooldown",
                f"{anomaly.cooldown}: a halt would end on the candle that starts it; use a positive duration such "
                "as 12h (or raise anomaly.count to halt less often)",
            )
        )
    return problems


def check_account(account: TradingAccount, known_exchanges: Collection[str] | None) -> list[Problem]:
    problems: list[Problem] = []
    if known_exchanges is not None and account.spec.exchange not in known_exchanges:
        problems.append(
            Problem(
                INVALID_SPEC,
                "spec.exchange",
                f"{account.spec.exchange!r} is not a ccxt exchange id (e.g. binance, bybit, okx, kraken)",
            )
        )
    return problems


def resolve_strategy(
    strategy: Strategy,
    accounts: Mapping[str, TradingAccount],
    policies: Mapping[str, RiskPolicy],
    *,
    known_exchanges: Collection[str] | None = None,
    known_components: Collection[str] | None = None,
) -> ResolvedStrategy | list[Problem]:
    """The strategy with its dependencies, or every problem that stops it, each naming its field."""
    spec = strategy.spec
    problems: list[Problem] = []
    if known_components is not None:
        for member in spec.ensemble.members:
            if member.strategy not in known_components:
                problems.append(
                    Problem(
                        INVALID_SPEC,
                        f"spec.ensemble.members[{member.name}].strategy",
                        f"{member.strategy!r} is not a known component; use one of "
                        f"{', '.join(sorted(known_components))}",
                    )
                )
    account = accounts.get(spec.account_ref.name)
    if account is None:
        problems.append(
            Problem(WAITING, "spec.accountRef.name", f"TradingAccount {spec.account_ref.name!r} does not exist")
        )
        return problems
    if check_account(account, known_exchanges):
        problems.append(
            Problem(
                WAITING,
                "spec.accountRef.name",
                f"TradingAccount {account.name!r} is not valid; see its status",
            )
        )
    policy_spec, policy_name = RiskPolicySpec(), None
    if account.spec.risk_policy_ref is not None:
        policy_name = account.spec.risk_policy_ref.name
        policy = policies.get(policy_name)
        if policy is None:
            problems.append(
                Problem(
                    WAITING,
                    "spec.accountRef.name",
                    f"RiskPolicy {policy_name!r} named by TradingAccount {account.name!r} does not exist",
                )
            )
        elif check_policy(policy.spec):
            problems.append(
                Problem(
                    WAITING,
                    "spec.accountRef.name",
                    f"RiskPolicy {policy_name!r} is not valid; see its status",
                )
            )
        else:
            policy_spec = policy.spec
    if problems:
        return problems
    try:
        effective = policy_spec.with_overrides(spec.risk)
    except ValueError as exc:
        return [Problem(INVALID_SPEC, "spec.risk", f"the overrides make the policy invalid: {exc}")]
    problems.extend(_override_problems(check_policy(effective), spec.risk, policy_name))
    if problems:
        return problems
    return ResolvedStrategy(strategy=strategy, account=account, policy=effective, policy_name=policy_name)


def _override_problems(found: list[Problem], overrides: RiskLimits | None, policy_name: str | None) -> list[Problem]:
    """Contradictions of the effective policy, named where they can be fixed. The policy alone is valid, so each
    comes from the Strategy's ``spec.risk`` overrides: a field the Strategy overrides is named ``spec.risk.<field>``;
    one it does not (say a circuit-breaker level) is named on the RiskPolicy, beside the overrides it clashes with."""
    overridden = sorted((overrides.to_wire() if overrides is not None else {}).keys())
    owner = f"RiskPolicy {policy_name!r}" if policy_name else "the default RiskPolicy"
    clashes = ", ".join(f"spec.risk.{key}" for key in overridden) or "spec.risk"
    problems = []
    for problem in found:
        path = problem.field.removeprefix("spec.")
        if path.split(".")[0].split("[")[0] in overridden:
            problems.append(Problem(INVALID_SPEC, f"spec.risk.{path}", problem.message))
        else:
            message = f"{owner} spec.{path}: {problem.message}; it clashes with this Strategy's {clashes}"
            problems.append(Problem(INVALID_SPEC, "spec.risk", message))
    return problems


_CONFIG_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9]*)((?:[.\[][A-Za-z0-9_\]\[.]*)?)$")


def config_problem(text: str, resolved: ResolvedStrategy) -> Problem:
    """A runtime's refusal of its RuntimeConfig (``"marketData.source: a testnet account ..."``) as a Problem on the
    object and field a person edits: the Strategy's ``spec.<field>``, the TradingAccount's or the RiskPolicy's."""
    field, sep, message = text.partition(": ")
    match = _CONFIG_FIELD.match(field) if sep else None
    if match is None:
        return Problem(INVALID_SPEC, "spec", text)
    head, rest = match.groups()
    if head == "account":
        name = resolved.account.name
        where = f"TradingAccount {name!r} spec{rest or ''}"
        return Problem(INVALID_SPEC, "spec.accountRef.name", f"{where}: {message}")
    if head == "risk":
        overridden = resolved.strategy.spec.risk is not None and rest.lstrip(".").split(".")[0].split("[")[0] in {
            to_camel(key) for key in resolved.strategy.spec.risk.model_dump(exclude_none=True)
        }
        if overridden or resolved.policy_name is None:
            return Problem(INVALID_SPEC, f"spec.risk{rest}", message)
        where = f"RiskPolicy {resolved.policy_name!r} spec{rest}"
        return Problem(INVALID_SPEC, "spec.accountRef.name", f"{where}: {message}")
    return Problem(INVALID_SPEC, f"spec.{field}", message)


def check_experiment(experiment: Experiment, strategies: Mapping[str, Strategy]) -> list[Problem]:
    """References of an Experiment: its Strategy and variants exist, and tuned parameters name real members."""
    spec = experiment.spec
    problems: list[Problem] = []
    target = strategies.get(spec.strategy_ref.name)
    if target is None:
        problems.append(
            Problem(WAITING, "spec.strategyRef.name", f"Strategy {spec.strategy_ref.name!r} does not exist")
        )
    for i, variant in enumerate(spec.variants):
        if variant.strategy_ref.name not in strategies:
            problems.append(
                Problem(
                    WAITING,
                    f"spec.variants[{i}].strategyRef.name",
                    f"Strategy {variant.strategy_ref.name!r} of variant {variant.name!r} does not exist",
                )
            )
    if spec.type == ExperimentType.AB:
        problems += _ab_problems(experiment, strategies)
    if target is not None and spec.type == ExperimentType.TUNING:
        members = {m.name for m in target.spec.ensemble.members}
        for i, parameter in enumerate(spec.search_space):
            member = parameter.name.split(".", 1)[0]
            if member not in members:
                problems.append(
                    Problem(
                        INVALID_SPEC,
                        f"spec.searchSpace[{i}].name",
                        f"{parameter.name!r} names member {member!r}, which Strategy {target.name!r} does not "
                        f"have; its members are {', '.join(sorted(members))}",
                    )
                )
    return sorted(problems, key=lambda p: p.reason != INVALID_SPEC)


def _ab_problems(experiment: Experiment, strategies: Mapping[str, Strategy]) -> list[Problem]:
    """An A/B test moves capital between two Strategies of one account, and compares their returns candle by candle
    (the same timeframe) at a step below 100 %."""
    spec = experiment.spec
    problems: list[Problem] = []
    if not any(step < 100 for step in spec.schedule.steps):
        problems.append(
            Problem(
                INVALID_SPEC,
                "spec.schedule.steps",
                "an A/B test compares the variants while both trade, so it needs a step below 100 before the last, "
                "e.g. [10, 25, 50, 100]",
            )
        )
    baseline = spec.baseline
    base = strategies.get(baseline.strategy_ref.name) if baseline is not None else None
    if base is None:
        return problems
    account = base.spec.account_ref.name
    for i, variant in enumerate(spec.variants):
        other = strategies.get(variant.strategy_ref.name)
        if other is not None and other.spec.timeframe != base.spec.timeframe:
            problems.append(
                Problem(
                    INVALID_SPEC,
                    f"spec.variants[{i}].strategyRef.name",
                    f"Strategy {other.name!r} trades {other.spec.timeframe} candles and the baseline {base.name!r} "
                    f"{base.spec.timeframe}: the test compares their returns candle by candle; give both the same "
                    "timeframe",
                )
            )
        if other is not None and other.spec.account_ref.name != account:
            problems.append(
                Problem(
                    INVALID_SPEC,
                    f"spec.variants[{i}].strategyRef.name",
                    f"Strategy {other.name!r} trades account {other.spec.account_ref.name!r} and the baseline "
                    f"{base.name!r} trades {account!r}: an A/B test moves capital within one account; give both "
                    "Strategies the same accountRef",
                )
            )
    return problems
