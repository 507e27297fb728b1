"""The model bank: candle by candle (the loop) and all at once (fast mode) give the same votes, at the same retrain
points; states and the vote follow the schedule."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.ml.bank import ModelBank, vote_of
from slsbot_runtime.ml.registry import ModelRegistry
from slsbot_runtime.ml.schedule import RetrainClock, model_state
from slsbot_runtime.ml.training import ModelSpec, Outcome, TrainingJob
from slsbot_runtime.ml.worker import InProcessTrainer, failed_outcomes

from .conftest import spec

HOUR = 3_600_000


def _bank(specs: list[ModelSpec], symbols: tuple[str, ...], trainer=None, **options) -> ModelBank:
    return ModelBank(specs, symbols, trainer_factory=lambda: trainer or InProcessTrainer(), registry=None, **options)


def _merged(histories: list[OHLCV]) -> list:
    candles = [(int(h.ts[i]), k, h.candle(i)) for k, h in enumerate(histories) for i in range(len(h))]
    return [c for _, _, c in sorted(candles, key=lambda item: (item[0], item[1]))]


def test_step_and_batch_give_the_same_votes(btc_2024: OHLCV, eth_2024: OHLCV, model_specs: list[ModelSpec]) -> None:
    btc = btc_2024.slice(0, 1300)
    other = eth_2024.slice(100, 1300)  # starts later: the symbols' windows differ
    histories = [btc, other]
    symbols = ("BTC/USDT", "ETH/USDT")
    step = _bank(model_specs, symbols)
    seen = {s: {name: [] for name in step.models} for s in symbols}
    for candle in _merged(histories):
        step.observe(candle)
        for name in step.models:
            direction, confidence = step.signal(candle.symbol, name)
            seen[candle.symbol][name].append((direction, confidence, step.in_vote(name)))
    batch = _bank(model_specs, symbols)
    batch.run_batch(histories)
    retrains = {name: record.retrains for name, record in step.models.items()}
    assert retrains == {name: record.retrains for name, record in batch.models.items()}
    assert min(retrains.values()) >= 3
    for symbol in symbols:
        for name in step.models:
            direction, confidence = batch.signal_arrays(symbol, name)
            mask = batch.vote_mask(symbol, name)
            got = np.array(seen[symbol][name])
            assert np.array_equal(got[:, 0], direction), (symbol, name)
            assert np.array_equal(got[:, 1], confidence), (symbol, name)
            assert np.array_equal(got[:, 2].astype(bool), mask), (symbol, name)
            assert 0.5 < mask.mean() < 1.0  # missing until the first retrain, then voting
            assert np.count_nonzero(direction) > 0.5 * mask.sum()


def test_drift_takes_a_model_out_of_the_vote_retrains_it_early_and_both_paths_see_it_alike(
    btc_2024: OHLCV, eth_2024: OHLCV
) -> None:
    # retrained every 20 days: drift is judged only after 300 predictions of a version (MIN_LIVE), so it acts
    # between retrains that far apart (two symbols: 960 predictions per version)
    model_specs = [
        spec("gbm", "gradientBoosting", retrainEvery="480h"),
        spec("logit", "logisticRegression", retrainEvery="480h"),
        spec("stack", "stacking", inputs=["gbm", "logit"], retrainEvery="480h"),
    ]
    histories = [btc_2024.slice(0, 2500), eth_2024.slice(0, 2500)]
    symbols = ("BTC/USDT", "ETH/USDT")
    changes: list[tuple[str, str, bool]] = []
    step = _bank(model_specs, symbols, drift_threshold=0.1, on_change=lambda *change: changes.append(change))
    seen = {s: {name: [] for name in step.models} for s in symbols}
    retrain_reasons: list[str] = []
    trainer = InProcessTrainer()
    submit = trainer.submit
    trainer.submit = lambda job: (retrain_reasons.append(job.reason), submit(job))[1]  # type: ignore[method-assign]
    step._trainer_factory = lambda: trainer
    for candle in _merged(histories):
        step.observe(candle)
        for name in step.models:
            seen[candle.symbol][name].append((*step.signal(candle.symbol, name), step.in_vote(name)))
    # the drift tracker saw a series pass 0.1, took the model out and asked for a retrain before the schedule
    assert ("gbm", "drifted", False) in changes
    early = [reason for reason in retrain_reasons if reason.startswith("asked: drift: model ")]
    assert early, retrain_reasons
    drifted_at = changes.index(("gbm", "drifted", False))
    assert ("gbm", "ready", True) in changes[drifted_at:]  # and it came back
    without = _bank(model_specs, symbols)
    without.run_batch(histories)
    assert sum(r.retrains for r in step.models.values()) > sum(r.retrains for r in without.models.values())
    status = step.drift_status()
    assert set(status) == {"gbm", "logit", "stack"}
    assert {s["name"] for s in status["gbm"]["series"]} == {*model_specs[0].features, "output"}
    # fast mode retrains at the same points and gives the same votes, drift included
    batch = _bank(model_specs, symbols, drift_threshold=0.1)
    batch.run_batch(histories)
    assert {n: r.retrains for n, r in batch.models.items()} == {n: r.retrains for n, r in step.models.items()}
    for symbol in symbols:
        for name in step.models:
            got = np.array(seen[symbol][name])
            direction, confidence = batch.signal_arrays(symbol, name)
            assert np.array_equal(got[:, 0], direction) and np.array_equal(got[:, 1], confidence), (symbol, name)
            assert np.array_equal(got[:, 2].astype(bool), batch.vote_mask(symbol, name)), (symbol, name)


def test_retrain_points_are_multiples_of_the_interval_and_skip_the_first_candle() -> None:
    clock = RetrainClock(24 * HOUR)
    start = 1_735_689_600_000  # 2025-01-01T00:00Z
    assert clock.due(start + 5 * HOUR) is None  # the first candle's own point: nothing opened before it
    assert clock.due(start + 23 * HOUR) is None
    assert clock.due(start + 24 * HOUR) == start + 24 * HOUR
    assert clock.due(start + 25 * HOUR) is None
    assert clock.due(start + 100 * HOUR) == start + 96 * HOUR  # a gap over several points: the newest one


def test_states_and_the_vote() -> None:
    base = dict(training=False, failed=False, drifted=False, pinned=False, stale_after_ms=10)
    assert model_state(has_model=False, now_ms=5, checked_ms=None, **base) == ("missing", False)
    assert model_state(has_model=True, now_ms=5, checked_ms=0, **base) == ("ready", True)
    assert model_state(has_model=True, now_ms=11, checked_ms=0, **base) == ("stale", False)
    assert model_state(has_model=True, now_ms=11, checked_ms=0, **{**base, "pinned": True}) == ("ready", True)
    assert model_state(has_model=True, now_ms=5, checked_ms=0, **{**base, "training": True}) == ("training", True)
    assert model_state(has_model=True, now_ms=5, checked_ms=0, **{**base, "failed": True}) == ("failed", False)
    assert model_state(has_model=True, now_ms=5, checked_ms=0, **{**base, "drifted": True}) == ("drifted", False)


def test_a_vote_is_the_favoured_side_with_confidence_two_p_minus_one() -> None:
    assert vote_of(0.8) == (1.0, 2 * 0.8 - 1)
    assert vote_of(0.25) == (-1.0, 0.5)
    assert vote_of(0.5) == (0.0, 0.0)


class _FailingAfter(InProcessTrainer):
    """Trains the first ``good`` jobs, then every retrain fails (as a worker that runs out of memory would)."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good

    def submit(self, job: TrainingJob) -> None:
        if self.good > 0:
            self.good -= 1
            super().submit(job)
        else:
            self._done = failed_outcomes(job, "MemoryError: over ml.worker.memoryMiB")


