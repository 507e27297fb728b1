"""From a RuntimeConfig's ``ml`` to the runtime's ``ModelBank``: specs checked (a bad one is a ConfigError naming
``ml.models[<name>]...``), the registry beside the state file, and who trains.

* a runtime (live, or a replay under ``slsbot up``/``slsbot runtime``): a ``WorkerTrainer`` writing the registry
  at ``<state dir>/models``; a replay waits for each retrain, a live feed does not;
* a backtest (state in memory), step or fast: ``InProcessTrainer``, no files. A backtest waits for each retrain as
  a replay does, so a training process would only add its start to every backtest.

Nothing is started or written here: the worker starts with the first retrain, the registry is read on the first
candle (so the control plane's config check has no side effects).
"""

from __future__ import annotations

from collections.abc import Callable

from slsbot.api import RuntimeConfig
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.features.engine import FeatureEngine
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.ml.bank import ModelBank, Trainer
from slsbot_runtime.ml.builders import build_estimator
from slsbot_runtime.ml.registry import ModelRegistry
from slsbot_runtime.ml.schedule import MIN_SAMPLE_CANDLES
from slsbot_runtime.ml.training import ModelSpec
from slsbot_runtime.ml.worker import CountingStore, InProcessTrainer, WorkerBounds, WorkerTrainer

IN_MEMORY = ":memory:"


def model_specs(config: RuntimeConfig) -> list[ModelSpec]:
    """The signal models of ``config`` as training specs, each checked: features known, parameters accepted."""
    specs = []
    for model in config.ml.signal_models:
        where = f"ml.models[{model.name}]"
        if model.features:
            FeatureEngine(model.features, field=f"{where}.features")
        build_estimator(str(model.kind), model.params, model=model.name)
        most = (model.lookback - model.horizon) * len(config.symbols)  # labelled samples a retrain can have
        if most < MIN_SAMPLE_CANDLES:
            needed = -(-MIN_SAMPLE_CANDLES // len(config.symbols)) + model.horizon
            raise ConfigError(
                f"{where}.lookback: {model.lookback} candles per symbol over {len(config.symbols)} symbol(s) leave at "
                f"most {most} labelled samples (horizon {model.horizon}), under the {MIN_SAMPLE_CANDLES} a retrain "
                f"needs, so the model would never train; set lookback to at least {needed}"
            )
        specs.append(ModelSpec.from_api(model))
    return specs


def backtest_bank(
    config: RuntimeConfig, specs: list[ModelSpec], symbols: tuple[str, ...], trainer_factory: Callable[[], Trainer]
) -> ModelBank:
    """A fast-mode bank (also the lookahead check's, per symbol): no registry, each retrain waited for, drift watched
    with ``ml.driftThreshold`` as in every other bank."""
    return ModelBank(
        specs,
        symbols,
        trainer_factory=trainer_factory,
        registry=None,
        drift_threshold=config.ml.drift_threshold,
        accuracy_window=config.ml.accuracy.window,
        accuracy_min_scored=config.ml.accuracy.min_scored,
    )


def build_model_bank(
    config: RuntimeConfig,
    *,
    state_path: str | None = None,
    fast: bool = False,
    metrics: RuntimeMetrics | None = None,
) -> ModelBank | None:
    """The bank of ``config``'s signal models, or None when it has none."""
    specs = model_specs(config)
    if not specs:
        return None
    symbols = tuple(config.symbols)
    if fast:
        return backtest_bank(config, specs, symbols, lambda: InProcessTrainer(CountingStore()))
    worker = config.ml.worker
    bounds = WorkerBounds(worker.memory_mib, worker.threads, worker.nice, worker.timeout_s)
    replay = str(config.market_data.source) == "replay"
    if state_path is None or state_path == IN_MEMORY:
        registry = None

        def trainer_factory() -> Trainer:
            # a step backtest waits for every retrain, as a replay does: a training process would only add its
            # start (scikit-learn imported again) to each backtest, and an evaluation runs dozens of them
            return InProcessTrainer(CountingStore())
    else:
        registry = ModelRegistry.beside(state_path)
        root = registry.root

        def trainer_factory() -> Trainer:
            return WorkerTrainer(root, bounds)

    on_change = None
    if metrics is not None:
        on_change = metrics.set_model_state
    return ModelBank(
        specs,
        symbols,
        trainer_factory=trainer_factory,
        registry=registry,
        wait_for_training=replay,
        on_change=on_change,
        on_retrain=None if metrics is None else metrics.count_retrain,
        drift_threshold=config.ml.drift_threshold,
        accuracy_window=config.ml.accuracy.window,
        accuracy_min_scored=config.ml.accuracy.min_scored,
        on_accuracy=None if metrics is None else metrics.set_model_accuracy,
    )
