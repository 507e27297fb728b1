"""``engine.health``: data age on the right clock, the exchange's and the orders' counters, slippage, the models'
state, margin and memory, and that an error shown in ``last_error`` carries no secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from slsbot_runtime.domain.errors import ExchangeUnavailable, OrderRejected, RateLimited
from slsbot_runtime.domain.types import Side
from slsbot_runtime.engine.health import (
    CONFIDENCE_RECENT,
    CONFIDENCE_USUAL,
    CONFIDENCE_USUAL_MIN,
    Freshness,
    HealthRecorder,
    SignalConfidence,
    cgroup_limit,
    margin_used_percent,
    models_block,
    safe_error_text,
    slippage_bps,
)
from slsbot_runtime.metrics import RuntimeMetrics

HOUR_MS = 3_600_000
T0 = 1_700_000_000_000 // HOUR_MS * HOUR_MS


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def block(recorder: HealthRecorder, **status):
    confidence = SignalConfidence()
    confidence.observe(0.7)
    return recorder.block(
        symbols=("BTC/USDT",), status=status, confidence=confidence, margin_used_percent=None, memory=(1000, None)
    )


def test_live_age_counts_on_the_exchange_clock_from_when_the_next_candle_closed() -> None:
    exchange_now = [T0 + 2 * HOUR_MS]  # the candle opened at T0 closed at T0+1h; the next one closes now
    clock = Clock()
    recorder = HealthRecorder(Freshness("exchange", 3600.0, 2.0, lambda: exchange_now[0]), clock=clock)
    recorder.candle("BTC/USDT", T0)
    clock.now += 10_000  # the wall clock is not what counts in live mode
    data = block(recorder)["data"]["BTC/USDT"]
    assert data["age_seconds"] == 0.0 and data["stale"] is False and data["interval_seconds"] == 3600.0
    exchange_now[0] += 2 * 3600 * 1000  # two intervals late: at the threshold, not past it
    assert block(recorder)["data"]["BTC/USDT"]["stale"] is False
    exchange_now[0] += 1000
    data = block(recorder)["data"]["BTC/USDT"]
    assert data["age_seconds"] == pytest.approx(7201.0) and data["stale"] is True
    assert data["last_candle_ts"] == T0


def test_paced_replay_age_counts_on_the_wall_clock_against_seconds_per_candle() -> None:
    clock = Clock()
    recorder = HealthRecorder(Freshness("wall", 0.5, 2.0), clock=clock)
    recorder.candle("BTC/USDT", T0)
    clock.now += 0.4  # the next candle is not due yet
    assert block(recorder)["data"]["BTC/USDT"]["age_seconds"] == 0.0
    clock.now += 1.2  # due 1.1 s ago: more than 2 x 0.5 s
    data = block(recorder)["data"]["BTC/USDT"]
    assert data["age_seconds"] == pytest.approx(1.1) and data["stale"] is True
    recorder.candle("BTC/USDT", T0 + HOUR_MS)  # candles flow again
    assert block(recorder)["data"]["BTC/USDT"]["stale"] is False


def test_an_unpaced_replay_is_never_stale() -> None:
    clock = Clock()
    recorder = HealthRecorder(Freshness(None, 0.0, 2.0), clock=clock)
    recorder.candle("BTC/USDT", T0)
    clock.now += 1e6
    data = block(recorder)["data"]["BTC/USDT"]
    assert data["age_seconds"] is None and data["stale"] is False


def test_exchange_errors_rate_limits_and_recovery() -> None:
    clock = Clock()
    metrics = RuntimeMetrics(CollectorRegistry())
    recorder = HealthRecorder(metrics=metrics, clock=clock)
    recorder.exchange_ok()
    recorder.exchange_error(ExchangeUnavailable("binance GET https://api.binance.com/x?signature=abc timed out"))
    clock.now += 5
    recorder.exchange_error(RateLimited("429 too many requests"))
    exchange = block(recorder)["exchange"]
    assert exchange["connected"] is False and exchange["errors"] == 2 and exchange["consecutive_errors"] == 2
    assert exchange["rate_limited"] == 1 and exchange["last_error"] == "RateLimited: 429 too many requests"
    assert exchange["failing_since"] == "2027-01-15T08:00:00Z"
    clock.now += 5
    recorder.exchange_ok()
    exchange = block(recorder)["exchange"]
    assert exchange["connected"] is True and exchange["consecutive_errors"] == 0 and exchange["failing_since"] is None
    assert exchange["errors"] == 2 and exchange["last_ok_at"] == "2027-01-15T08:00:10Z"
    assert metrics.registry.get_sample_value("slsbot_runtime_exchange_errors_total", {"kind": "rate_limited"}) == 1


def test_order_streak_counts_rejects_and_failures_until_one_goes_out() -> None:
    recorder = HealthRecorder(clock=Clock())
    assert recorder.order_outcome("rejected", OrderRejected("min notional")) == 1
    assert recorder.order_outcome("failed", ExchangeUnavailable("down")) == 2
    orders = block(recorder)["orders"]
    assert orders == {"rejects": 1, "consecutive_rejects": 1, "failures": 1, "consecutive_failures": 1}
    assert recorder.order_outcome("sent") == 0
    assert block(recorder)["orders"] == {
        "rejects": 1,
        "consecutive_rejects": 0,
        "failures": 1,
        "consecutive_failures": 0,
    }


def test_slippage_is_against_the_expected_fill_and_positive_when_worse() -> None:
    assert slippage_bps(Side.BUY, 100.0, 100.1) == pytest.approx(10.0)
    assert slippage_bps(Side.SELL, 100.0, 100.1) == pytest.approx(-10.0)
    recorder = HealthRecorder(clock=Clock())
    recorder.expect("a", 100.0)
    recorder.expect("b", 200.0)
    recorder.fill("a", Side.BUY, 100.2, done=True)
    recorder.fill("b", Side.SELL, 199.0, done=True)
    recorder.fill("unknown", Side.SELL, 1.0, done=True)  # a fill of an order nobody priced: not counted
    slippage = block(recorder)["slippage"]
    assert slippage == {"fills": 2, "mean_bps": pytest.approx(35.0), "last_bps": pytest.approx(50.0)}


def test_reconcile_problems() -> None:
    recorder = HealthRecorder(clock=Clock())
    assert block(recorder)["reconcile"] == {"ok": True, "problems": 0, "last_problem": None, "checked_at": None}
    recorder.reconcile_problem("order x is open here but unknown to the exchange")
    reconcile = block(recorder)["reconcile"]
    assert reconcile["ok"] is False and reconcile["problems"] == 1 and "unknown" in reconcile["last_problem"]


def test_secrets_never_reach_last_error() -> None:
    error = ExchangeUnavailable(
        "binance GET https://api.binance.com/api/v3/order?symbol=BTCUSDT&timestamp=1&signature=deadbeef42 "
        '{"apiKey": "AKIAsecretKEY123", "secret": "s3cr3t"} X-MBX-APIKEY: AKIAsecretKEY123 token=tok-987'
    )
    text = safe_error_text(error)
    for secret in ("deadbeef42", "AKIAsecretKEY123", "s3cr3t", "tok-987", "timestamp=1"):
        assert secret not in text
    assert text.startswith("ExchangeUnavailable: binance GET https://api.binance.com/api/v3/order?<redacted>")
    assert len(safe_error_text(ExchangeUnavailable("x" * 1000))) < 250


def test_models_block() -> None:
    assert models_block(None, None) is None
    healthy = {"m": {"state": "ready", "in_vote": True}}
    assert models_block(healthy, {"m": {"drifted": False}}) == {
        "degraded": False,
        "drifted": [],
        "accuracy": None,
        "baseline_accuracy": None,
        "accuracy_model": None,
    }
    drifted = models_block({"m": {"state": "drifted", "in_vote": False}}, {"m": {"drifted": True}})
    assert drifted is not None and drifted["degraded"] is True and drifted["drifted"] == ["m"]
    # drift outlasting its early retrain (the model back in the vote, its PSI still above the threshold)
    outlasting = models_block(healthy, {"m": {"drifted": True, "early_retrain": True}})
    assert outlasting is not None and outlasting["degraded"] is True and outlasting["drifted"] == ["m"]
    # drift only reported (the version not judged yet, as with retrains more frequent than the drift check judges)
    reported = models_block(healthy, {"m": {"drifted": True, "early_retrain": False}})
    assert reported is not None and reported["degraded"] is False and reported["drifted"] == []
    # out of the vote for drift while the (cached) drift entry does not say so yet: drifted, so the ladder's first
    # rung is safe mode, not a restart that would lose the retrain under way
    benched_for_drift = models_block(
        {"m": {"state": "drifted", "in_vote": False, "version": 1}}, {"m": {"drifted": False, "early_retrain": False}}
    )
    assert benched_for_drift is not None and benched_for_drift["drifted"] == ["m"]
    # out of the vote before its first version (training at start-up) is by design; out of it once trained is not
    untrained = models_block({"m": {"state": "training", "in_vote": False, "version": None}}, None)
    assert untrained is not None and untrained["degraded"] is False
    benched = models_block({"m": {"state": "ready", "in_vote": False, "version": 2}}, None)
    assert benched is not None and benched["degraded"] is True


def test_models_block_reports_the_model_whose_accuracy_fell_furthest() -> None:
    models = {
        "gbm": {"state": "ready", "in_vote": True, "version": 3, "accuracy": 0.55, "baseline_accuracy": 0.6},
        "logit": {"state": "ready", "in_vote": True, "version": 1, "accuracy": 0.41, "baseline_accuracy": 0.58},
        "forest": {"state": "ready", "in_vote": True, "version": 2, "accuracy": 0.7, "baseline_accuracy": 0.56},
        # below ml.accuracy.minScored, or no version yet: nothing to compare
        "young": {"state": "ready", "in_vote": True, "version": 1, "accuracy": None, "baseline_accuracy": 0.9},
        "new": {"state": "missing", "in_vote": False, "version": None, "accuracy": None, "baseline_accuracy": None},
    }
    block = models_block(models, None)
    assert block is not None
    assert (block["accuracy_model"], block["accuracy"], block["baseline_accuracy"]) == ("logit", 0.41, 0.58)
    assert block["degraded"] is False  # an accuracy drop is the control plane's rule (modelAccuracyDrop), not degraded
    # equal drops: the first by name, whatever the order of the status
    tied = {"b": {"accuracy": 0.5, "baseline_accuracy": 0.6}, "a": {"accuracy": 0.4, "baseline_accuracy": 0.5}}
    assert models_block(tied, None)["accuracy_model"] == "a"  # type: ignore[index]
    # a model better live than on its holdout is still the worst when it is the only one measured
    only = models_block({"m": {"accuracy": 0.7, "baseline_accuracy": 0.6}}, None)
    assert only is not None and (only["accuracy"], only["baseline_accuracy"]) == (0.7, 0.6)
    unmeasured = models_block({"m": {"accuracy": None, "baseline_accuracy": 0.6}}, None)
    assert unmeasured is not None and unmeasured["accuracy"] is None and unmeasured["accuracy_model"] is None


def test_a_paced_replays_data_is_never_stale_sooner_than_the_floor() -> None:
    fast = Freshness("wall", 0.1, 2.0, min_stale_s=10.0)  # candles every 0.1 s: 2 intervals would be 0.2 s
    assert not fast.stale(fast.age(None, 100.0, 100.1 + 9.0))
    assert fast.stale(fast.age(None, 100.0, 100.1 + 10.5))


def test_margin_only_where_leverage_is_used() -> None:
    assert margin_used_percent({"BTC/USDT": 1.0}, {"BTC/USDT": 100.0}, 1000.0, 1.0) is None
    assert margin_used_percent({"BTC/USDT": -2.0}, {"BTC/USDT": 100.0}, 1000.0, 2.0) == pytest.approx(10.0)


def test_cgroup_limit(tmp_path: Path) -> None:
    v2 = tmp_path / "memory.max"
    v2.write_text("max\n")
    assert cgroup_limit((str(v2),)) is None
    v2.write_text("536870912\n")
    assert cgroup_limit((str(tmp_path / "missing"), str(v2))) == 536870912
    v1 = tmp_path / "limit_in_bytes"
    v1.write_text("9223372036854771712\n")  # cgroup v1's "no limit"
    assert cgroup_limit((str(v1),)) is None


def test_the_block_has_every_key_of_the_contract() -> None:
    body = block(HealthRecorder(clock=Clock()), anomaly_score=0.6)
    assert set(body) == {
        "checked_at", "data", "exchange", "orders", "slippage", "reconcile", "models", "anomaly_score",
        "confidence", "confidence_recent_mean", "confidence_usual_mean", "confidence_usual_signals",
        "confidence_recent_signals", "memory_bytes", "memory_limit_bytes", "margin_used_percent",
    }  # fmt: skip
    assert body["anomaly_score"] == 0.6 and body["confidence"] == 0.7 and body["models"] is None
    assert body["data"]["BTC/USDT"]["age_seconds"] is None and body["data"]["BTC/USDT"]["stale"] is False


def test_signal_confidence_keeps_the_latest_the_recent_mean_and_the_usual_one_before_it() -> None:
    confidence = SignalConfidence()
    assert confidence.to_json() == {
        "confidence": None,
        "confidence_recent_mean": None,
        "confidence_usual_mean": None,
        "confidence_usual_signals": 0,
        "confidence_recent_signals": CONFIDENCE_RECENT,
    }
    for _ in range(CONFIDENCE_RECENT):
        confidence.observe(0.4)
    assert confidence.to_json()["confidence_recent_mean"] == 0.4
    assert confidence.to_json()["confidence_usual_mean"] is None  # nothing has left the recent window yet
    for _ in range(CONFIDENCE_USUAL_MIN - 1):
        confidence.observe(0.4)
    assert confidence.to_json()["confidence_usual_mean"] is None  # 49 signals before the recent ones: not enough
    confidence.observe(0.4)
    assert confidence.to_json()["confidence_usual_mean"] == 0.4
    for _ in range(CONFIDENCE_RECENT):  # the strategy's signals grow weak: 0.1 from now on
        confidence.observe(0.1)
    figures = confidence.to_json()
    assert (figures["confidence"], figures["confidence_recent_mean"], figures["confidence_usual_mean"]) == (
        0.1,
        0.1,
        0.4,
    )
    assert figures["confidence_usual_signals"] == CONFIDENCE_USUAL_MIN + CONFIDENCE_RECENT
    for _ in range(CONFIDENCE_USUAL + CONFIDENCE_RECENT):
        confidence.observe(0.1)
    figures = confidence.to_json()
    assert figures["confidence_usual_signals"] == CONFIDENCE_USUAL and figures["confidence_usual_mean"] == 0.1
    assert confidence.signals == 3 * CONFIDENCE_RECENT + CONFIDENCE_USUAL_MIN + CONFIDENCE_USUAL
