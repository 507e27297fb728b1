from __future__ import annotations

from datetime import UTC, datetime

from slsbot.domain.conditions import get_condition
from slsbot.domain.plan import Action, ActionKind, ObservedRuntime, RuntimeState
from slsbot.domain.status import strategy_status

T0 = datetime(2026, 1, 1, tzinfo=UTC)
UP_TO_DATE = Action(ActionKind.WAIT, "UpToDate", "the runtime matches its spec")


def _ready(runtime_status: dict) -> ObservedRuntime:
    return ObservedRuntime(state=RuntimeState.READY, config_hash="h1", runtime_status=runtime_status)


def test_profit_figures_are_copied_from_the_runtime_status():
    status = strategy_status(
        None,
        generation=1,
        now=T0,
        observed=_ready(
            {
                "equity": 10_250.5,
                "return_pct": 2.505,
                "realized_pnl": 300.25,
                "unrealized_pnl": -49.75,
                "win_rate_pct": 55.5,
                "closed_trades": 9,
                "drawdown_pct": 1.25,
                "max_drawdown_pct": 4.5,
                "trade_count": 18,
            }
        ),
        action=UP_TO_DATE,
        config_hash="h1",
    )
    assert status.return_percent == 2.505
    assert status.realized_pnl == 300.25 and status.unrealized_pnl == -49.75
    assert status.win_rate_percent == 55.5 and status.closed_trades == 9 and status.trade_count == 18
    assert status.drawdown_percent == 1.25 and status.max_drawdown_percent == 4.5


def test_nonsense_figures_keep_the_previous_value():
    first = strategy_status(
        None, generation=1, now=T0, observed=_ready({"return_pct": 1.5}), action=UP_TO_DATE, config_hash="h1"
    )
    later = strategy_status(
        first,
        generation=1,
        now=T0,
        observed=_ready({"return_pct": float("nan"), "closed_trades": -3, "win_rate_pct": True}),
        action=UP_TO_DATE,
        config_hash="h1",
    )
    assert later.return_percent == 1.5
    assert later.closed_trades is None and later.win_rate_percent is None


def test_an_idle_runtime_says_why_in_the_trading_condition():
    status = strategy_status(
        None,
        generation=1,
        now=T0,
        observed=_ready(
            {"idle_reason": "EntriesRefused", "idle_message": "entries refused on BTC/USDT: no edge: 0.25 x Kelly"}
        ),
        action=UP_TO_DATE,
        config_hash="h1",
    )
    trading = get_condition(status.conditions, "Trading")
    assert trading is not None and trading.status == "False"
    assert trading.reason == "EntriesRefused" and "no edge" in trading.message
    assert status.idle_reason == "EntriesRefused"
    assert get_condition(status.conditions, "Ready").status == "True"


def test_a_trading_runtime_clears_the_idle_reason():
    idle = strategy_status(
        None,
        generation=1,
        now=T0,
        observed=_ready({"idle_reason": "WarmingUp", "idle_message": "12 of 50 candles"}),
        action=UP_TO_DATE,
        config_hash="h1",
    )
    trading = strategy_status(
        idle, generation=1, now=T0, observed=_ready({"equity": 10_000.0}), action=UP_TO_DATE, config_hash="h1"
    )
    assert trading.idle_reason is None
    assert get_condition(trading.conditions, "Trading").status == "True"


def test_a_malformed_idle_reason_is_not_copied():
    status = strategy_status(
        None,
        generation=1,
        now=T0,
        observed=_ready({"idle_reason": "not a reason; rm -rf", "idle_message": "x"}),
        action=UP_TO_DATE,
        config_hash="h1",
    )
    assert status.idle_reason is None
    assert get_condition(status.conditions, "Trading").status == "True"


def _models(**states: tuple[str, bool]) -> dict:
    return {
        name: {
            "version": 3,
            "state": state,
            "in_vote": in_vote,
            "reason": "no retrain for 72h" if not in_vote else None,
        }
        for name, (state, in_vote) in states.items()
    }