def test_a_failed_retrain_takes_the_model_out_and_the_next_good_one_brings_it_back(
    btc_2024: OHLCV, model_specs: list[ModelSpec]
) -> None:
    history = btc_2024.slice(0, 1000)
    bank = _bank(model_specs[1:2], ("BTC/USDT",), trainer=_FailingAfter(1))
    states = []
    for i in range(len(history)):
        bank.observe(history.candle(i))
        states.append(bank.status()["logit"]["state"])
    assert states[0] == "missing"
    first_ready = states.index("ready")
    failed = states.index("failed")
    assert first_ready < failed and not bank.in_vote("logit")
    assert "MemoryError" in bank.status()["logit"]["reason"]
    assert bank.signal("BTC/USDT", "logit") == (0.0, 0.0)


def test_drift_and_an_early_retrain(btc_2024: OHLCV, model_specs: list[ModelSpec]) -> None:
    history = btc_2024.slice(0, 800)
    bank = _bank(model_specs[1:2], ("BTC/USDT",))
    for i in range(700):
        bank.observe(history.candle(i))
    assert bank.in_vote("logit")
    bank.set_drifted("logit", "PSI 0.31 > 0.2 on rsi_14")
    assert bank.status()["logit"]["state"] == "drifted" and not bank.in_vote("logit")
    record = bank.models["logit"]
    retrains, replaced = record.retrains, record.replaced
    bank.request_retrain("logit", "drifted")
    bank.observe(history.candle(700))
    assert record.retrains == retrains + 1  # out of schedule (the next point is further on)
    # the flag goes with the model it was raised on: a replacing retrain clears it, a kept model stays drifted
    assert bank.in_vote("logit") == (record.replaced == replaced + 1)


