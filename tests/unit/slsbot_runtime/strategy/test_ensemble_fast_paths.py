"""The ensemble's per-candle shortcuts give exactly what the general arithmetic gives:

* ``combine_one`` is ``combine`` of a single vote, bit for bit;
* a one-member ensemble decides as the same member with a silent second member of weight 0 would not (the
  general path is checked directly against ``combine``);
* ``EnsembleDecision``'s attribution and weights, built on first read, hold the general formulas;
* ``SignalCorrelation`` keeps its sums exactly equal to the sums over its window, and its factors equal the
  pairwise formula computed from scratch, while directions are -1, 0 or 1.
"""

from __future__ import annotations

import math
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from slsbot_runtime.domain.types import Candle, Signal
from slsbot_runtime.strategy.ensemble import Ensemble
from slsbot_runtime.strategy.member_stats import SignalCorrelation
from slsbot_runtime.strategy.voting import combine, combine_batch, combine_one
from slsbot_runtime.strategy.wrapper import SafeComponent

unit = st.floats(-1.0, 1.0, allow_nan=False)
votes = st.one_of(st.sampled_from([-1.0, -0.0, 0.0, 1.0]), unit, st.floats(-1e-300, 1e-300))
confidences = st.floats(0.0, 1.0, allow_nan=False)
weights = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 2.0]), st.floats(0.0, 1e6, allow_nan=False))


@settings(max_examples=2000, deadline=None)
@given(vote=votes, confidence=confidences, weight=weights, min_agreement=st.floats(0.0, 1.0))
def test_combine_one_is_combine_of_one_vote(
    vote: float, confidence: float, weight: float, min_agreement: float
) -> None:
    one = combine_one(vote, confidence, weight, min_agreement)
    general = combine([vote], [confidence], [weight], min_agreement)
    assert repr(one) == repr(general)  # repr tells -0.0 from 0.0


class Scripted:
    """A component that answers a fixed list of signals, one per candle."""

    id = "scripted"
    warmup = 0

    def __init__(self, signals: list[tuple[float, float]]) -> None:
        self.signals = iter(signals)

    def on_candle(self, candle: Candle, features: object) -> Signal:
        direction, confidence = next(self.signals)
        return Signal(direction, confidence)


def test_a_one_member_ensemble_decides_what_the_general_vote_gives() -> None:
    rng = random.Random(4)
    signals = [(rng.choice([-1.0, 0.0, 1.0, rng.uniform(-1, 1)]), rng.random()) for _ in range(400)]
    for voting in ("majority", "confidence"):
        for weight, min_agreement in ((1.0, 0.0), (2.5, 0.3), (0.0, 0.0)):
            ensemble = Ensemble.from_members(
                [SafeComponent("only", Scripted(signals), weight)], voting=voting, min_agreement=min_agreement
            )
            for t, (direction, confidence) in enumerate(signals):
                decision = ensemble.decide(Candle("T/USDT", t, 1.0, 1.0, 1.0, 1.0, 1.0), {})
                vote = (math.copysign(1.0, direction) if direction else 0.0) if voting == "majority" else direction
                if voting == "confidence":
                    vote = direction * confidence
                expected = combine([vote], [confidence], [weight], min_agreement)
                assert (decision.direction, decision.confidence, decision.net_vote) == expected[:3]
                assert decision.driver == ("only" if expected.driver == 0 else "")
                assert decision.attribution == {"only": expected.contributions[0]}
                assert decision.weights == {"only": 1.0 if weight > 0 else 0.0}


@settings(max_examples=500, deadline=None)
@given(
    signals=st.lists(st.tuples(st.sampled_from([-0.0, 0.0, 1.0, -1.0, 0.25]), st.sampled_from([-0.0, 0.0, 0.5, 1.0]))),
    weight=st.sampled_from([0.0, -0.0, 1.0, 2.5, math.inf, math.nan]),
    min_agreement=st.sampled_from([0.0, 0.3]),
    voting=st.sampled_from(["majority", "confidence"]),
)
def test_a_lone_member_without_an_opinion_decides_bit_for_bit_what_the_vote_gives(
    signals: list[tuple[float, float]], weight: float, min_agreement: float, voting: str
) -> None:
    """A +0.0 vote's decision is built once and handed out again: it is every field of the one the vote builds
    (repr tells -0.0 from 0.0 and shows NaN), whatever the confidence; a -0.0 vote still goes through the vote."""
    ensemble = Ensemble.from_members(
        [SafeComponent("only", Scripted(signals), weight)], voting=voting, min_agreement=min_agreement
    )
    for t, (direction, confidence) in enumerate(signals):
        decision = ensemble.decide(Candle("T/USDT", t, 1.0, 1.0, 1.0, 1.0, 1.0), {})
        if voting == "majority":
            vote = 1.0 if direction > 0 else (-1.0 if direction < 0 else 0.0)
        else:
            vote = direction * confidence
        expected = combine([vote], [confidence], [weight], min_agreement)
        assert repr((decision.direction, decision.confidence, decision.net_vote)) == repr(expected[:3])
        assert repr(decision.attribution) == repr({"only": expected.contributions[0]})
        assert decision.driver == ("only" if expected.driver == 0 else "")


