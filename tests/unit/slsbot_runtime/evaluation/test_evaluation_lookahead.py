"""The lookahead check: it passes the library's components and models, and it catches components and models that
look ahead, naming the member, the candle and the two values."""

from __future__ import annotations

import pytest
from tests.fakes.leaky_models import whole_history_bank
from tests.fakes.peeking_components import NextClosePeeker, SharedTapePeeker

from slsbot_runtime.domain.timeframes import utc_minute
from slsbot_runtime.evaluation.candidates import evaluation_candidates
from slsbot_runtime.evaluation.lookahead import INCREMENTAL, VECTORIZED, check_lookahead, cut_points, model_bank
from slsbot_runtime.strategy.registry import LIBRARY

REGISTRY = LIBRARY.extended(NextClosePeeker, SharedTapePeeker)


@pytest.fixture(autouse=True)
def _empty_tape():
    SharedTapePeeker.TAPE.clear()
    yield
    SharedTapePeeker.TAPE.clear()


def test_cuts_are_evenly_spaced_plus_seeded_random_ones_within_the_history():
    cuts = cut_points(1000, count=20, random=10, seed=3)
    assert cuts == sorted(set(cuts)) and cuts[0] >= 2 and cuts[-1] <= 999
    assert {2, 999} <= set(cuts) and 20 <= len(cuts) <= 30
    assert cut_points(1000, count=20, random=10, seed=3) == cuts
    assert cut_points(1000, count=20, random=10, seed=4) != cuts
    assert cut_points(1000, count=5, random=0, seed=0) == [2, 251, 500, 749, 999]
    assert cut_points(2, count=20, random=10, seed=0) == []


def test_the_library_members_and_their_ensemble_pass_in_both_forms(small_config, btc_eth):
    config = small_config()
    report = check_lookahead(evaluation_candidates(config), btc_eth(3000, 400), count=6, random=4, seed=1)
    assert report.passed, [v.message for v in report.violations]
    assert set(report.forms) == {
        "ensemble",
        "ensemble.members[sma]",
        "ensemble.members[rsi]",
        "ensemble.members[donchian]",
    }
    assert all(forms == (INCREMENTAL, VECTORIZED) for forms in report.forms.values())
    cuts = sum(len(c) for c in report.cuts.values())
    assert 2 * 6 <= cuts <= 2 * 10
    assert report.decisions_compared > 4 * 2 * 400  # every unit, both forms, every candle before each cut


