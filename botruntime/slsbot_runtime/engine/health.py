"""``HealthRecorder``: the runtime's health signals, the ``health`` block of ``/status`` and their metrics.

What is counted where (docs/concepts/runtime-health.md):

* data freshness per symbol: ``candle`` is called by the runtime process for each candle it hands the loop (never
  by a backtest: nothing here is on the candle path of a backtest). The age is measured on the exchange's clock in
  live mode and on the wall clock against ``secondsPerCandle`` in a paced replay; an unpaced replay has none.
* the exchange: ``exchange_ok`` / ``exchange_error`` from the live feed and the exchange adapter (``ObservedExchange``);
* orders: ``order_outcome`` from the order manager (sent, rejected by the exchange, failed after the retries);
  ``bad_streak`` is what the loop compares with ``healing.rejectLimit``;
* slippage: ``expect`` when an intent is staged (the candle's close), ``fill`` for each booked fill;
* reconciliation: ``reconcile_ok`` / ``reconcile_problem``;
* signal confidence: ``SignalConfidence.observe`` by the loop for each signal that sets a target.

The block is built when ``/status`` is asked (``block``), from these counters and the loop's published status.
Counters are plain numbers written by the loop and feed threads and read by HTTP threads; the few that change
together change under one lock.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slsbot_runtime.domain.errors import RateLimited
from slsbot_runtime.domain.types import Side
from slsbot_runtime.metrics import RuntimeMetrics

SENT, REJECTED, FAILED = "sent", "rejected", "failed"
MAX_ERROR_TEXT = 200
#: ``key=value`` pairs whose value must never be shown (a URL's query, a ccxt message quoting its request).
_SECRET_PAIR = re.compile(
    r"(?i)\b(api[-_]?key|secret|signature|sign|token|passphrase|password|x-mbx-apikey|x-bapi-api-key)"
    r"(\s*[=:]\s*|\"\s*:\s*\")[^\s&,;\"'}]+"
)
_URL_QUERY = re.compile(r"(https?://[^\s?#\"']+)\?[^\s\"']*")


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def redact(text: str) -> str:
    """``text`` with every URL query and every ``key=value`` of a credential cut out: what a status, an event or a log
    line may show of a text that may quote an exchange's request (an error's message, a halt's reason)."""
    text = _URL_QUERY.sub(r"\1?<redacted>", text)
    return _SECRET_PAIR.sub(lambda m: f"{m.group(1)}=<redacted>", text)


def safe_error_text(error: BaseException) -> str:
    """The error's class and a short text, ``redact``-ed: what ``last_error`` may show."""
    text = " ".join(redact(str(error)).split())
    if len(text) > MAX_ERROR_TEXT:
        text = text[: MAX_ERROR_TEXT - 1] + "…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def slippage_bps(side: Side, expected: float, price: float) -> float:
    """How much worse than ``expected`` a fill at ``price`` is, in basis points (negative: better)."""
    return (price - expected) / expected * 10_000.0 * side.sign


@dataclass(frozen=True, slots=True)
class Freshness:
    """How data age is measured: ``basis`` ``exchange`` (live: ``now_ms`` is the exchange's clock, the age counts from
    when the next candle closed), ``wall`` (paced replay: from when the next candle was due, ``interval_s`` after the
    last one arrived), or None (an unpaced replay: never stale)."""

    basis: str | None
    interval_s: float
    stale_after_candles: float
    now_ms: Callable[[], int] | None = None  # the exchange's clock, for basis ``exchange``
    min_stale_s: float = 0.0  # never stale sooner than this (risk.healing.staleAfterMin)

    def age(self, last_ts: int | None, received_at: float | None, now: float) -> float | None:
        """Seconds since the candle after the last one was due; None when not measurable."""
        if self.basis == "exchange" and self.now_ms is not None and last_ts is not None:
            due_ms = last_ts + 2 * self.interval_s * 1000.0  # the next candle's close
            return max(0.0, (self.now_ms() - due_ms) / 1000.0)
        if self.basis == "wall" and received_at is not None:
            return max(0.0, now - (received_at + self.interval_s))
        return None

    def stale(self, age: float | None) -> bool:
        return age is not None and age > max(self.stale_after_candles * self.interval_s, self.min_stale_s)


