from __future__ import annotations

import numpy as np
import pytest

from slsbot.api import Ensemble as EnsembleSpec
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.domain.types import Candle, Signal
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams
from slsbot_runtime.strategy.ensemble import Ensemble, EnsembleSettings
from slsbot_runtime.strategy.registry import build_component
from slsbot_runtime.strategy.wrapper import SafeComponent


class Scripted(StrategyComponent):
    """Plays back a fixed list of directions and confidences, step by step or all at once."""

    id = "scripted"

    class Params(StrategyParams):
        pass

    warmup = 1

    def __init__(self, directions, confidences=None) -> None:
        super().__init__()
        self.directions = [float(d) for d in directions]
        self.confidences = [1.0] * len(self.directions) if confidences is None else list(confidences)
        self.t = 0

    def on_candle(self, candle, features):
        signal = Signal(self.directions[self.t], self.confidences[self.t])
        self.t += 1
        return signal

    def signal_arrays(self, history, features):
        n = len(history)
        return np.array(self.directions[:n]), np.array(self.confidences[:n])


class StepOnly(StrategyComponent):
    """A component with no vectorized form."""

    id = "step_only"

    class Params(StrategyParams):
        pass

    warmup = 1

    def on_candle(self, candle, features):
        return Signal(1.0)


class Raises(Scripted):
    id = "raises"

    def on_candle(self, candle, features):
        raise RuntimeError("bug in user code")


def _history(closes) -> OHLCV:
    close = np.asarray(closes, dtype=float)
    return OHLCV("T/USDT", np.arange(len(close), dtype=np.int64) * 3_600_000, close, close, close, close, close)


def _run(ensemble: Ensemble, closes) -> list:
    history = _history(closes)
    return [ensemble.decide(history.candle(i), {}) for i in range(len(history))]


def _ensemble(members: dict[str, tuple[Scripted, float]], **options) -> Ensemble:
    return Ensemble.from_members([SafeComponent(name, c, w) for name, (c, w) in members.items()], **options)


def test_majority_is_a_sign_vote_weighted_by_member_weight() -> None:
    def members(weight_of_c: float):
        return {
            "a": (Scripted([0.3]), 1.0),
            "b": (Scripted([1.0]), 1.0),
            "c": (Scripted([-1.0]), weight_of_c),
        }

    decision = _run(_ensemble(members(5.0), voting="majority", correlation_penalty=0), [100.0])[0]
    assert decision.direction == pytest.approx(-3 / 7)
    assert decision.attribution == pytest.approx({"a": 1 / 7, "b": 1 / 7, "c": -5 / 7})
    assert sum(decision.attribution.values()) == pytest.approx(decision.net_vote)
    assert decision.driver == "c"

    decision = _run(_ensemble(members(1.0), voting="majority", correlation_penalty=0), [100.0])[0]
    assert decision.direction == pytest.approx(1 / 3)
    assert decision.driver == "a"  # equal contributions: the first member in order drives


def test_confidence_voting_lets_a_sure_member_outvote_an_unsure_one() -> None:
    def members():
        return {"unsure": (Scripted([1.0], [0.2]), 1.0), "sure": (Scripted([-1.0], [0.9]), 1.0)}

    majority = _run(_ensemble(members(), voting="majority"), [100.0])[0]
    assert majority.direction == 0.0 and majority.driver == ""
    decision = _run(_ensemble(members(), voting="confidence"), [100.0])[0]
    assert decision.direction == pytest.approx(-0.35)
    assert decision.driver == "sure"
    assert decision.confidence == pytest.approx(0.9)
    assert decision.attribution == pytest.approx({"unsure": 0.1, "sure": -0.45})


