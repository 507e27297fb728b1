from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from slsbot_runtime.strategy.library.holding import HoldFor, Holding, hold_between, hold_for

flags = st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()), max_size=60)


@settings(max_examples=150, deadline=None, database=None)
@given(flags)
def test_hold_between_equals_the_step_rules(events) -> None:
    holding = Holding()
    stepped = [holding.update(*event) for event in events]
    columns = [np.array([event[i] for event in events], dtype=bool) for i in range(4)]
    assert hold_between(*columns).tolist() == stepped


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.sampled_from([0.0, 0.0, 0.0, 1.0, -1.0]), max_size=60), st.integers(1, 6))
def test_hold_for_equals_the_step_rules(events, candles) -> None:
    held = HoldFor(candles)
    stepped, ages = [], []
    for event in events:
        stepped.append(held.update(event))
        ages.append(held.age)
    directions, age = hold_for(np.array(events), candles)
    assert directions.tolist() == stepped
    held_at = directions != 0
    assert age[held_at].tolist() == np.array(ages)[held_at].tolist()


def test_an_entry_wins_over_an_exit_on_the_same_candle_and_exits_only_end_their_side() -> None:
    holding = Holding()
    assert holding.update(True, True, False, False) == 1.0
    assert holding.update(False, False, False, True) == 1.0  # a short exit does not end a long
    assert holding.update(False, True, False, False) == 0.0
    assert holding.update(False, False, True, False) == -1.0