@dataclass(slots=True)
class _Exchange:
    errors: int = 0
    consecutive_errors: int = 0
    rate_limited: int = 0
    last_error: str | None = None
    failing_since: float | None = None
    last_ok_at: float | None = None


@dataclass(slots=True)
class HealthRecorder:
    """The counters behind ``/status``'s ``health``; ``freshness`` None: data age not measured at all."""

    freshness: Freshness | None = None
    metrics: RuntimeMetrics | None = None
    clock: Callable[[], float] = time.time
    last_candle: dict[str, tuple[int, float]] = field(default_factory=dict)  # symbol -> (open time ms, received at)
    exchange: _Exchange = field(default_factory=_Exchange)
    rejects: int = 0
    consecutive_rejects: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    fills: int = 0
    slippage_sum: float = 0.0
    last_slippage: float | None = None
    reconcile_problems: int = 0
    last_reconcile_problem: str | None = None
    reconcile_checked_at: float | None = None
    _expected: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.metrics is not None:
            self.metrics.exchange_connected.set(1)  # no call has failed yet

    # -- data ---------------------------------------------------------------------------------------------------

    def candle(self, symbol: str, ts: int) -> None:
        """The runtime process handed the loop this candle (live or paced replay only)."""
        self.last_candle[symbol] = (ts, self.clock())

    # -- the exchange -------------------------------------------------------------------------------------------

    def exchange_ok(self) -> None:
        exchange = self.exchange
        if exchange.consecutive_errors or exchange.last_ok_at is None:
            with self._lock:
                exchange.consecutive_errors = 0
                exchange.failing_since = None
            if self.metrics is not None:
                self.metrics.exchange_connected.set(1)
        exchange.last_ok_at = self.clock()

    def exchange_error(self, error: BaseException) -> None:
        now = self.clock()
        with self._lock:
            exchange = self.exchange
            exchange.errors += 1
            exchange.consecutive_errors += 1
            exchange.last_error = safe_error_text(error)
            if exchange.failing_since is None:
                exchange.failing_since = now
            limited = isinstance(error, RateLimited)
            if limited:
                exchange.rate_limited += 1
        if self.metrics is not None:
            self.metrics.exchange_errors.labels("rate_limited" if limited else "error").inc()
            self.metrics.exchange_connected.set(0)

    # -- orders ---------------------------------------------------------------------------------------------------

    def order_outcome(self, outcome: str, error: BaseException | None = None) -> int:
        """Count one send: ``sent``, ``rejected`` (the exchange refused it) or ``failed`` (still failing after the
        adapter's retries). Returns the streak of rejected or failed sends since the last one that went out."""
        if outcome == SENT:
            self.consecutive_rejects = self.consecutive_failures = 0
            self.exchange_ok()
        elif outcome == REJECTED:
            self.rejects += 1
            self.consecutive_rejects += 1
            self.exchange_ok()  # the exchange answered
        else:
            self.failures += 1
            self.consecutive_failures += 1
            if error is not None:
                self.exchange_error(error)
        if self.metrics is not None and outcome != SENT:
            self.metrics.order_problems.labels(outcome).inc()
        return self.bad_streak

    @property
    def bad_streak(self) -> int:
        return self.consecutive_rejects + self.consecutive_failures

    # -- slippage -------------------------------------------------------------------------------------------------

    def expect(self, client_order_id: str, price: float) -> None:
        """The price the decision expected this order to fill at (the candle's close)."""
        if price > 0 and math.isfinite(price):
            self._expected[client_order_id] = price

    def fill(self, client_order_id: str, side: Side, price: float, *, done: bool) -> None:
        expected = self._expected.pop(client_order_id, None) if done else self._expected.get(client_order_id)
        if expected is None:
            return
        bps = slippage_bps(side, expected, price)
        self.fills += 1
        self.slippage_sum += bps
        self.last_slippage = bps
        if self.metrics is not None:
            self.metrics.slippage.observe(bps)

    # -- reconciliation -------------------------------------------------------------------------------------------

    def reconcile_ok(self) -> None:
        self.reconcile_checked_at = self.clock()

    def reconcile_problem(self, text: str) -> None:
        self.reconcile_problems += 1
        self.last_reconcile_problem = text[:MAX_ERROR_TEXT]
        self.reconcile_checked_at = self.clock()
        if self.metrics is not None:
            self.metrics.reconcile_problems.inc()

    # -- the block ------------------------------------------------------------------------------------------------

    def data_block(self, symbols: tuple[str, ...], now: float) -> dict[str, dict[str, Any]]:
        freshness = self.freshness
        out: dict[str, dict[str, Any]] = {}
        for symbol in symbols:
            last_ts, received_at = self.last_candle.get(symbol, (None, None))
            age = None if freshness is None else freshness.age(last_ts, received_at, now)
            stale = freshness is not None and freshness.stale(age)
            out[symbol] = {
                "last_candle_ts": last_ts,
                "received_at": iso(received_at),
                "age_seconds": None if age is None else round(age, 3),
                "interval_seconds": None if freshness is None else freshness.interval_s,
                "stale": stale,
            }
            if self.metrics is not None:
                self.metrics.data_age.labels(symbol).set(-1.0 if age is None else age)
                self.metrics.data_stale.labels(symbol).set(1 if stale else 0)
        return out

    def block(
        self,
        *,
        symbols: tuple[str, ...],
        status: Mapping[str, Any],
        confidence: SignalConfidence,
        margin_used_percent: float | None,
        memory: tuple[int, int | None],
    ) -> dict[str, Any]:
        """The ``health`` block of ``/status`` (contract: docs/concepts/runtime-health.md)."""
        now = self.clock()
        exchange = self.exchange
        with self._lock:
            exchange_json = {
                "connected": exchange.consecutive_errors == 0,
                "errors": exchange.errors,
                "consecutive_errors": exchange.consecutive_errors,
                "rate_limited": exchange.rate_limited,
                "last_error": exchange.last_error,
                "failing_since": iso(exchange.failing_since),
                "last_ok_at": iso(exchange.last_ok_at),
            }
        memory_bytes, memory_limit = memory
        if self.metrics is not None:
            self.metrics.memory.set(memory_bytes)
        return {
            "checked_at": iso(now),
            "data": self.data_block(symbols, now),
            "exchange": exchange_json,
            "orders": {
                "rejects": self.rejects,
                "consecutive_rejects": self.consecutive_rejects,
                "failures": self.failures,
                "consecutive_failures": self.consecutive_failures,
            },
            "slippage": {
                "fills": self.fills,
                "mean_bps": None if self.fills == 0 else round(self.slippage_sum / self.fills, 3),
                "last_bps": None if self.last_slippage is None else round(self.last_slippage, 3),
            },
            "reconcile": {
                "ok": self.reconcile_problems == 0,
                "problems": self.reconcile_problems,
                "last_problem": self.last_reconcile_problem,
                "checked_at": iso(self.reconcile_checked_at),
            },
            "models": models_block(status.get("models"), status.get("drift")),
            "anomaly_score": status.get("anomaly_score"),
            **confidence.to_json(),
            "memory_bytes": memory_bytes,
            "memory_limit_bytes": memory_limit,
            "margin_used_percent": margin_used_percent,
        }


