from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from slsbot_runtime.strategy.member_stats import (
    SHARPE_CAP,
    MemberSharpe,
    SignalCorrelation,
    correlation_factors,
    member_sharpes,
)

directions = st.sampled_from([-1.0, 0.0, 1.0, 1.0, -1.0, 0.5, -0.3])


@settings(max_examples=120, deadline=None, database=None)
@given(st.lists(st.tuples(directions, directions, directions), min_size=1, max_size=90), st.integers(2, 12))
def test_step_correlation_factors_equal_the_vectorized_ones(rows, window) -> None:
    tracker = SignalCorrelation(3, window)
    stepped = []
    for row in rows:
        tracker.update(row)
        stepped.append(tracker.factors(1.0) or [1.0, 1.0, 1.0])
    batch = correlation_factors(np.array(rows), window, 1.0)
    np.testing.assert_allclose(np.array(stepped), batch, rtol=1e-9, atol=1e-9)


def test_identical_members_share_one_weight_and_opposite_ones_keep_theirs() -> None:
    rng = np.random.default_rng(1)
    a = rng.choice([-1.0, 1.0], 50)
    tracker = SignalCorrelation(3, 20)
    for x in a:
        tracker.update((x, x, -x))
    assert tracker.factors(1.0) == [0.5, 0.5, 1.0]
    assert tracker.factors(0.0) == [1.0, 1.0, 1.0]


def test_members_that_never_changed_count_as_identical_only_when_they_are() -> None:
    tracker = SignalCorrelation(3, 5)
    for _ in range(5):
        tracker.update((1.0, 1.0, -1.0))
    assert tracker.factors(1.0) == [0.5, 0.5, 1.0]


@settings(max_examples=80, deadline=None, database=None)
@given(
    st.lists(st.tuples(st.floats(0.5, 2.0), directions, directions), min_size=2, max_size=80),
    st.integers(2, 15),
)
def test_step_sharpe_ratios_equal_the_vectorized_ones(rows, window) -> None:
    closes = np.cumprod([row[0] for row in rows]) * 100
    signals = np.array([row[1:] for row in rows])
    tracker = MemberSharpe(2, window)
    stepped = []
    for close, row in zip(closes, signals, strict=True):
        tracker.update(float(close), tuple(row))
        stepped.append(tracker.ratios() or [np.nan, np.nan])
    batch = member_sharpes(closes, signals, window)
    np.testing.assert_allclose(np.array(stepped), batch, rtol=1e-7, atol=1e-9)
    assert np.nanmax(np.abs(batch), initial=0.0) <= SHARPE_CAP


def test_correlation_factors_of_unit_directions_equal_the_step_ones_bit_for_bit() -> None:
    """With directions of -1, 0 and 1 (every library component's) both sides sum exactly, and compute each
    correlation and factor with the same operations: the weights fast mode votes with are the step mode's."""
    rng = np.random.default_rng(3)
    members, window = 12, 100
    rows = rng.choice([-1.0, 0.0, 1.0], size=(1_500, members))
    rows[:, 3] = rows[:, 2]  # two identical members
    rows[400:700, 5] = 1.0  # one that does not move for longer than a window
    tracker = SignalCorrelation(members, window)
    stepped = []
    for row in rows:
        tracker.update(tuple(row.tolist()))
        stepped.append(tracker.factors(0.5) or [1.0] * members)
    assert correlation_factors(rows, window, 0.5).tolist() == stepped