def test_a_model_out_of_the_vote_shows_models_degraded():
    status = strategy_status(
        None,
        generation=1,
        now=T0,
        observed=_ready({"models": _models(gbm=("ready", True), forest=("stale", False))}),
        action=UP_TO_DATE,
        config_hash="h1",
    )
    degraded = get_condition(status.conditions, "ModelsDegraded")
    assert degraded is not None and degraded.status == "True" and degraded.reason == "ModelsOutOfVote"
    assert "1 of 2" in degraded.message and "forest (stale: no retrain for 72h)" in degraded.message
    assert get_condition(status.conditions, "Ready").status == "True"  # the ensemble goes on without it
    assert get_condition(status.conditions, "Degraded").status == "False"
    back = strategy_status(
        status,
        generation=1,
        now=T0,
        observed=_ready({"models": _models(gbm=("ready", True), forest=("training", True))}),
        action=UP_TO_DATE,
        config_hash="h1",
    )
    cleared = get_condition(back.conditions, "ModelsDegraded")
    assert cleared.status == "False" and cleared.reason == "ModelsInVote"


def test_a_runtime_without_models_has_no_models_condition():
    status = strategy_status(
        None, generation=1, now=T0, observed=_ready({"equity": 1.0}), action=UP_TO_DATE, config_hash="h1"
    )
    assert get_condition(status.conditions, "ModelsDegraded") is None


def _drift(drifted: bool) -> dict:
    series = [
        {"symbol": "BTC/USDT", "name": "volume_spike", "psi": 0.312, "ks_pvalue": 1e-6, "drifted": drifted},
        {"symbol": "BTC/USDT", "name": "output", "psi": 0.05, "ks_pvalue": 0.4, "drifted": False},
    ]
    return {"odd": {"drifted": drifted, "threshold": 0.2, "fits": {"first": 1}, "series": series}}


def test_a_drifted_model_shows_in_the_drifted_condition_copied_from_the_runtime_status():
    status = strategy_status(
        None, generation=1, now=T0, observed=_ready({"drift": _drift(True)}), action=UP_TO_DATE, config_hash="h1"
    )
    drifted = get_condition(status.conditions, "Drifted")
    assert (drifted.status, drifted.reason) == ("True", "ModelDrifted")
    assert drifted.message == (
        "drifted: odd (odd BTC/USDT volume_spike psi 0.312 > 0.200); an early retrain was requested"
    )
    calm = strategy_status(
        status, generation=1, now=T0, observed=_ready({"drift": _drift(False)}), action=UP_TO_DATE, config_hash="h1"
    )
    drifted = get_condition(calm.conditions, "Drifted")
    assert (drifted.status, drifted.reason) == ("False", "NoDrift") and "odd" in drifted.message
    assert get_condition(calm.conditions, "Ready").status == "True"  # drift is not a degradation of the runtime


def test_drift_only_reported_says_so_and_drift_acted_on_says_an_early_retrain_was_requested():
    reported = _drift(True)
    reported["odd"]["early_retrain"] = False
    status = strategy_status(
        None, generation=1, now=T0, observed=_ready({"drift": reported}), action=UP_TO_DATE, config_hash="h1"
    )
    drifted = get_condition(status.conditions, "Drifted")
    assert (drifted.status, drifted.reason) == ("True", "ModelDrifted")
    assert drifted.message.startswith("drifted: odd (odd BTC/USDT volume_spike psi 0.312 > 0.200); reported only: ")
    assert "early retrain" not in drifted.message
    reported["odd"]["early_retrain"] = True
    status = strategy_status(
        status, generation=1, now=T0, observed=_ready({"drift": reported}), action=UP_TO_DATE, config_hash="h1"
    )
    assert get_condition(status.conditions, "Drifted").message.endswith("; an early retrain was requested")


def test_the_drifted_condition_goes_with_the_models_and_stays_without_news():
    status = strategy_status(
        None, generation=1, now=T0, observed=_ready({"drift": _drift(True)}), action=UP_TO_DATE, config_hash="h1"
    )
    older = strategy_status(  # a runtime that does not report drift: the condition is left as it was
        status, generation=1, now=T0, observed=_ready({"equity": 1.0}), action=UP_TO_DATE, config_hash="h1"
    )
    assert get_condition(older.conditions, "Drifted").status == "True"
    gone = strategy_status(  # the Strategy no longer has a model: nothing can drift
        older, generation=2, now=T0, observed=_ready({"drift": None}), action=UP_TO_DATE, config_hash="h1"
    )
    assert get_condition(gone.conditions, "Drifted") is None
