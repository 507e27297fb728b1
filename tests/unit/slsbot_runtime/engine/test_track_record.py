"""``SignalTrackRecord`` keeps its wins and losses as results come and go; its answer is, bit for bit, the one
picked out of the window afresh (the formula it had before it kept them)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from slsbot_runtime.engine.track_record import SignalTrackRecord


def _afresh(record: SignalTrackRecord) -> tuple[float | None, float | None]:
    results = list(record._results)
    if len(results) < record.min_trades:
        return None, None
    wins = [r for r in results if r > 0]
    losses = [-r for r in results if r <= 0]
    if not wins or not losses or sum(losses) == 0:
        return None, None
    return len(wins) / len(results), (sum(wins) / len(wins)) / (sum(losses) / len(losses))


steps = st.tuples(
    st.sampled_from([None, -1, 0, 1]),
    st.one_of(st.floats(1.0, 2.0), st.sampled_from([1.0, 1.002, 0.998, 1.5, float("nan")])),
)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(steps, max_size=400),
    cost=st.sampled_from([0.0, 0.002]),
    window=st.integers(1, 30),
    min_trades=st.integers(0, 10),
)
def test_the_kept_wins_and_losses_answer_what_the_window_gives_afresh(
    steps: list[tuple[int | None, float]], cost: float, window: int, min_trades: int
) -> None:
    record = SignalTrackRecord(cost, window=window, min_trades=min_trades)
    for target, close in steps:
        record.observe(target, close)
        assert repr(record.win_rate_and_payoff()) == repr(_afresh(record))
    assert len(record._results) <= window