class HeldTrainer(InProcessTrainer):
    """Runs jobs at once, but says it is busy while ``held``: a retrain a live runtime's worker is still running."""

    held = False

    @property
    def busy(self) -> bool:
        return self.held


def test_an_early_retrain_asked_while_another_runs_waits_for_it_and_starts_at_the_next_candle(
    btc_2024: OHLCV, model_specs: list[ModelSpec], caplog: pytest.LogCaptureFixture
) -> None:
    history = btc_2024.slice(0, 800)
    trainer = HeldTrainer()
    reasons: list[str] = []
    submit = trainer.submit
    trainer.submit = lambda job: (reasons.append(job.reason), submit(job))[1]  # type: ignore[method-assign]
    bank = _bank(model_specs[1:2], ("BTC/USDT",), trainer=trainer)
    for i in range(700):
        bank.observe(history.candle(i))
    record = bank.models["logit"]
    retrains = record.retrains
    bank.request_retrain("logit", "drifted")
    trainer.held = True
    with caplog.at_level(logging.INFO, logger="slsbot_runtime.ml.bank"):
        for i in range(700, 703):
            bank.observe(history.candle(i))  # the request waits, it is not used up
    assert record.retrains == retrains
    assert not caplog.records  # waiting is quiet: nothing is tried (nor logged) while the other retrain runs
    trainer.held = False
    bank.observe(history.candle(703))
    assert record.retrains == retrains + 1 and reasons[-1] == "asked: drifted"
    bank.observe(history.candle(704))
    assert record.retrains == retrains + 1  # once


def test_an_early_retrain_asked_before_enough_candles_starts_once_there_are_enough(btc_2024: OHLCV) -> None:
    """A replay without history: the drift check can ask before the buffers hold a retrain's candles. The request
    waits for them instead of being used up (the model would stay out of the vote until its next scheduled point)."""
    history = btc_2024.slice(0, 1200)
    trainer = InProcessTrainer()
    jobs: list[tuple[str, int]] = []
    submit = trainer.submit
    trainer.submit = lambda job: (jobs.append((job.reason, job.point)), submit(job))[1]  # type: ignore[method-assign]
    bank = _bank([spec("logit", "logisticRegression", retrainEvery="2400h")], ("BTC/USDT",), trainer=trainer)
    for i in range(10):
        bank.observe(history.candle(i))
    bank.request_retrain("logit", "drifted")
    first = None
    for i in range(10, 1200):
        bank.observe(history.candle(i))
        if jobs and first is None:
            first = i
    assert first is not None and jobs[0] == ("asked: drifted", int(history.ts[first]))
    assert len(jobs) == 1 or jobs[1][0] == "schedule"  # asked once: the next retrains are the schedule's


def test_outcome_of_a_failed_job_names_every_model(model_specs: list[ModelSpec]) -> None:
    job = TrainingJob(0, (), tuple(model_specs))
    outcomes = failed_outcomes(job, "training took longer than ml.worker.timeout (1 s)")
    assert [o.name for o in outcomes] == ["gbm", "logit", "stack"]
    assert all(isinstance(o, Outcome) and not o.ok for o in outcomes)


def test_live_accuracy_is_the_hit_rate_of_the_version_in_use_pooled_over_the_symbols(
    btc_2024: OHLCV, eth_2024: OHLCV
) -> None:
    histories = [btc_2024.slice(0, 1300), eth_2024.slice(100, 1300)]
    symbols = ("BTC/USDT", "ETH/USDT")
    model = [spec("logit", "logisticRegression", horizon=2)]
    told: list[tuple[str, float | None, float | None]] = []
    bank = _bank(model, symbols, accuracy_window=200, accuracy_min_scored=50, on_accuracy=lambda *a: told.append(a))
    position = {s: 0 for s in symbols}
    made = []  # (symbol, candle index, direction, version) of every candle, in the loop's order
    replaced = 0
    for candle in _merged(histories):
        bank.observe(candle)
        record = bank.models["logit"]
        made.append((candle.symbol, position[candle.symbol], bank.signal(candle.symbol, "logit")[0], record.version))
        position[candle.symbol] += 1
        if record.replaced > replaced:  # a new version: measured from nothing, against its own holdout accuracy
            replaced = record.replaced
            status = bank.status()["logit"]
            assert status["accuracy_scored"] == 0 and status["accuracy"] is None
            assert status["baseline_accuracy"] == record.metrics["accuracy"]
            assert told[-1] == ("logit", None, record.metrics["accuracy"])
    assert replaced >= 2
    # the reference: the final version's predictions ("up" when its vote is +1), each scored by its symbol's close two
    # candles later, in the order those candles came; the last 200 of them
    version = bank.models["logit"].version
    close = {h.symbol: h.close for h in histories}
    when = {(symbol, i): n for n, (symbol, i, _, _) in enumerate(made)}
    scored = sorted(
        (when[(symbol, i + 2)], (close[symbol][i + 2] > close[symbol][i]) == (direction > 0))
        for symbol, i, direction, v in made
        if v == version and direction != 0 and (symbol, i + 2) in when
    )
    assert len(scored) > 200 and {s for s, _, d, v in made if v == version and d != 0} == set(symbols)
    expected = sum(hit for _, hit in scored[-200:]) / 200
    status = bank.status()["logit"]
    assert status["accuracy_scored"] == 200 and status["accuracy"] == expected
    assert 0.0 < status["baseline_accuracy"] < 1.0
    assert told[-1] == ("logit", expected, status["baseline_accuracy"])
    # fast mode measures the same: a measurement over the same predictions, which changes no vote
    batch = _bank(model, symbols, accuracy_window=200, accuracy_min_scored=50)
    batch.run_batch(histories)
    assert batch.status()["logit"] == status