def test_decisions_compare_and_show_every_field() -> None:
    def run() -> list:
        members = [SafeComponent("a", Scripted([(1.0, 0.5)]), 1.0), SafeComponent("b", Scripted([(-1.0, 1.0)]), 3.0)]
        ensemble = Ensemble.from_members(members, correlation_penalty=0.0)
        return [ensemble.decide(Candle("T/USDT", 0, 1.0, 1.0, 1.0, 1.0, 1.0), {})]

    first, second = run()[0], run()[0]
    assert first == second and first.weights == {"a": 0.25, "b": 0.75}
    assert first.attribution == {"a": 0.25, "b": -0.75} and first.driver == "b"
    assert "attribution={'a': 0.25, 'b': -0.75}" in repr(first)


def _reference_factors(rows: list[tuple[float, ...]], penalty: float) -> list[float]:
    """The correlation factors from sums taken afresh over the window (exact for integer directions)."""
    columns = list(zip(*rows, strict=True))
    m, n = len(columns), float(len(rows))
    s = [math.fsum(c) for c in columns]
    p = [[math.fsum(a * b for a, b in zip(columns[i], columns[j], strict=True)) for j in range(m)] for i in range(m)]
    excess = [0.0] * m
    for i in range(m):
        for j in range(i + 1, m):
            var_i, var_j = n * p[i][i] - s[i] * s[i], n * p[j][j] - s[j] * s[j]
            if var_i <= 1e-9 * n * p[i][i] or var_j <= 1e-9 * n * p[j][j]:
                distance = p[i][i] + p[j][j] - 2.0 * p[i][j]
                rho = 1.0 if distance <= 1e-9 * (p[i][i] + p[j][j]) else 0.0
            else:
                rho = (n * p[i][j] - s[i] * s[j]) / math.sqrt(var_i * var_j)
            if rho > 0:
                excess[i] += rho
                excess[j] += rho
    return [1.0 / (1.0 + penalty * e) for e in excess]


def test_correlation_sums_stay_exact_and_factors_equal_a_fresh_computation() -> None:
    rng = np.random.default_rng(7)
    members, window = 6, 25
    tracker = SignalCorrelation(members, window)
    row = tuple(float(x) for x in rng.choice([-1.0, 0.0, 1.0], size=members))
    rows = []
    for t in range(600):
        if rng.random() < 0.3:
            row = tuple(float(x) for x in rng.choice([-1.0, 0.0, 1.0], size=members))
        current = (0.5, *row[1:]) if t == 300 else row  # one fractional direction passes through the window
        tracker.update(current)
        rows = [*rows, current][-window:]
        if len(rows) == window and not (300 <= t < 300 + window):
            assert tracker.factors(0.7) == _reference_factors(rows, 0.7), t


def test_a_one_member_batch_vote_equals_the_vote_with_a_silent_second_member() -> None:
    rng = np.random.default_rng(5)
    n = 5_000
    votes = rng.choice([-1.0, -0.0, 0.0, 1.0, 0.4, -1e-13], size=(n, 1))
    confidences = rng.uniform(0.0, 1.0, (n, 1))
    for weights in (np.full((n, 1), 2.5), rng.choice([0.0, -0.0, 1.0, 1e-300], size=(n, 1))):
        for min_agreement in (0.0, 0.3):
            one = combine_batch(votes, confidences, weights, min_agreement)
            two = combine_batch(
                np.hstack([votes, np.zeros((n, 1))]),
                np.hstack([confidences, np.zeros((n, 1))]),
                np.hstack([weights, np.zeros((n, 1))]),
                min_agreement,
            )
            for name in ("direction", "confidence", "net", "driver"):
                assert np.array_equal(getattr(one, name), getattr(two, name)), name
            assert np.array_equal(one.contributions, two.contributions[:, :1])
            for t in range(0, n, 97):  # and each row is the step path's vote
                step = combine_one(float(votes[t, 0]), float(confidences[t, 0]), float(weights[t, 0]), min_agreement)
                assert (one.direction[t], one.confidence[t], one.net[t], one.driver[t]) == (
                    step.direction,
                    step.confidence,
                    step.net,
                    step.driver,
                )


def test_a_batch_vote_of_twelve_members_equals_the_step_vote_bit_for_bit() -> None:
    """Fast mode sizes entries from the batch confidence: its sums must be the step path's, added in member order
    (numpy's own row sum adds twelve numbers in another order and rounds differently)."""
    rng = np.random.default_rng(11)
    n, m = 4_000, 12
    votes = rng.choice([-1.0, 0.0, 1.0], size=(n, m)) * rng.choice([1.0, 0.37, 0.91], size=(n, m))
    confidences = rng.uniform(0.0, 1.0, (n, m))
    weights = rng.uniform(0.05, 3.0, (n, m)) * rng.choice([0.0, 1.0, 1.0, 1.0], size=(n, m))
    for min_agreement in (0.0, 0.2):
        batch = combine_batch(votes, confidences, weights, min_agreement)
        for t in range(n):
            step = combine(votes[t].tolist(), confidences[t].tolist(), weights[t].tolist(), min_agreement)
            assert (batch.direction[t], batch.confidence[t], batch.net[t]) == step[:3], t
            assert batch.contributions[t].tolist() == step.contributions, t