CONFIDENCE_RECENT = 20  # signals in the recent mean
CONFIDENCE_USUAL = 500  # signals before those, at most, in the usual mean
CONFIDENCE_USUAL_MIN = 50  # before this many, nothing is usual yet


class SignalConfidence:
    """The confidence of the signals that set a target (0..1): the latest, the mean of the last ``CONFIDENCE_RECENT``
    and the mean of up to ``CONFIDENCE_USUAL`` before those, what is usual for this strategy. Strategies differ in
    what they call confident (a crossover's confidence is low at every cross, by design), so "low" is measured against
    the strategy's own usual (the LowConfidence rule), not against one number for all."""

    __slots__ = ("_recent", "_usual", "last", "signals")

    def __init__(self) -> None:
        self.last: float | None = None
        self.signals = 0
        self._recent: deque[float] = deque(maxlen=CONFIDENCE_RECENT)
        self._usual: deque[float] = deque(maxlen=CONFIDENCE_USUAL)

    def observe(self, confidence: float) -> None:
        recent = self._recent
        if len(recent) == CONFIDENCE_RECENT:
            self._usual.append(recent[0])  # leaves the recent window for the usual one
        recent.append(confidence)
        self.last = confidence
        self.signals += 1

    def to_json(self) -> dict[str, Any]:
        """The health block's confidence figures; a mean is null until its window has enough signals."""
        recent, usual = self._recent, self._usual
        return {
            "confidence": self.last,
            "confidence_recent_mean": (
                round(math.fsum(recent) / len(recent), 6) if len(recent) == CONFIDENCE_RECENT else None
            ),
            "confidence_usual_mean": (
                round(math.fsum(usual) / len(usual), 6) if len(usual) >= CONFIDENCE_USUAL_MIN else None
            ),
            "confidence_usual_signals": len(usual),
            "confidence_recent_signals": CONFIDENCE_RECENT,  # the recent window, for the LowConfidence message
        }