def _calm_then_wilder(seed: int = 5) -> list[Candle]:
    """BTC/USDT 1h: 400 calm candles up to a retrain point (moves of 0.3-1 %), then 380 whose moves grow 1.2 % a
    candle: the model trained at the point drifts, and still does after the early retrain (newer moves are larger
    than any it was retrained on)."""
    rng = np.random.default_rng(seed)
    point = 220 * 2160 * HOUR
    n, before = 780, 400
    after = np.arange(n) - before
    size = rng.uniform(0.003, 0.01, n) * np.where(after > 0, 1.012 ** np.maximum(after, 0), 1.0)
    moves = np.where(rng.random(n) < 0.5, size, -size)
    moves[0] = 0.0
    close = 100.0 * np.exp(np.cumsum(moves))
    open_ = np.concatenate([[100.0], close[:-1]])
    return [
        Candle(
            "BTC/USDT",
            point + (i - before) * HOUR,
            open_[i],
            max(open_[i], close[i]) * 1.001,
            min(open_[i], close[i]) * 0.999,
            close[i],
            500.0,
        )
        for i in range(n)
    ]


def test_a_restart_judges_drift_from_the_version_s_training_point_on_and_keeps_it_in_the_vote(tmp_path: Path) -> None:
    """A restarted runtime replays its candles from before the version in use was trained (its training window
    among them). Judged on them, the version drifted at once, asked for a retrain there that had too few candles to
    run, and stayed out of the vote for good; they only fill the features' live window now, as before the restart."""
    candles = _calm_then_wilder()
    registry = ModelRegistry(tmp_path / "models")
    logit = spec(
        "logit", "logisticRegression", features=["logret_1"], lookback=320, retrainEvery="2160h", horizon=1, embargo=1
    )

    def bank() -> tuple[ModelBank, list[str]]:
        trainer, reasons = InProcessTrainer(registry), []
        submit = trainer.submit
        trainer.submit = lambda job: (reasons.append(job.reason), submit(job))[1]  # type: ignore[method-assign]
        return ModelBank(
            [logit], ("BTC/USDT",), trainer_factory=lambda: trainer, registry=registry, drift_threshold=0.2
        ), reasons

    first, reasons = bank()
    for candle in candles:
        first.observe(candle)
    assert [r.split(",")[0] for r in reasons] == ["schedule", "asked: drift: model logit"]
    before = first.status()["logit"]
    assert (before["version"], before["state"], before["in_vote"]) == (2, "ready", True)
    assert first.drift_status()["logit"]["drifted"] is True  # the newest moves are larger than any it trained on
    assert first.drift_status()["logit"]["early_retrain"] is True  # and it outlasted the retrain it asked for

    again, reasons = bank()  # restarted: version 2 from the registry, the same candles replayed
    for candle in candles:
        again.observe(candle)
    assert reasons == []  # no retrain asked on a candle the version was trained on
    after = again.status()["logit"]
    assert (after["version"], after["state"], after["in_vote"]) == (2, "ready", True)
    drift = again.drift_status()["logit"]
    assert drift["drifted"] is True  # still drifted, as before the restart: a restart does not cure drift
    assert (
        drift["early_retrain"] is True
    )  # the drift the newest retrain (in the registry) was asked for, still acted on
    output = {s["name"]: s for s in drift["series"]}["output"]
    assert output["live"] == 780 - 700  # its predictions from its training point on (candle 700: drift at 699)
    assert output == {s["name"]: s for s in first.drift_status()["logit"]["series"]}["output"]
    # live accuracy too: only what the version predicted from its training point on (out of sample), as before
    assert (after["accuracy"], after["accuracy_scored"]) == (before["accuracy"], before["accuracy_scored"])
