"""Strategy: what a bot trades, how it decides, and the runtime that carries it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from slsbot.api.base import Duration, Name, ObjectRef, ObjectStatus, SpecModel, parse_duration
from slsbot.api.health import HealingStatus
from slsbot.api.riskpolicy import RiskLimits

SYMBOL_PATTERN = r"^[A-Z0-9]{2,15}/[A-Z0-9]{2,15}(:[A-Z0-9]{2,15})?$"
Symbol = Annotated[str, Field(pattern=SYMBOL_PATTERN, max_length=47)]
PRESERVE = {"x-kubernetes-preserve-unknown-fields": True}


class Timeframe(StrEnum):
    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"


TIMEFRAME_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}


class Voting(StrEnum):
    MAJORITY = "majority"
    SHARPE = "sharpe"
    CONFIDENCE = "confidence"


class EnsembleMember(SpecModel):
    name: Name = Field(description="Unique within the ensemble; used in attribution and metrics.")
    strategy: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=63,
        description="Library id, e.g. sma_cross or rsi_reversion.",
    )
    version: int = Field(default=1, ge=1, le=1000, description="Interface version of the strategy component.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        json_schema_extra=PRESERVE,
        description="Component parameters; see the reference.",
    )
    weight: float = Field(default=1.0, ge=0, le=1000)


class Ensemble(SpecModel):
    members: list[EnsembleMember] = Field(min_length=1, max_length=32)
    voting: Voting = Voting.MAJORITY
    correlation_penalty: float = Field(
        default=0.5, ge=0, le=1, description="How much to discount members whose signals move together."
    )
    min_agreement: float = Field(
        default=0.0, ge=0, le=1, description="Minimum net vote (0..1) before the ensemble acts."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Ensemble:
        names = [m.name for m in self.members]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"ensemble.members: names must be unique, {', '.join(dupes)} repeated")
        return self


class ModelKind(StrEnum):
    RANDOM_FOREST = "randomForest"
    GRADIENT_BOOSTING = "gradientBoosting"
    LOGISTIC_REGRESSION = "logisticRegression"
    STACKING = "stacking"
    ISOLATION_FOREST = "isolationForest"


#: Kinds that predict the sign of the forward return (``role: signal``); isolationForest is for ``role: anomaly``.
SIGNAL_KINDS = ("randomForest", "gradientBoosting", "logisticRegression", "stacking")


class ModelRole(StrEnum):
    SIGNAL = "signal"
    ANOMALY = "anomaly"


class Calibration(StrEnum):
    SIGMOID = "sigmoid"
    ISOTONIC = "isotonic"


class MLModel(SpecModel):
    """A scikit-learn model over the feature engine's features. A ``signal`` model predicts the probability that
    the close ``horizon`` candles ahead is above this close, and joins the ensemble's vote as a member named after
    it, direction the side it favours and confidence |2p - 1| (see docs/concepts/models.md)."""

    name: Name
    kind: ModelKind
    role: ModelRole = ModelRole.SIGNAL
    features: list[str] = Field(default_factory=list, max_length=256, description="Empty means all features.")
    lookback: int = Field(
        default=2000, ge=100, le=1_000_000, description="Candles of history per symbol to train on at each retrain."
    )
    retrain_every: Duration = Field(
        default="24h", description="Candle time between retrains, aligned to the UTC epoch (a 24h model at 00:00)."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        json_schema_extra=PRESERVE,
        description="Parameters of the model kind, by their scikit-learn names (max_iter, max_depth, C, ...); "
        "see docs/concepts/models.md.",
    )
    horizon: int = Field(
        default=1, ge=1, le=1000, description="Candles ahead whose return sign is predicted (the label window)."
    )
    embargo: int = Field(
        default=1,
        ge=0,
        le=10_000,
        description="Candles dropped between training and validation data beyond the purged label window.",
    )
    calibration: Calibration = Field(
        default=Calibration.SIGMOID,
        description="How probabilities are calibrated on a held-out block: sigmoid (Platt) or isotonic.",
    )
    holdout_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=0.5,
        description="Newest share of the training window held out to score the candidate against the current model.",
    )
    calibration_fraction: float = Field(
        default=0.2, gt=0, lt=0.5, description="Share of the window, before the holdout, used to calibrate."
    )
    inputs: list[Name] = Field(
        default_factory=list,
        max_length=15,
        description="stacking only: the signal models it combines (at least two, with this model's lookback, "
        "retrainEvery, horizon and embargo).",
    )
    vote: bool = Field(
        default=True, description="Join the ensemble's vote; false for a model that only feeds a stacking model."
    )
    weight: float = Field(default=1.0, ge=0, le=1000, description="The member's weight in the vote.")
    pinned_version: int | None = Field(
        default=None,
        ge=1,
        description="Use this version from the registry and never retrain; unset: the newest approved version, "
        "retrained on schedule. Refused in backtests, which retrain as they walk forward.",
    )
    replace_tolerance: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="A candidate replaces the current model when its holdout log loss is at most "
        "(1 + replaceTolerance) times the current model's on the same holdout.",
    )
    stale_after: Duration | None = Field(
        default=None,
        description="Candle time after the last completed retrain at which the model leaves the vote as stale; "
        "3 x retrainEvery if unset.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> MLModel:
        where = f"ml.models[{self.name}]"
        if self.role == ModelRole.SIGNAL and self.kind not in SIGNAL_KINDS:
            raise ValueError(f"{where}.kind: {self.kind} is an anomaly model; set role: anomaly, or a signal kind")
        if self.kind == ModelKind.STACKING and len(self.inputs) < 2:
            raise ValueError(f"{where}.inputs: a stacking model combines at least two signal models; name them")
        if self.kind != ModelKind.STACKING and self.inputs:
            raise ValueError(f"{where}.inputs: only a stacking model has inputs; remove them or set kind: stacking")
        if self.kind == ModelKind.STACKING and self.features:
            raise ValueError(f"{where}.features: a stacking model reads its inputs' predictions, not features")
        if self.holdout_fraction + self.calibration_fraction >= 0.8:
            raise ValueError(
                f"{where}.holdoutFraction: with calibrationFraction it leaves under 20% of the window to train on; "
                "lower one of them"
            )
        if parse_duration(self.retrain_every).total_seconds() < 60:
            raise ValueError(f"{where}.retrainEvery: {self.retrain_every!r} is under a minute; use e.g. 24h")
        return self

    @property
    def retrain_every_ms(self) -> int:
        return int(parse_duration(self.retrain_every).total_seconds() * 1000)

    @property
    def stale_after_ms(self) -> int:
        if self.stale_after is None:
            return 3 * self.retrain_every_ms
        return int(parse_duration(self.stale_after).total_seconds() * 1000)


class TrainingWorker(SpecModel):
    """The separate process that trains models, so the trading loop never waits on it."""

    memory_mib: int = Field(
        default=2048,
        alias="memoryMiB",
        ge=512,
        le=65_536,
        description="Address-space bound of the training process, in MiB (its libraries map ~600 MiB of it).",
    )
    threads: int = Field(default=1, ge=1, le=64, description="Threads the training process may use (CPU bound).")
    nice: int = Field(default=10, ge=0, le=19, description="Scheduling niceness of the training process.")
    timeout: Duration = Field(default="30m", description="Wall time after which a training job is killed (failed).")

    @property
    def timeout_s(self) -> float:
        return parse_duration(self.timeout).total_seconds()


class LiveAccuracySettings(SpecModel):
    """How each signal model's live accuracy is measured: the share of its recent predictions that came true, against
    the accuracy its version scored on its holdout at training (docs/concepts/models.md#live-accuracy)."""

    window: int = Field(
        default=200,
        ge=10,
        le=100_000,
        description="The live accuracy is that of the model's last this many scored predictions, pooled over the "
        "symbols.",
    )
    min_scored: int = Field(
        default=50,
        ge=1,
        le=100_000,
        description="Fewest scored predictions in the window before the live accuracy is reported (null before).",
    )

    @model_validator(mode="after")
    def _min_within_window(self) -> LiveAccuracySettings:
        if self.min_scored > self.window:
            raise ValueError(
                f"ml.accuracy.minScored: {self.min_scored} is more than the window holds ({self.window}); "
                "lower minScored or raise window"
            )
        return self


class MLSettings(SpecModel):
    models: list[MLModel] = Field(default_factory=list, max_length=16)
    drift_threshold: float = Field(
        default=0.2, gt=0, le=1, description="Population stability above this marks the model as drifted."
    )
    accuracy: LiveAccuracySettings = Field(
        default_factory=LiveAccuracySettings,
        description="How each signal model's live accuracy is measured (the incident rule ModelAccuracy compares it "
        "with the version's holdout accuracy).",
    )
    worker: TrainingWorker = Field(default_factory=TrainingWorker, description="The training process's bounds.")

    @model_validator(mode="after")
    def _stacking_inputs(self) -> MLSettings:
        by_name = {model.name: model for model in self.models}
        if len(by_name) != len(self.models):
            names = [m.name for m in self.models]
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"ml.models: names must be unique, {', '.join(dupes)} repeated")
        for model in self.models:
            where = f"ml.models[{model.name}].inputs"
            for name in model.inputs:
                source = by_name.get(name)
                if source is None or source.role != ModelRole.SIGNAL or source.kind == ModelKind.STACKING:
                    raise ValueError(f"{where}: {name!r} is not a non-stacking signal model of ml.models")
                for field in ("lookback", "retrain_every", "horizon", "embargo", "holdout_fraction"):
                    if getattr(source, field) != getattr(model, field):
                        raise ValueError(
                            f"{where}: {name} has another {to_camel(field)} ({getattr(source, field)}); "
                            "a stacking model and its inputs are trained together and need the same"
                        )
                if (source.pinned_version is None) != (model.pinned_version is None):
                    raise ValueError(f"{where}: pin the stacking model and every input, or none of them")
        return self

    @model_validator(mode="after")
    def _anomaly_models(self) -> MLSettings:
        anomaly = [m for m in self.models if m.role == ModelRole.ANOMALY]
        for model in anomaly:
            if model.kind != ModelKind.ISOLATION_FOREST:
                raise ValueError(
                    f"ml.models[{model.name}].kind: an anomaly model must be isolationForest, not {model.kind}"
                )
        if len(anomaly) > 1:
            raise ValueError(
                f"ml.models: one model with role anomaly at most, got {', '.join(m.name for m in anomaly)}; "
                "keep one (its score vetoes entries through the RiskPolicy's anomaly section)"
            )
        return self

    @property
    def signal_models(self) -> list[MLModel]:
        return [model for model in self.models if model.role == ModelRole.SIGNAL]