def test_a_member_whose_vectorized_signal_reads_the_next_candle_fails_naming_it(small_config, btc_eth):
    members = [
        {"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30, "mode": "level"}},
        {"name": "peek", "strategy": "next_close_peeker"},
    ]
    histories = btc_eth(3000, 300)
    report = check_lookahead(
        evaluation_candidates(small_config(members=members)), histories, count=5, random=0, registry=REGISTRY
    )
    assert not report.passed
    units = {(v.unit, v.symbol, v.form) for v in report.violations}
    assert ("ensemble.members[peek]", "BTC/USDT", VECTORIZED) in units
    assert ("ensemble.members[peek]", "ETH/USDT", VECTORIZED) in units
    assert not any(v.unit == "ensemble.members[sma]" for v in report.violations)
    assert not any(v.form == INCREMENTAL for v in report.violations)  # on_candle cannot see the next candle
    btc = histories[0]
    violation = next(v for v in report.violations if v.unit == "ensemble.members[peek]" and v.symbol == "BTC/USDT")
    # the first cut keeps 2 candles; the decision after the second one is where the two runs part
    assert violation.cut_ts == int(btc.ts[2]) and violation.candle_ts == int(btc.ts[1])
    expected_full = float(1.0 if btc.close[2] > btc.close[1] else -1.0)
    assert violation.field == "direction" and violation.truncated == 0.0 and violation.full == expected_full
    assert violation.message == (
        f"ensemble.members[peek]: BTC/USDT direction after the candle of {utc_minute(int(btc.ts[1]))} is 0.0 when "
        f"the data ends before {utc_minute(int(btc.ts[2]))} but {expected_full!r} when later candles are appended "
        "(vectorized form): the decision looks ahead"
    )
    assert report.to_json()["violations"][0]["message"] == report.violations[0].message


def test_a_member_that_reads_later_candles_through_state_shared_between_runs_fails_in_the_incremental_form(
    small_config, btc_eth
):
    members = [{"name": "tape", "strategy": "shared_tape_peeker"}]
    report = check_lookahead(
        evaluation_candidates(small_config(members=members)), btc_eth(3000, 200), count=4, random=0, registry=REGISTRY
    )
    assert report.forms == {"ensemble": (INCREMENTAL,)}  # no vectorized form to check
    assert not report.passed
    violation = report.violations[0]
    assert (violation.unit, violation.form, violation.field) == ("ensemble", INCREMENTAL, "direction")
    assert violation.truncated != violation.full


MODELS = [
    {
        "name": "logit",
        "kind": "logisticRegression",
        "features": ["logret_1", "logret_6", "rsi_14", "realized_vol_24"],
        "lookback": 400,
        "retrainEvery": "24h",
        "horizon": 2,
        "embargo": 2,
    },
    {
        "name": "forest",
        "kind": "randomForest",
        "features": ["logret_1", "logret_6", "rsi_14", "realized_vol_24"],
        "lookback": 400,
        "retrainEvery": "24h",
        "horizon": 2,
        "embargo": 2,
        "params": {"n_estimators": 10},
    },
]


def test_models_are_retrained_in_every_run_and_pass_in_both_forms(small_config, btc_eth):
    members = [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30, "mode": "level"}}]
    config = small_config(members=members, **{"ml.models": MODELS})
    banks = []

    def recording(config, symbol, trainer_factory):
        bank = model_bank(config, symbol, trainer_factory)
        banks.append(bank)
        return bank

    histories = btc_eth(3000, 700)
    report = check_lookahead(
        evaluation_candidates(config), histories[:1], count=4, random=2, seed=1, bank_factory=recording
    )
    assert report.passed, [v.message for v in report.violations]
    assert report.forms == {
        "ensemble": (INCREMENTAL, VECTORIZED),
        "ensemble.members[sma]": (INCREMENTAL, VECTORIZED),
        "ml.models[logit]": (INCREMENTAL, VECTORIZED),
        "ml.models[forest]": (INCREMENTAL, VECTORIZED),
    }
    # every run of a candidate with models had a bank of its own, and the whole history's runs retrained and voted
    runs = 3 * 2 * (len(report.cuts["BTC/USDT"]) + 1)  # three candidates with models, both forms, cuts + whole
    assert len(banks) == runs and len({id(bank) for bank in banks}) == runs
    whole = [bank for bank in banks if bank.has_batch("BTC/USDT") and bank._now == int(histories[0].ts[-1])]
    assert len(whole) == 3
    for bank in whole:
        for name, status in bank.status().items():
            assert status["retrains"] >= 10 and status["in_vote"], (name, status)
            direction, _ = bank.signal_arrays("BTC/USDT", name)
            assert (direction == 1.0).sum() > 10 and (direction == -1.0).sum() > 10


def test_a_model_trained_on_the_whole_history_fails_in_the_vectorized_form(small_config, btc_eth):
    members = [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30, "mode": "level"}}]
    config = small_config(members=members, **{"ml.models": MODELS[:1]})
    candidates = evaluation_candidates(config)
    histories = btc_eth(3000, 700)[:1]
    honest = check_lookahead(candidates, histories, count=4, random=0)
    assert honest.passed, [v.message for v in honest.violations]

    report = check_lookahead(candidates, histories, count=4, random=0, bank_factory=whole_history_bank)
    assert not report.passed
    units = {(v.unit, v.form) for v in report.violations}
    assert units == {("ensemble", VECTORIZED), ("ml.models[logit]", VECTORIZED)}
    violation = next(v for v in report.violations if v.unit == "ml.models[logit]")
    assert violation.symbol == "BTC/USDT" and violation.truncated != violation.full
    assert violation.message.startswith("ml.models[logit]: BTC/USDT ")
    assert violation.message.endswith("(vectorized form): the decision looks ahead")