def test_sharpe_voting_drops_the_member_whose_own_signal_lost_money() -> None:
    window = 20
    rising = [100.0 * 1.01**i for i in range(60)]
    members = {"bull": (Scripted([1.0] * 60), 1.0), "bear": (Scripted([-1.0] * 60), 1.0)}
    ensemble = _ensemble(members, voting="sharpe", settings=EnsembleSettings(sharpe_window=window))
    decisions = _run(ensemble, rising)
    assert all(d.direction == 0.0 for d in decisions[:window])  # equal weights cancel while warming up
    later = decisions[window + 1 :]
    assert all(d.direction == 1.0 and d.driver == "bull" for d in later)
    assert all(d.attribution["bear"] == 0.0 and d.weights["bear"] == 0.0 for d in later)


def test_the_correlation_penalty_down_weights_a_duplicated_member() -> None:
    rng = np.random.default_rng(3)
    pattern = rng.choice([-1.0, 1.0], size=80)
    opposite = -pattern
    window = 30

    def members():
        return {
            "copy_1": (Scripted(pattern), 1.0),
            "copy_2": (Scripted(pattern), 1.0),
            "other": (Scripted(opposite), 1.0),
        }

    closes = [100.0] * 80
    plain = _run(_ensemble(members(), correlation_penalty=0.0, settings=EnsembleSettings(window)), closes)
    full = _run(_ensemble(members(), correlation_penalty=1.0, settings=EnsembleSettings(window)), closes)
    half = _run(_ensemble(members(), correlation_penalty=0.5, settings=EnsembleSettings(window)), closes)
    t = 60
    assert plain[t].weights == pytest.approx({"copy_1": 1 / 3, "copy_2": 1 / 3, "other": 1 / 3})
    assert full[t].weights == pytest.approx({"copy_1": 0.25, "copy_2": 0.25, "other": 0.5})
    assert half[t].weights["copy_1"] == pytest.approx((1 / 1.5) / (2 / 1.5 + 1))
    assert abs(plain[t].direction) == pytest.approx(1 / 3)
    assert full[t].direction == 0.0  # the two copies now count as one member
    assert plain[window - 2].weights == full[window - 2].weights  # no penalty before the window is full


def test_min_agreement_holds_back_a_weak_vote_but_keeps_the_attribution() -> None:
    members = {"a": (Scripted([1.0]), 1.0), "b": (Scripted([1.0]), 1.0), "c": (Scripted([-1.0]), 1.0)}
    decision = _run(_ensemble(members, min_agreement=0.5), [100.0])[0]
    assert decision.direction == 0.0 and decision.driver == "" and decision.confidence == 0.0
    assert decision.net_vote == pytest.approx(1 / 3)
    assert sum(decision.attribution.values()) == pytest.approx(1 / 3)


def test_a_failing_member_is_flat_and_counted_while_the_others_decide() -> None:
    members = {"ok": (Scripted([1.0, 1.0, -1.0]), 1.0), "bad": (Raises([1.0] * 3), 1.0)}
    ensemble = _ensemble(members)
    decisions = _run(ensemble, [100.0, 101.0, 102.0])
    assert [d.direction for d in decisions] == [0.5, 0.5, -0.5]
    assert all(d.attribution["bad"] == 0.0 and d.driver == "ok" for d in decisions)
    assert ensemble.errors == {"ok": 0, "bad": 3}


def test_decide_batch_needs_every_member_vectorized_and_says_which_is_not() -> None:
    ensemble = _ensemble({"fast": (Scripted([1.0]), 1.0), "slow": (StepOnly(), 1.0)})
    assert not ensemble.supports_batch()
    with pytest.raises(ValueError, match="slow cannot: run the step mode"):
        ensemble.decide_batch(_history([1.0]), {})


def _library_members(duplicate: bool = True) -> list[SafeComponent]:
    members = [
        SafeComponent("trend", build_component("sma_cross", 1, {"fast": 12, "slow": 48})),
        SafeComponent("revert", build_component("rsi_reversion"), 2.0),
        SafeComponent("breakout", build_component("donchian_breakout")),
        SafeComponent("momentum", build_component("roc_momentum", 1, {"period": 24}), 0.5),
    ]
    if duplicate:
        members.append(SafeComponent("trend-copy", build_component("sma_cross", 1, {"fast": 12, "slow": 48})))
    return members