def check_model_members(ensemble: Ensemble, ml: MLSettings) -> None:
    """Voting signal models join the ensemble as members named after them: no clash with a member's name."""
    members = {member.name for member in ensemble.members}
    for model in ml.signal_models:
        if model.vote and model.name in members:
            raise ValueError(
                f"ml.models[{model.name}].name: an ensemble member has that name, and a voting model joins the "
                "ensemble under its own; rename one of them"
            )


class ResourceList(SpecModel):
    cpu: str = Field(default="250m", pattern=r"^[0-9]+(\.[0-9]+)?m?$")
    memory: str = Field(default="384Mi", pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")


class Resources(SpecModel):
    requests: ResourceList = Field(default_factory=ResourceList)
    limits: ResourceList = Field(default_factory=lambda: ResourceList(cpu="1", memory="512Mi"))


class RuntimeSettings(SpecModel):
    image: str = Field(
        default="ghcr.io/slsbot/runtime:0.1.0",
        min_length=1,
        max_length=512,
        description="The runtime's image; the operator runs only images from the repositories it allows "
        "(SLSBOT_OPERATOR_ALLOWED_IMAGES, by default ghcr.io/slsbot/runtime with any tag or digest).",
    )
    image_pull_policy: str = Field(default="IfNotPresent", pattern=r"^(Always|IfNotPresent|Never)$")
    resources: Resources = Field(default_factory=Resources)
    port: int = Field(default=8000, ge=1024, le=65535, description="Health, metrics and control port.")


class DataSource(StrEnum):
    REPLAY = "replay"
    EXCHANGE = "exchange"


class MarketData(SpecModel):
    """Where candles come from: a replay of recorded data (paper) or the exchange itself."""

    source: DataSource = DataSource.REPLAY
    data_dir: str | None = Field(
        default=None,
        max_length=1024,
        description="Folder of recorded candles; the runtime's default if unset.",
    )
    start: datetime | None = Field(default=None, description="First candle to replay; the data's start if unset.")
    seconds_per_candle: float = Field(
        default=0.1,
        ge=0,
        le=86_400,
        description="Replay pace in wall seconds per candle; 0 is as fast as it can.",
    )
    loop: bool = Field(default=False, description="Start the replay again from the beginning when it ends.")
    warmup_candles: int = Field(default=50, ge=0, le=100_000, description="Candles read before trading starts.")


class SizingMethod(StrEnum):
    RISK = "risk"
    FIXED_QUANTITY = "fixedQuantity"


class Sizing(SpecModel):
    method: SizingMethod = Field(default=SizingMethod.RISK, description="risk: Kelly within RiskPolicy limits.")
    quantity: float | None = Field(default=None, gt=0, description="Base-asset quantity per entry for fixedQuantity.")

    @model_validator(mode="after")
    def _quantity_for_fixed(self) -> Sizing:
        if self.method == SizingMethod.FIXED_QUANTITY and self.quantity is None:
            raise ValueError("sizing.quantity: fixedQuantity sizing needs a quantity")
        return self


class OnDelete(SpecModel):
    cancel_orders: bool = Field(default=True, description="Cancel open orders before the runtime is removed.")
    flatten: bool = Field(default=False, description="Also close every open position at market.")


class StrategySpec(SpecModel):
    account_ref: ObjectRef
    symbols: list[Symbol] = Field(min_length=1, max_length=64, description="Markets, e.g. BTC/USDT.")
    timeframe: Timeframe = Timeframe.H1
    long_only: bool = Field(default=True, description="Only open long positions (spot).")
    ensemble: Ensemble
    ml: MLSettings = Field(default_factory=MLSettings)
    risk: RiskLimits | None = Field(default=None, description="Overrides of the account's RiskPolicy, field by field.")
    sizing: Sizing = Field(default_factory=Sizing)
    allocation_percent: float = Field(
        default=100.0,
        ge=0,
        le=100,
        description="share of the account's capital this Strategy trades with: sizing and exposure limits apply "
        "to equity x allocationPercent / 100; 0 opens nothing and closes what is held. The Strategies of one "
        "TradingAccount may claim 100 in sum at most; a controller may override it while the runtime runs.",
    )
    market_data: MarketData = Field(default_factory=MarketData)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    paused: bool = Field(default=False, description="Stop opening positions; open orders and positions are kept.")
    on_delete: OnDelete = Field(default_factory=OnDelete)

    @model_validator(mode="after")
    def _symbols(self) -> StrategySpec:
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols: each symbol may appear once")
        check_model_members(self.ensemble, self.ml)
        return self


class StrategyPhase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    RUNNING = "Running"
    PAUSED = "Paused"
    DEGRADED = "Degraded"
    FAILED = "Failed"
    TERMINATING = "Terminating"


class StrategyStatus(ObjectStatus):
    workload: str | None = Field(default=None, description="Deployment or local process that runs the runtime.")
    config_hash: str | None = None
    restarts: int = Field(default=0, ge=0)
    pid: int | None = Field(default=None, description="Runtime process id, in local mode.")
    last_heartbeat: datetime | None = None
    equity: float | None = Field(default=None, description="The runtime's equity, in the quote currency.")
    open_positions: int | None = Field(default=None, ge=0)
    trade_count: int | None = Field(default=None, ge=0, description="Fills booked since the state file began.")
    closed_trades: int | None = Field(default=None, ge=0, description="Round trips closed (wins and losses).")
    return_percent: float | None = Field(
        default=None, description="Equity against the starting equity, in percent, net of fees."
    )
    realized_pnl: float | None = Field(default=None, description="Profit of closed trades, net of fees (quote).")
    unrealized_pnl: float | None = Field(default=None, description="Open positions marked at the last close (quote).")
    win_rate_percent: float | None = Field(default=None, ge=0, le=100, description="Winning closed trades, in %.")
    drawdown_percent: float | None = Field(default=None, ge=0, le=100, description="Below the equity peak now, in %.")
    max_drawdown_percent: float | None = Field(default=None, ge=0, le=100, description="Deepest drawdown seen, in %.")
    idle_reason: str | None = Field(
        default=None,
        max_length=64,
        description="Why a running runtime takes no new trades now (EntriesRefused, WarmingUp, Paused, ...); "
        "unset while it trades. The Trading condition carries the message.",
    )
    healing: HealingStatus | None = Field(
        default=None, description="Where the runtime stands on its healing ladder; unset while it is healthy."
    )