def models_block(models: Mapping[str, Any] | None, drift: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The models' health from the status's ``models`` and ``drift``; None without models. ``accuracy`` and
    ``baseline_accuracy`` are those of the model whose live accuracy fell furthest below its version's holdout
    accuracy (``accuracy_model``), among the models that report both (``ml.accuracy``); null when none does."""
    if not models and not drift:
        return None
    # drift the runtime acted on (an early retrain asked, the drift not passed since); drift only reported (a version
    # not judged yet: a model retrained on schedule sooner than the drift check judges it) is the schedule's to follow
    drifted = {
        name for name, entry in (drift or {}).items() if entry.get("drifted") and entry.get("early_retrain", True)
    }
    # a model the runtime took out of the vote for drift (its drift entry, cached up to a second, may not say so yet)
    drifted.update(name for name, entry in (models or {}).items() if entry.get("state") == "drifted")
    # a model not trained yet (no version) is out of the vote by design, not degraded
    out_of_vote = [
        name
        for name, entry in (models or {}).items()
        if entry.get("version") is not None and not entry.get("in_vote", True)
    ]
    failing = [name for name, entry in (models or {}).items() if entry.get("state") in ("failed", "drifted", "stale")]
    worst = worst_accuracy(models or {})
    return {
        "degraded": bool(drifted or out_of_vote or failing),
        "drifted": sorted(drifted),
        "accuracy": None if worst is None else worst[1],
        "baseline_accuracy": None if worst is None else worst[2],
        "accuracy_model": None if worst is None else worst[0],
    }


def worst_accuracy(models: Mapping[str, Any]) -> tuple[str, float, float] | None:
    """(model, live accuracy, baseline accuracy) of the model with the largest drop of the two (the first by name
    among equal drops); None when no model reports both."""
    worst: tuple[float, str, float, float] | None = None
    for name in sorted(models):
        entry = models[name]
        accuracy, baseline = entry.get("accuracy"), entry.get("baseline_accuracy")
        if accuracy is None or baseline is None:
            continue
        drop = baseline - accuracy
        if worst is None or drop > worst[0]:
            worst = (drop, name, accuracy, baseline)
    return None if worst is None else worst[1:]


def margin_used_percent(
    positions: Mapping[str, float], prices: Mapping[str, float], equity: float, max_leverage: float
) -> float | None:
    """The share of equity held as margin: gross notional / leverage / equity x 100; None without leverage."""
    if max_leverage <= 1.0:
        return None
    if equity <= 0:
        return 100.0
    gross = sum(abs(quantity) * prices.get(symbol, 0.0) for symbol, quantity in positions.items())
    return round(gross / max_leverage / equity * 100.0, 3)


CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
NO_LIMIT = 1 << 60  # cgroup v1 writes a number near 2**63 for "no limit"


def memory_usage(statm: str = "/proc/self/statm", limits: tuple[str, ...] = CGROUP_LIMITS) -> tuple[int, int | None]:
    """(resident bytes of this process, the container's memory limit or None)."""
    import os
    import resource

    try:
        with open(statm) as file:
            rss = int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the peak, where /proc is missing
    return rss, cgroup_limit(limits)


def cgroup_limit(paths: tuple[str, ...] = CGROUP_LIMITS) -> int | None:
    for path in paths:
        try:
            with open(path) as file:
                text = file.read().strip()
        except OSError:
            continue
        if text == "max":
            return None
        try:
            value = int(text)
        except ValueError:
            continue
        return None if value >= NO_LIMIT else value
    return None
