"""The allocation timeline and the per-period returns on allocated capital that /performance reports."""

from __future__ import annotations

import pytest

from slsbot_runtime.domain.allocation import MAX_CHANGES, AllocationTimeline, allocation_periods, check_percent
from slsbot_runtime.domain.errors import StateError

HOUR = 3_600_000


def test_each_percent_is_in_force_from_its_candle_on_and_the_first_before_it() -> None:
    timeline = AllocationTimeline().with_change(10 * HOUR, 50.0).with_change(20 * HOUR, 10.0)
    assert [timeline.percent_at(h * HOUR) for h in (0, 10, 19, 20, 99)] == [50.0, 50.0, 50.0, 10.0, 10.0]
    assert AllocationTimeline().percent_at(0, default=30.0) == 30.0


def test_a_change_replaces_later_ones_is_dropped_when_already_in_force_and_the_history_is_bounded() -> None:
    timeline = AllocationTimeline(((0, 100.0), (5, 50.0), (9, 20.0)))
    assert timeline.with_change(5, 25.0).changes == ((0, 100.0), (5, 25.0))
    assert timeline.with_change(12, 20.0) == timeline
    long = AllocationTimeline()
    for i in range(MAX_CHANGES + 10):
        long = long.with_change(i, float(i % 2))
    assert len(long.changes) == MAX_CHANGES and long.changes[-1] == (MAX_CHANGES + 9, 1.0)


def test_the_timeline_round_trips_through_json_and_refuses_what_it_did_not_write() -> None:
    timeline = AllocationTimeline(((0, 100.0), (HOUR, 12.5)))
    assert AllocationTimeline.from_json(timeline.to_json()) == timeline
    for bad in ({"0": 100}, [[0]], [["0", 100]], [[0, 101]], [[0, True]]):
        with pytest.raises(StateError, match=r"allocation\.changes"):
            AllocationTimeline.from_json(bad)


@pytest.mark.parametrize("bad", [-1, 100.01, float("inf"), float("nan"), True, "25", None])
def test_a_percent_outside_0_to_100_or_not_a_number_is_refused_naming_the_field(bad) -> None:
    with pytest.raises(ValueError, match=r"^percent: .*0 to 100"):
        check_percent(bad)
    assert check_percent(0) == 0.0 and check_percent(100) == 100.0


def test_returns_are_on_the_capital_allocated_in_the_period_before() -> None:
    timeline = AllocationTimeline(((0, 50.0), (3 * HOUR, 10.0), (4 * HOUR, 0.0)))
    equity = [1000.0, 1010.0, 1005.0, 1015.0, 1016.0, 1016.0]
    points = [(hour * HOUR, value) for hour, value in enumerate(equity)]
    periods = allocation_periods(points, timeline, since=0)
    assert [p[0] for p in periods] == [HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR, 5 * HOUR]  # ts > since only
    assert periods[0] == [HOUR, 1010.0, 505.0, pytest.approx(10 / 500)]  # made 10 on the 500 allocated before
    assert periods[1][3] == pytest.approx(-5 / 505)
    assert periods[2][2] == pytest.approx(101.5)  # 10% from this candle on
    assert periods[3][3] == pytest.approx(1 / 101.5)
    assert periods[4][2] == 0.0 and periods[4][3] is None  # nothing was allocated in the period before


def test_the_first_period_without_an_earlier_point_has_no_return() -> None:
    periods = allocation_periods([(HOUR, 1000.0), (2 * HOUR, 1100.0)], AllocationTimeline(), since=0)
    assert periods[0][3] is None and periods[1][3] == pytest.approx(0.1)
    assert allocation_periods([(HOUR, 1000.0)], AllocationTimeline(), since=HOUR) == []
