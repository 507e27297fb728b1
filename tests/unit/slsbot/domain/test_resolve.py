"""resolve_strategy / check_policy: what a schema cannot check, reported with the field named."""

from __future__ import annotations

from slsbot.api import RiskPolicy, RiskPolicySpec, Strategy, TradingAccount
from slsbot.domain.resolve import INVALID_SPEC, WAITING, ResolvedStrategy, check_policy, resolve_strategy


def _account(policy: str | None = "default", exchange: str = "binance") -> TradingAccount:
    spec = {"exchange": exchange}
    if policy:
        spec["riskPolicyRef"] = {"name": policy}
    return TradingAccount.model_validate({"metadata": {"name": "paper"}, "spec": spec})


def _policy(**spec) -> RiskPolicy:
    return RiskPolicy.model_validate({"metadata": {"name": "default"}, "spec": spec})


def _strategy(**extra) -> Strategy:
    spec = {
        "accountRef": {"name": "paper"},
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
        **extra,
    }
    return Strategy.model_validate({"metadata": {"name": "btc"}, "spec": spec})


def test_missing_account_waits_and_names_the_field():
    problems = resolve_strategy(_strategy(), {}, {})
    assert isinstance(problems, list)
    assert problems[0].reason == WAITING
    assert problems[0].field == "spec.accountRef.name"
    assert "'paper' does not exist" in problems[0].message


def test_missing_policy_of_the_account_waits():
    problems = resolve_strategy(_strategy(), {"paper": _account()}, {})
    assert isinstance(problems, list)
    assert "RiskPolicy 'default'" in problems[0].message


def test_invalid_policy_makes_the_strategy_wait():
    bad = _policy(perTrade={"minPercent": 20, "maxPercent": 10})
    problems = resolve_strategy(_strategy(), {"paper": _account()}, {"default": bad})
    assert isinstance(problems, list)
    assert problems[0].reason == WAITING
    assert "not valid" in problems[0].message


def test_overrides_are_applied_over_the_policy():
    resolved = resolve_strategy(
        _strategy(risk={"maxDrawdownPercent": 30}), {"paper": _account()}, {"default": _policy()}
    )
    assert isinstance(resolved, ResolvedStrategy)
    assert resolved.policy.max_drawdown_percent == 30
    assert resolved.policy.daily_loss_limit_percent == RiskPolicySpec().daily_loss_limit_percent


def test_overrides_that_contradict_the_policy_are_invalid_and_name_the_override():
    problems = resolve_strategy(
        _strategy(risk={"perTrade": {"minPercent": 12, "maxPercent": 2}}),
        {"paper": _account()},
        {"default": _policy()},
    )
    assert isinstance(problems, list)
    assert problems[0].reason == INVALID_SPEC
    assert problems[0].field == "spec.risk.perTrade.minPercent"


def test_a_policy_field_that_clashes_with_an_override_is_named_on_the_policy_not_on_the_strategy():
    # The policy's flattenAndHalt level at 12 % is beyond the Strategy's maxDrawdownPercent 10: the Strategy has no
    # circuitBreaker, so the message names the RiskPolicy's field and the override it clashes with.
    problems = resolve_strategy(
        _strategy(risk={"maxDrawdownPercent": 10}), {"paper": _account()}, {"default": _policy()}
    )
    assert isinstance(problems, list) and problems
    levels = [p for p in problems if "circuitBreaker" in p.message]
    assert levels, problems
    assert all(p.field == "spec.risk" for p in levels)
    assert "RiskPolicy 'default' spec.circuitBreaker.levels[2].drawdownPercent: 15.0 is beyond" in levels[-1].message
    assert "clashes with this Strategy's spec.risk.maxDrawdownPercent" in levels[-1].message
    assert not any("spec.risk.circuitBreaker" in p.field for p in problems)


def test_unknown_component_is_invalid():
    problems = resolve_strategy(_strategy(), {"paper": _account(policy=None)}, {}, known_components={"ema_cross"})
    assert isinstance(problems, list)
    assert problems[0].field == "spec.ensemble.members[sma].strategy"
    assert "ema_cross" in problems[0].message


def test_unknown_exchange_makes_the_strategy_wait():
    problems = resolve_strategy(
        _strategy(), {"paper": _account(policy=None, exchange="nope")}, {}, known_exchanges={"binance"}
    )
    assert isinstance(problems, list)
    assert problems[0].reason == WAITING


def test_default_policy_is_consistent():
    assert check_policy(RiskPolicySpec()) == []


def test_breaker_levels_out_of_order_are_reported():
    spec = RiskPolicySpec.model_validate(
        {
            "circuitBreaker": {
                "levels": [
                    {"action": "stopEntries", "drawdownPercent": 5},
                    {"action": "reduceSize", "drawdownPercent": 3},
                ]
            }
        }
    )
    fields = {p.field for p in check_policy(spec)}
    assert "spec.circuitBreaker.levels" in fields
    assert "spec.circuitBreaker.levels[1].drawdownPercent" in fields