@pytest.mark.parametrize("voting", ["majority", "confidence", "sharpe"])
def test_decide_batch_equals_decide_on_real_candles(btc_2024: OHLCV, voting: str) -> None:
    history = btc_2024.slice(0, 4_000)
    options = {"voting": voting, "correlation_penalty": 0.7, "min_agreement": 0.2}
    stepped_ensemble = Ensemble.from_members(_library_members(), **options)
    stepped = [stepped_ensemble.decide(history.candle(i), {}) for i in range(len(history))]
    batch_ensemble = Ensemble.from_members(_library_members(), **options)
    assert batch_ensemble.supports_batch()
    batch = batch_ensemble.decide_batch(history, {})

    np.testing.assert_allclose([d.direction for d in stepped], batch.direction, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([d.confidence for d in stepped], batch.confidence, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([d.net_vote for d in stepped], batch.net_vote, rtol=1e-9, atol=1e-12)
    assert [d.driver for d in stepped] == [batch.driver_name(t) for t in range(len(history))]
    for t in (100, 1_000, 3_999):
        assert stepped[t].attribution == pytest.approx(batch.attribution(t), abs=1e-12)
    acted = batch.direction != 0
    assert acted.mean() > 0.2, "the ensemble should act on real data"
    assert {d.driver for d in stepped} - {""} <= set(batch.names)


def test_from_spec_builds_the_members_and_reports_a_bad_one_by_name() -> None:
    spec = EnsembleSpec.model_validate(
        {
            "members": [
                {"name": "trend", "strategy": "sma_cross", "params": {"fast": 5, "slow": 20}, "weight": 2},
                {"name": "revert", "strategy": "rsi_reversion"},
            ],
            "voting": "confidence",
            "correlationPenalty": 0.3,
            "minAgreement": 0.1,
        }
    )
    ensemble = Ensemble(spec)
    assert ensemble.names == ("trend", "revert")
    assert ensemble.voting == "confidence" and ensemble.min_agreement == 0.1
    assert ensemble.members[0].weight == 2.0 and ensemble.warmup == 20

    bad = spec.model_copy(update={"members": [spec.members[0].model_copy(update={"strategy": "rsi_reverse"})]})
    with pytest.raises(ConfigError, match=r"ensemble\.members\[trend\]\.strategy: unknown strategy 'rsi_reverse'"):
        Ensemble(bad)


def test_a_single_member_ensemble_passes_its_signal_through() -> None:
    ensemble = Ensemble.from_members([SafeComponent("only", Scripted([1.0, -0.5, 0.0], [0.7, 0.4, 0.0]))])
    decisions = _run(ensemble, [1.0, 2.0, 3.0])
    assert [d.direction for d in decisions] == [1.0, -1.0, 0.0]  # majority votes the sign
    assert [d.confidence for d in decisions] == [0.7, 0.4, 0.0]
    assert [d.driver for d in decisions] == ["only", "only", ""]


def test_candles_are_what_the_members_see() -> None:
    seen: list[Candle] = []

    class Recorder(Scripted):
        def on_candle(self, candle, features):
            seen.append(candle)
            return super().on_candle(candle, features)

    _run(Ensemble.from_members([SafeComponent("r", Recorder([0.0, 0.0]))]), [5.0, 6.0])
    assert [c.close for c in seen] == [5.0, 6.0]


class _NeedsRsi(Scripted):
    id = "needs_rsi"
    required_features = ("rsi_14", "atr_14_pct")


def test_the_ensemble_lists_the_features_its_members_read_and_refuses_duplicate_names() -> None:
    members = [SafeComponent("a", _NeedsRsi([0.0])), SafeComponent("b", Scripted([0.0]))]
    assert Ensemble.from_members(members).required_features == ("rsi_14", "atr_14_pct")
    with pytest.raises(ValueError, match="names must be unique"):
        Ensemble.from_members([SafeComponent("a", Scripted([0.0])), SafeComponent("a", Scripted([0.0]))])
