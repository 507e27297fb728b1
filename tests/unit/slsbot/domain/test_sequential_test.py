"""The A/B rollout's sequential test: hand-checked values, its state, its input errors, and by simulation over real
BTC and ETH hourly returns (the repository's data/market), its false-promotion rate and its power."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from slsbot.bench.ab_test import SYMBOLS, hourly_returns
from slsbot.domain.sequential_simulation import Scenario, clopper_pearson, simulate, simulate_returns
from slsbot.domain.sequential_test import (
    SequentialDesign,
    SequentialState,
    SequentialTestInputError,
    Verdict,
    block_log_wealth,
    decide_test,
    first_verdicts,
    update_test,
)

# Blocks of 2 periods, one block to measure the scale, blocks clipped at 2 typical blocks, a single stake of 0.5.
TINY = SequentialDesign(periods_per_block=2, scale_blocks=1, clip_scales=2.0, bets=(0.5,), min_blocks=2)
# A single stake of 0.9 on blocks clipped at 1 typical block: each winning block multiplies the wealth by 1.9.
BOLD = SequentialDesign(alpha=0.25, periods_per_block=1, scale_blocks=1, clip_scales=1.0, bets=(0.9,), min_blocks=2)


def blocks_of(differences: list[float]) -> list[tuple[float, float]]:
    """One-period blocks whose candidate minus baseline is each of ``differences``."""
    return [(0.001, 0.001 + d) for d in differences]


def test_a_tiny_sequence_by_hand() -> None:
    state = update_test(SequentialState(), [(0.0, 0.01), (0.0, 0.01)], TINY)
    # block 1: difference 0.02, only measures the scale (0.02): not tested
    assert (state.blocks, state.tested_blocks) == (1, 0)
    assert state.log_wealth_promote == [0.0] and state.log_wealth_rollback == [0.0]
    # block 2: difference 0.02 = 1 typical block -> x = 1/2; wealth 1 + 0.5 * 0.5 = 1.25 for, 0.75 against
    state = update_test(state, [(0.01, 0.02), (0.0, 0.01)], TINY)
    assert math.exp(state.log_wealth_promote[0]) == pytest.approx(1.25)
    assert math.exp(state.log_wealth_rollback[0]) == pytest.approx(0.75)
    # block 3: difference -0.06 = -3 typical blocks (rms of 0.02 and 0.02) -> clipped to -2 -> x = -1:
    # 1.25 * 0.5 = 0.625 for the candidate, 0.75 * 1.5 = 1.125 against it; then half a block
    state = update_test(state, [(0.03, 0.0), (0.03, 0.0), (0.0, 0.005)], TINY)
    assert math.exp(state.log_wealth_promote[0]) == pytest.approx(0.625)
    assert math.exp(state.log_wealth_rollback[0]) == pytest.approx(1.125)
    assert (state.periods, state.blocks, state.tested_blocks, state.partial_periods) == (7, 3, 2, 1)
    assert state.partial_sum == pytest.approx(0.005)
    assert state.sum_differences == pytest.approx(-0.02)
    assert state.sum_squares == pytest.approx(0.0004 + 0.0004 + 0.0036)
    decision = decide_test(state, TINY)
    assert decision.verdict == Verdict.CONTINUE
    assert decision.statistic == pytest.approx(1.125)  # the side the data lean to: the candidate being worse
    assert decision.threshold == pytest.approx(20.0)
    assert decision.blocks == 3
    assert "worse" in decision.detail and "20 is needed" in decision.detail


def test_promotes_at_the_first_block_whose_evidence_reaches_one_over_alpha_and_keeps_that_verdict() -> None:
    # after the scale block, each block wins by one typical block: wealth 1.9, 3.61, 6.859; threshold 4
    state = update_test(SequentialState(), blocks_of([0.01, 0.01, 0.01, 0.01]), BOLD)
    assert state.verdict == Verdict.PROMOTE
    assert state.decided_block == 4
    assert state.decided_evidence == pytest.approx(1.9**3)
    later = update_test(state, blocks_of([-0.05] * 10), BOLD)  # the candidate then loses every block
    decision = decide_test(later, BOLD)
    assert (decision.verdict, decision.statistic, decision.threshold, decision.blocks) == (
        Verdict.PROMOTE,
        pytest.approx(1.9**3),
        pytest.approx(4.0),
        14,
    )
    assert "candidate better" in decision.detail and "after 4 blocks" in decision.detail


def test_rolls_back_a_candidate_that_loses_and_waits_for_min_blocks() -> None:
    state = update_test(SequentialState(), blocks_of([0.01, -0.01, -0.01, -0.01]), BOLD)
    assert (state.verdict, state.decided_block) == (Verdict.ROLLBACK, 4)
    assert decide_test(state, BOLD).statistic == pytest.approx(1.9**3)
    patient = replace(BOLD, min_blocks=6)
    state = update_test(SequentialState(), blocks_of([0.01, -0.01, -0.01, -0.01, -0.01]), patient)
    assert state.verdict == Verdict.CONTINUE  # 1.9**4 = 13 > 4, but only 5 blocks
    assert "collecting data: 5 of at least 6 blocks" in decide_test(state, patient).detail
    state = update_test(state, blocks_of([0.0]), patient)
    assert (state.verdict, state.decided_block) == (Verdict.ROLLBACK, 6)


def test_identical_variants_leave_the_wealth_alone() -> None:
    state = update_test(SequentialState(), [(0.002, 0.002)] * 24 * 30, SequentialDesign())
    decision = decide_test(state, SequentialDesign())
    assert state.tested_blocks == 0 and decision.verdict == Verdict.CONTINUE and decision.statistic == 1.0


def test_folding_in_pieces_equals_folding_at_once() -> None:
    rng = np.random.default_rng(5)
    pairs = [(float(b), float(b + d)) for b, d in zip(rng.normal(0, 0.01, 500), rng.normal(0, 0.002, 500), strict=True)]
    design = SequentialDesign(periods_per_block=7)
    at_once = update_test(SequentialState(), pairs, design)
    pieces = SequentialState()
    for start, stop in ((0, 3), (3, 50), (50, 51), (51, 500)):
        pieces = update_test(pieces, pairs[start:stop], design)
    assert pieces == at_once


def test_the_state_is_small_json_with_camel_case_keys_and_round_trips() -> None:
    design = SequentialDesign()
    rng = np.random.default_rng(6)
    short = update_test(SequentialState(), rng.normal(0, 0.01, (24 * 10, 2)).tolist(), design)
    long = update_test(short, rng.normal(0, 0.01, (24 * 1000, 2)).tolist(), design)
    wire = long.model_dump(mode="json", by_alias=True)
    assert {"logWealthPromote", "logWealthRollback", "sumSquares", "partialPeriods", "decidedBlock"} <= set(wire)
    assert SequentialState.model_validate(json.loads(json.dumps(wire))) == long
    assert SequentialState.model_validate_json(long.model_dump_json()) == long
    # O(1): 1,010 blocks take the same fields and as many numbers as 10 (only their digits differ)
    short_json, long_json = short.model_dump_json(by_alias=True), long.model_dump_json(by_alias=True)
    assert len(long_json) < 1200 and abs(len(long_json) - len(short_json)) < 100, (len(short_json), len(long_json))


def test_bad_input_names_the_pair_and_changes_nothing() -> None:
    design = SequentialDesign()
    state = update_test(SequentialState(), [(0.0, 0.001)] * 30, design)
    before = state.model_copy(deep=True)
    with pytest.raises(SequentialTestInputError, match=r"pairs\[1\]: the candidate's return is nan"):
        update_test(state, [(0.0, 0.001), (0.0, float("nan"))], design)
    with pytest.raises(SequentialTestInputError, match=r"pairs\[0\]: expected \(baseline return, candidate return\)"):
        update_test(state, [(0.0,)], design)  # type: ignore[list-item]
    assert state == before
    with pytest.raises(SequentialTestInputError, match="logWealthPromote: the state holds 9 bets but the design has 1"):
        update_test(state, [(0.0, 0.001)], TINY)
    with pytest.raises(SequentialTestInputError, match="alpha: must lie in"):
        SequentialDesign(alpha=0.0)
    with pytest.raises(SequentialTestInputError, match="bets: need at least one stake"):
        SequentialDesign(bets=(0.5, 1.0))


# --- by simulation over real hourly returns ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def markets(market_data_dir: Path) -> list[np.ndarray]:
    return [hourly_returns(market_data_dir, symbol) for symbol in SYMBOLS]


def test_the_simulation_measures_the_same_test_the_controller_runs(markets: list[np.ndarray]) -> None:
    """``first_verdicts`` (the simulation's vectorised test) and ``update_test`` agree experiment by experiment."""
    design = SequentialDesign()
    rng = np.random.default_rng(7)
    verdicts = []
    for gap in (1.0, -1.0, 0.0):
        baseline, candidate = simulate_returns(
            markets, experiments=8, hours=24 * 60, scenario=Scenario(sharpe_gap=gap, overlay=0.05), rng=rng
        )
        blocks = (candidate - baseline).reshape(8, 60, 24).sum(axis=2)
        promoted, rolled_back = first_verdicts(blocks, design)
        promote_log, rollback_log = block_log_wealth(blocks, design)
        for row in range(8):
            state = update_test(SequentialState(), list(zip(baseline[row], candidate[row], strict=True)), design)
            assert state.log_wealth_promote == pytest.approx(promote_log[row, -1].tolist(), abs=1e-9)
            assert state.log_wealth_rollback == pytest.approx(rollback_log[row, -1].tolist(), abs=1e-9)
            promote_at, rollback_at = int(promoted[row]), int(rolled_back[row])
            if promote_at and not (rollback_at and rollback_at <= promote_at):
                expected = (Verdict.PROMOTE, promote_at)
            elif rollback_at:
                expected = (Verdict.ROLLBACK, rollback_at)
            else:
                expected = (Verdict.CONTINUE, None)
            assert (state.verdict, state.decided_block) == expected, row
            verdicts.append(state.verdict)
    assert Verdict.PROMOTE in verdicts and Verdict.ROLLBACK in verdicts  # both paths were compared


def test_false_promotion_rate_stays_under_alpha_over_90_daily_looks(markets: list[np.ndarray]) -> None:
    """2,000 experiments whose candidate equals the baseline (same market path, independent timing overlays),
    looked at after every day for 90 days: the test promotes at most 5 % of them, and the upper end of the exact
    95 % interval of the measured rate is under 5 % too. A t-test at every look promotes far more."""
    design = SequentialDesign()
    result = simulate(markets, experiments=2000, days=90, scenario=Scenario(), design=design, seed=11)
    promoted = int((result.promoted > 0).sum())
    rate, (low, high) = promoted / result.experiments, clopper_pearson(promoted, result.experiments)
    message = (
        f"measured false promotion {100 * rate:.2f} % ({promoted} of {result.experiments}, 95 % CI "
        f"{100 * low:.2f}-{100 * high:.2f} %), bound {100 * design.alpha:.0f} %; false rollback "
        f"{100 * result.rollback_rate():.2f} %; a t-test at every look: {100 * result.naive_promotion_rate():.1f} %"
    )
    print(message)
    assert result.experiments >= 1000 and result.days == 90
    assert rate <= design.alpha and high <= design.alpha, message
    assert result.rollback_rate() <= design.alpha, message
    assert result.naive_promotion_rate() >= 0.10, message  # the repeated looks the test guards against do bite


def test_power_to_promote_a_sharpe_ratio_higher_by_one_within_60_days(markets: list[np.ndarray]) -> None:
    """1,000 experiments whose candidate earns a constant hourly edge worth +1.0 annualised Sharpe ratio, the two
    variants' hourly returns correlated at about 0.99: promoted within 60 days in at least 70 % of them (measured
    about 80 % at the default design), and rolled back in at most 1 % (measured 0)."""
    result = simulate(
        markets, experiments=1000, days=60, scenario=Scenario(sharpe_gap=1.0), design=SequentialDesign(), seed=12
    )
    power = result.promotion_rate()
    message = (
        f"measured power {100 * power:.1f} % within 60 days (floor 70 %), mean day "
        f"{result.mean_blocks_to_promote():.1f}; correlation {result.correlation:.4f}; realised Sharpe "
        f"{result.sharpe_baseline:.2f} -> {result.sharpe_candidate:.2f}; "
        f"rolled back {100 * result.rollback_rate():.2f} %"
    )
    print(message)
    assert 0.985 < result.correlation < 0.995, message
    assert result.sharpe_candidate - result.sharpe_baseline == pytest.approx(1.0, abs=0.15), message
    assert power >= 0.70, message
    assert result.rollback_rate() <= 0.01, message
