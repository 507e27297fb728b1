"""Every metric the runtime exports, with its name and labels, in this one module.

``RuntimeMetrics(registry)`` registers them on the registry it is given (never the global default one),
so two runtimes in one process, or a test, never collide. Label values are bounded sets: symbols and
ensemble members from the config, order statuses, risk rule names.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "slsbot_runtime"
#: Every value of the phase gauge's ``phase`` label: the loop's phases (``engine.status.Phase``) and the phase a
#: drained runtime reports (``drained.DRAINED_PHASE``), which never runs a loop.
#: Every value of a model's ``state`` label (``ml.schedule.STATES``).
MODEL_STATES = ("ready", "training", "missing", "failed", "stale", "drifted")
PHASES = ("starting", "reconciling", "warming_up", "running", "paused", "halted", "finished", "drained")
TRADING_MODES = ("normal", "safe", "halted")
#: Slippage against the expected fill, basis points (negative: better than expected).
SLIPPAGE_BUCKETS = (-50.0, -10.0, -2.0, 0.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0)
#: Seconds new entries stood still for a credential rotation (drain, switch, check, reconcile).
ROTATION_PAUSE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
#: Every value of the rotations counter's ``outcome`` label (``domain.key_rotation.RotationOutcome``).
ROTATION_OUTCOMES = ("succeeded", "rolled_back")
#: Every value of the exchange errors counter's ``kind`` label (``engine.health``): created at 0 so that an alert's
#: ``increase()`` sees the first errors too.
EXCHANGE_ERROR_KINDS = ("error", "rate_limited")
DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class RuntimeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.candles = Counter(
            f"{PREFIX}_candles_processed",
            "Candles the loop processed (replayed ones excluded).",
            ["symbol"],
            registry=registry,
        )
        self.candles_replayed = Counter(
            f"{PREFIX}_candles_replayed",
            "Candles replayed after a restart, up to the stored cursor.",
            registry=registry,
        )
        self.decision_latency = Histogram(
            f"{PREFIX}_decision_latency_seconds",
            "Features, ensemble, risk and order planning for one candle.",
            buckets=DECISION_BUCKETS,
            registry=registry,
        )
        self.orders = Gauge(f"{PREFIX}_orders", "Orders by current status.", ["status"], registry=registry)
        self.order_submissions = Counter(
            f"{PREFIX}_order_submissions",
            "Calls to the exchange to place an order, resends included.",
            registry=registry,
        )
        self.fills = Counter(f"{PREFIX}_fills", "Fills booked.", ["symbol", "side"], registry=registry)
        self.equity = Gauge(f"{PREFIX}_equity", "Account equity in the quote currency.", registry=registry)
        self.cash = Gauge(f"{PREFIX}_cash", "Cash in the quote currency.", registry=registry)
        self.position = Gauge(
            f"{PREFIX}_position", "Signed position in the base currency.", ["symbol"], registry=registry
        )
        self.risk_rejections = Counter(
            f"{PREFIX}_risk_rejections", "Entries refused by the risk manager, by rule.", ["rule"], registry=registry
        )
        self.risk_decisions = Counter(
            f"{PREFIX}_risk_decisions",
            "Risk decisions on proposed trades, by action and by each rule the decision named "
            '(rule="none" for a decision that named none, e.g. a plain approval).',
            ["action", "rule"],
            registry=registry,
        )
        self.strategy_errors = Counter(
            f"{PREFIX}_strategy_errors",
            "Strategy members that raised or returned nonsense.",
            ["member"],
            registry=registry,
        )
        self.feed_gaps = Counter(
            f"{PREFIX}_feed_gaps", "Missing intervals detected in the candle feed.", ["symbol"], registry=registry
        )
        self.feed_stale = Gauge(
            f"{PREFIX}_feed_stale", "1 while the feed has delivered no candle in time.", registry=registry
        )
        self.heartbeat = Gauge(
            f"{PREFIX}_loop_heartbeat_timestamp_seconds", "Wall-clock time of the loop's last tick.", registry=registry
        )
        self.last_candle = Gauge(
            f"{PREFIX}_last_candle_timestamp_seconds", "Open time of the last processed candle.", registry=registry
        )
        self.anomaly_score = Gauge(
            f"{PREFIX}_anomaly_score",
            "The anomaly detector's score of the symbol's latest candle (about 0.5 ordinary, towards 1 unusual).",
            ["symbol"],
            registry=registry,
        )
        self.drift_psi = Gauge(
            f"{PREFIX}_drift_psi",
            "Population stability index of a model's input feature or output (series) against its training window.",
            ["model", "symbol", "series"],
            registry=registry,
        )
        self.model_drifted = Gauge(
            f"{PREFIX}_model_drifted",
            "1 while a series of the model has a PSI above ml.driftThreshold, else 0.",
            ["model"],
            registry=registry,
        )
        self.model_fits = Counter(
            f"{PREFIX}_model_fits",
            "Models fitted in the runtime, by kind: first, schedule (retrainEvery), drift (an early retrain).",
            ["model", "kind"],
            registry=registry,
        )
        self.credential_rotations = Counter(
            f"{PREFIX}_credential_rotations",
            "Exchange key rotations from Vault, by outcome: succeeded, rolled_back (the old key kept).",
            ["outcome"],
            registry=registry,
        )
        self.credential_rotation_pause = Histogram(
            f"{PREFIX}_credential_rotation_pause_seconds",
            "How long new entries stood still for a key rotation, from the stop to the resume or the roll-back.",
            buckets=ROTATION_PAUSE_BUCKETS,
            registry=registry,
        )
        self.credential_version = Gauge(
            f"{PREFIX}_credential_version", "The version of the Vault secret whose key is in use.", registry=registry
        )
        self.start_time = Gauge(
            f"{PREFIX}_start_time_seconds",
            "When this runtime process started (Unix time): a change is a restart.",
            registry=registry,
        )
        self.phase = Gauge(
            f"{PREFIX}_phase", "1 for the runtime's current phase, 0 for the others.", ["phase"], registry=registry
        )

        self.model_state = Gauge(
            f"{PREFIX}_model_state",
            "1 for each signal model's current state (ready, training, missing, failed, stale, drifted), 0 for the "
            "others.",
            ["model", "state"],
            registry=registry,
        )
        self.model_in_vote = Gauge(
            f"{PREFIX}_model_in_vote",
            "1 while the signal model takes part in the ensemble's vote, 0 while it is out of it.",
            ["model"],
            registry=registry,
        )
        self.models_out_of_vote = Gauge(
            f"{PREFIX}_models_out_of_vote", "Signal models out of the vote now (ModelsDegraded).", registry=registry
        )
        self.model_retrains = Counter(
            f"{PREFIX}_model_retrains",
            "Retrains by model and result: replaced (the candidate was not worse out of sample), kept (it was "
            "worse), failed.",
            ["model", "result"],
            registry=registry,
        )
        self.model_holdout_log_loss = Gauge(
            f"{PREFIX}_model_holdout_log_loss",
            "Holdout log loss of each signal model's last candidate.",
            ["model"],
            registry=registry,
        )
        self.model_accuracy = Gauge(
            f"{PREFIX}_model_accuracy",
            "Live accuracy of each signal model's version in use: the share of its last ml.accuracy.window scored "
            "predictions that came true; NaN until ml.accuracy.minScored are scored.",
            ["model"],
            registry=registry,
        )
        self.model_baseline_accuracy = Gauge(
            f"{PREFIX}_model_baseline_accuracy",
            "Holdout accuracy of each signal model's version in use, scored at its training; NaN without a version.",
            ["model"],
            registry=registry,
        )
        # health signals (engine.health, docs/concepts/runtime-health.md)
        self.data_age = Gauge(
            f"{PREFIX}_data_age_seconds",
            "Seconds since the symbol's next candle was due (exchange clock live, wall clock in a paced replay); "
            "-1 when not measurable.",
            ["symbol"],
            registry=registry,
        )
        self.data_stale = Gauge(
            f"{PREFIX}_data_stale",
            "1 while the symbol's data is older than healing.staleAfterCandles intervals.",
            ["symbol"],
            registry=registry,
        )
        self.exchange_connected = Gauge(
            f"{PREFIX}_exchange_connected", "1 while the last call to the exchange succeeded.", registry=registry
        )
        self.exchange_errors = Counter(
            f"{PREFIX}_exchange_errors",
            "Failed calls to the exchange (after the adapter's retries), by kind: error, rate_limited.",
            ["kind"],
            registry=registry,
        )
        for kind in EXCHANGE_ERROR_KINDS:
            self.exchange_errors.labels(kind)
        self.order_problems = Counter(
            f"{PREFIX}_order_problems",
            "Orders the exchange rejected (rejected) or that failed after the retries (failed).",
            ["outcome"],
            registry=registry,
        )
        self.slippage = Histogram(
            f"{PREFIX}_slippage_bps",
            "Fill price against the expected fill (the deciding candle's close), basis points; positive is worse.",
            buckets=SLIPPAGE_BUCKETS,
            registry=registry,
        )
        self.reconcile_problems = Counter(
            f"{PREFIX}_reconcile_problems",
            "Disagreements with the exchange found by a reconciliation or an order refresh.",
            registry=registry,
        )
        self.memory = Gauge(f"{PREFIX}_memory_bytes", "Resident memory of the runtime process.", registry=registry)
        self.trading_mode = Gauge(
            f"{PREFIX}_trading_mode",
            "1 for the trading mode in force (normal, safe, halted), 0 for the others.",
            ["mode"],
            registry=registry,
        )
        # the risk manager's state (risk.manager), set when the status is published: what the alerts on a drawdown near
        # its limit, a tripped breaker and the kill switch read (docs/concepts/monitoring.md)
        self.drawdown = Gauge(
            f"{PREFIX}_drawdown_percent",
            "Drawdown from the equity's peak, percent, as the risk manager measures it against maxDrawdownPercent "
            "(NaN until the runtime first publishes its status).",
            registry=registry,
        )
        self.drawdown_limit = Gauge(
            f"{PREFIX}_drawdown_limit_percent",
            "The RiskPolicy's maxDrawdownPercent: at this drawdown no entry is opened (NaN until the first status).",
            registry=registry,
        )
        # NaN until the first publish (a runtime that starts drained never publishes): 0 of 0 would read as a drawdown
        # at its limit
        self.drawdown.set(math.nan)
        self.drawdown_limit.set(math.nan)
        self.breaker_level = Gauge(
            f"{PREFIX}_breaker_level",
            "The most severe tripped circuit-breaker level (1..3, in increasing drawdown order); 0 when none is.",
            registry=registry,
        )
        self.kill_switch = Gauge(
            f"{PREFIX}_kill_switch",
            "1 while a kill switch is on (the Strategy's RiskPolicy, or its account's or the global one pushed down), "
            "else 0.",
            registry=registry,
        )
        self._out_of_vote: set[str] = set()

    def set_model_state(self, model: str, state: str, in_vote: bool) -> None:
        if state not in MODEL_STATES:
            raise ValueError(f"state: {state!r} is not one of {', '.join(MODEL_STATES)}")
        for value in MODEL_STATES:
            self.model_state.labels(model, value).set(1 if value == state else 0)
        self.model_in_vote.labels(model).set(1 if in_vote else 0)
        if in_vote:
            self._out_of_vote.discard(model)
        else:
            self._out_of_vote.add(model)
        self.models_out_of_vote.set(len(self._out_of_vote))

    def count_retrain(self, model: str, result: str, log_loss: float | None) -> None:
        self.model_retrains.labels(model, result).inc()
        if log_loss is not None:
            self.model_holdout_log_loss.labels(model).set(log_loss)

    def set_model_accuracy(self, model: str, accuracy: float | None, baseline: float | None) -> None:
        """A model's live accuracy and its version's holdout accuracy (None: not measured, NaN)."""
        self.model_accuracy.labels(model).set(math.nan if accuracy is None else accuracy)
        self.model_baseline_accuracy.labels(model).set(math.nan if baseline is None else baseline)

    def set_trading_mode(self, current: str) -> None:
        if current not in TRADING_MODES:
            raise ValueError(f"mode: {current!r} is not one of {', '.join(TRADING_MODES)}")
        for mode in TRADING_MODES:
            self.trading_mode.labels(mode).set(1 if mode == current else 0)

    def set_risk(self, *, drawdown_percent: float, limit_percent: float, breaker_level: int, kill_switch: bool) -> None:
        """The risk manager's state as of its last candle."""
        self.drawdown.set(drawdown_percent)
        self.drawdown_limit.set(limit_percent)
        self.breaker_level.set(breaker_level)
        self.kill_switch.set(1 if kill_switch else 0)

    def set_phase(self, current: str) -> None:
        """The phase gauge: 1 for ``current``, 0 for every other value of ``PHASES``."""
        if current not in PHASES:
            raise ValueError(f"phase: {current!r} is not one of {', '.join(PHASES)}")
        for phase in PHASES:
            self.phase.labels(phase).set(1 if phase == current else 0)