def test_breaker_level_beyond_max_drawdown_could_never_trip():
    spec = RiskPolicySpec.model_validate({"maxDrawdownPercent": 12})
    problems = check_policy(spec)
    assert [p.field for p in problems] == ["spec.circuitBreaker.levels[2].drawdownPercent"]
    assert "never trip" in problems[0].message


def test_account_and_global_scopes_are_accepted_now_that_they_are_enforced():
    for scope in ("account", "global"):
        assert check_policy(RiskPolicySpec.model_validate({"scope": scope})) == []


def _experiment(**spec):
    from slsbot.api import Experiment

    return Experiment.model_validate({"metadata": {"name": "e"}, "spec": spec})


def test_experiment_waits_for_its_strategy_and_variants():
    from slsbot.domain.resolve import check_experiment

    ab = _experiment(
        type="ab",
        strategyRef={"name": "btc"},
        variants=[{"name": "a", "strategyRef": {"name": "btc"}}, {"name": "b", "strategyRef": {"name": "btc-v2"}}],
    )
    problems = check_experiment(ab, {})
    assert [p.field for p in problems] == [
        "spec.strategyRef.name",
        "spec.variants[0].strategyRef.name",
        "spec.variants[1].strategyRef.name",
    ]
    assert [p.field for p in check_experiment(ab, {"btc": _strategy()})] == ["spec.variants[1].strategyRef.name"]


def test_ab_variants_on_different_accounts_are_invalid_naming_the_variant_and_both_accounts():
    from slsbot.domain.resolve import check_experiment

    ab = _experiment(
        type="ab",
        strategyRef={"name": "btc"},
        variants=[{"name": "a", "strategyRef": {"name": "btc"}}, {"name": "b", "strategyRef": {"name": "btc-v2"}}],
    )
    other = _strategy(accountRef={"name": "live"}).model_copy(
        update={"metadata": _strategy().metadata.model_copy(update={"name": "btc-v2"})}
    )
    problems = check_experiment(ab, {"btc": _strategy(), "btc-v2": other})
    assert [(p.reason, p.field) for p in problems] == [(INVALID_SPEC, "spec.variants[1].strategyRef.name")]
    assert "'live'" in problems[0].message and "'paper'" in problems[0].message
    same = other.model_copy(update={"spec": _strategy().spec})
    assert check_experiment(ab, {"btc": _strategy(), "btc-v2": same}) == []


def test_ab_variants_on_different_timeframes_are_invalid_naming_the_variant():
    from slsbot.domain.resolve import check_experiment

    ab = _experiment(
        type="ab",
        strategyRef={"name": "btc"},
        variants=[{"name": "a", "strategyRef": {"name": "btc"}}, {"name": "b", "strategyRef": {"name": "btc-v2"}}],
    )
    problems = check_experiment(ab, {"btc": _strategy(), "btc-v2": _strategy(timeframe="5m")})
    assert [(p.reason, p.field) for p in problems] == [(INVALID_SPEC, "spec.variants[1].strategyRef.name")]
    assert "5m" in problems[0].message and "1h" in problems[0].message


def test_ab_steps_need_one_below_100_where_both_variants_trade():
    from slsbot.domain.resolve import check_experiment

    ab = _experiment(
        type="ab",
        strategyRef={"name": "btc"},
        variants=[{"name": "a", "strategyRef": {"name": "btc"}}, {"name": "b", "strategyRef": {"name": "btc-v2"}}],
        schedule={"steps": [100]},
    )
    strategies = {"btc": _strategy(), "btc-v2": _strategy()}
    assert [(p.reason, p.field) for p in check_experiment(ab, strategies)] == [(INVALID_SPEC, "spec.schedule.steps")]


def test_tuned_parameters_must_name_a_member_of_the_strategy():
    from slsbot.domain.resolve import check_experiment

    tuning = _experiment(
        type="tuning",
        strategyRef={"name": "btc"},
        searchSpace=[
            {"name": "sma.fast", "type": "int", "low": 5, "high": 20},
            {"name": "rsi.period", "type": "int", "low": 5, "high": 20},
        ],
    )
    problems = check_experiment(tuning, {"btc": _strategy()})
    assert [(p.reason, p.field) for p in problems] == [(INVALID_SPEC, "spec.searchSpace[1].name")]
    assert "its members are sma" in problems[0].message


def test_an_anomaly_window_or_cooldown_of_zero_is_refused_naming_the_field():
    spec = RiskPolicySpec.model_validate({"anomaly": {"window": "0s", "cooldown": "0m"}})
    problems = check_policy(spec)
    assert [p.field for p in problems] == ["spec.anomaly.window", "spec.anomaly.cooldown"]
    assert "use a positive duration such as 24h" in problems[0].message
    assert "use a positive duration such as 12h" in problems[1].message
    assert check_policy(RiskPolicySpec.model_validate({"anomaly": {"window": "6h", "cooldown": "30m"}})) == []
