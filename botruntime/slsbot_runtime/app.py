"""Process wiring: from a RuntimeConfig to a running loop thread, an HTTP server and clean exits.

``run_runtime`` is what ``slsbot runtime`` calls. Building has two steps, so that a bad config fails at once
and an unreachable exchange does not:

* ``prepare_runtime``: everything that comes from the config alone (the account wiring checks, the deciders
  with their feature engines, the risk manager, the loop settings). Only ``ConfigError`` (exit code 2).
* ``connect_runtime``: over a state file, the exchange (paper, or ccxt with the account's credentials), on a
  live feed the exchange's clock and, for a real account, its balances, then the loop and the feed. A live
  runtime connects on its loop thread and retries (see ``runtime_process``); a replay connects up front.

``build_runtime`` does both at once, for tests, the backtester and the benchmarks. ``run_runtime`` returns the
exit code: 0 after ``--until-end``, a plain ``/shutdown`` or SIGTERM/SIGINT (state flushed first), 1 when trading
halted on an error under ``--until-end``, 2 for a config the runtime cannot run. A ``/shutdown`` that cancels or
flattens (a drain) marks the state file drained and the process stays up, idle, until SIGTERM; a runtime started
on a drained state file connects to nothing and only serves its final status (``slsbot_runtime.drained``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from slsbot.api import AccountMode, RuntimeConfig, parse_duration
from slsbot.api.strategy import DataSource, SizingMethod
from slsbot_runtime.allocation import Allocation
from slsbot_runtime.control_access import ControlAccess
from slsbot_runtime.data.discovery import load_history
from slsbot_runtime.data.replay import ReplayFeed
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.domain.timeframes import interval_ms
from slsbot_runtime.domain.trading_mode import TradingModeState
from slsbot_runtime.domain.types import Candle
from slsbot_runtime.drained import DrainedState, load_drained
from slsbot_runtime.engine.loop import LoopSettings, TradingLoop
from slsbot_runtime.engine.signals import AnomalyScoringDecider, Decider, EnsembleDecider
from slsbot_runtime.exchange.base import Exchange
from slsbot_runtime.exchange.paper import PaperExchange, split_symbol
from slsbot_runtime.metrics import RuntimeMetrics
from slsbot_runtime.monitoring.anomaly import AnomalyDetector, AnomalyMonitor, AnomalySettings, anomaly_model
from slsbot_runtime.persistence.equity_retention import EquityRetentionPolicy
from slsbot_runtime.persistence.store import StateStore
from slsbot_runtime.risk.headroom import awaiting_headroom, headroom_from_meta
from slsbot_runtime.risk.manager import RiskManager
from slsbot_runtime.runtime_process import BuiltRuntime, RuntimeProcess
from slsbot_runtime.server import RuntimeServer
from slsbot_runtime.strategy.registry import LIBRARY, ComponentRegistry

__all__ = [
    "BuiltRuntime",
    "ControlAccess",
    "RuntimeOptions",
    "RuntimeParts",
    "build_deciders",
    "build_runtime",
    "check_account_wiring",
    "config_problems",
    "connect_runtime",
    "prepare_runtime",
    "run_runtime",
]

if TYPE_CHECKING:  # scikit-learn is imported only by runtimes that have models
    from slsbot_runtime.exchange.credentials import ExchangeCredentials
    from slsbot_runtime.exchange.vault import SecretVersion, VaultCredentialSource
    from slsbot_runtime.exchange_time import ExchangeClock
    from slsbot_runtime.ml.bank import ModelBank

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """Command-line overrides and process settings; ``None`` keeps the config's value."""

    state_path: str | None = None
    port: int | None = None
    until_end: bool = False
    default_data_dir: str | None = None  # when marketData.dataDir is unset
    health_deadline_s: float | None = None  # default: max(30 s, 3 x the pace)
    #: Scheme, host (and path prefix) every exchange REST call goes to instead of the exchange's own
    #: (``SLSBOT_EXCHANGE_ENDPOINT``: a proxy, a private mirror, a local fake exchange).
    exchange_endpoint: str | None = None
    #: How often a live runtime reads the exchange's server time again (``--exchange-time-sync``).
    exchange_time_sync_s: float = 30.0


@dataclass(slots=True)
class RuntimeParts:
    """What one runtime is made of that comes from its config alone: no network, no state file."""

    config: RuntimeConfig
    options: RuntimeOptions
    settings: LoopSettings  # a real account's starting cash is its free quote balance, read when connecting
    deciders: dict[str, Decider]
    risk: RiskManager
    metrics: RuntimeMetrics | None
    models: ModelBank | None = None  # the signal models (spec.ml), shared by the symbols' deciders
    #: The Vault session of an account whose keys are in Vault, made by the first connect and kept by the next ones
    #: (a connect tried again logs in again only when its token is gone, not once per attempt).
    vault: VaultCredentialSource | None = None

    @property
    def live_feed(self) -> bool:
        return self.config.market_data.source == DataSource.EXCHANGE

    @property
    def state_path(self) -> str:
        return self.options.state_path or self.config.state.path


def interval_ms_of(config: RuntimeConfig) -> int:
    return interval_ms(str(config.timeframe))


def build_deciders(
    config: RuntimeConfig,
    *,
    metrics: RuntimeMetrics | None = None,
    registry: ComponentRegistry = LIBRARY,
    models: ModelBank | None = None,
) -> dict[str, Decider]:
    """One decider per symbol: the feature values its members read (``required_features``, computed
    incrementally per candle), then the voting ensemble. A member that raises or returns nonsense counts as
    flat for that candle and is counted in ``strategy_errors``. With ``models``, every voting signal model joins
    each symbol's ensemble as a member named after it (``ml.member``), and the bank sees each candle first. With an
    ``ml.models`` entry of role anomaly, each decider also scores every candle with that symbol's anomaly detector
    (``AnomalyScoringDecider``)."""
    from slsbot_runtime.features.engine import FeatureEngine
    from slsbot_runtime.strategy.ensemble import Ensemble
    from slsbot_runtime.strategy.wrapper import ErrorHook, SafeComponent

    anomaly = anomaly_settings(config)

    on_error: ErrorHook | None = None
    if metrics is not None:
        counter = metrics.strategy_errors

        def on_error(member: str, error: Exception) -> None:
            counter.labels(member).inc()

    deciders: dict[str, Decider] = {}
    for symbol in config.symbols:
        if models is None:
            ensemble = Ensemble(config.ensemble, registry=registry, on_error=on_error)
        else:
            from slsbot_runtime.ml.member import ModelMember

            spec = config.ensemble
            members = [SafeComponent(m.name, registry.build(m), m.weight, on_error=on_error) for m in spec.members]
            members += [
                SafeComponent(m.name, ModelMember(models, symbol, m.name), m.weight, on_error=on_error)
                for m in config.ml.signal_models
                if m.vote
            ]
            ensemble = Ensemble.from_members(
                members,
                voting=spec.voting,
                correlation_penalty=spec.correlation_penalty,
                min_agreement=spec.min_agreement,
            )
        names = ensemble.required_features
        features = FeatureEngine(names, field="ensemble.members[].params").incremental() if names else None
        decider: Decider = EnsembleDecider(ensemble, features, None if models is None else models.observe)
        if anomaly is not None:
            decider = AnomalyScoringDecider(decider, AnomalyMonitor(symbol, anomaly))
        deciders[symbol] = decider
    return deciders


def anomaly_settings(config: RuntimeConfig) -> AnomalySettings | None:
    """The Strategy's anomaly model (``ml.models`` entry with role anomaly), checked; None without one."""
    model = anomaly_model(config.ml.models)
    if model is None:
        return None
    return AnomalySettings.from_spec(
        model, interval_ms=interval_ms_of(config), drift_threshold=config.ml.drift_threshold
    )


def history_candles(config: RuntimeConfig) -> int:
    """Candles a live runtime reads before the stored cursor (or before now, on a first start) so that every
    symbol is warm and, with an anomaly model, its detector has fitted on ``lookback`` rows and crossed one
    ``retrainEvery`` boundary since: the forest is then the one an uninterrupted run would have."""
    needed = config.market_data.warmup_candles
    settings = anomaly_settings(config)
    if settings is not None:
        detector = AnomalyDetector(settings)
        retrain_candles = -(-settings.retrain_ms // interval_ms_of(config))
        needed = max(needed, detector.warmup + settings.lookback + retrain_candles)
    return needed


def check_account_wiring(config: RuntimeConfig) -> str:
    """The account's mode, the candle source, the exchange id and the symbols fit together; returns the quote
    currency. A paper account trades on the simulated exchange (recorded candles, or the exchange's public
    candles with ``marketData.source: exchange``) and never gets a ccxt trading client; a testnet or live
    account trades through ccxt on the exchange's own candles and never on the simulated exchange."""
    account = config.account
    paper = account.mode == AccountMode.PAPER
    if not paper and config.market_data.source == DataSource.REPLAY:
        raise ConfigError(
            f"marketData.source: a {account.mode} account sends real orders to {account.exchange}, which cannot "
            "fill them at replayed prices; set marketData.source: exchange, or account.mode: paper to trade "
            "recorded candles on the simulated exchange"
        )
    if not paper or config.market_data.source == DataSource.EXCHANGE:
        from slsbot_runtime.exchange.ccxt_venues import CCXT_EXCHANGES

        if account.exchange not in CCXT_EXCHANGES:
            what = "trading" if not paper else "live candles"
            raise ConfigError(
                f"account.exchange: {account.exchange!r} is not supported for {what}; use one of "
                f"{', '.join(sorted(CCXT_EXCHANGES))}"
            )
    vault = account.vault
    if vault is not None and not paper:
        if vault.address is None:
            raise ConfigError(
                "account.vault.address: no Vault address; set credentials.vault.address on the TradingAccount or "
                "SLSBOT_VAULT_ADDR for the operator (or slsbot up)"
            )
        if vault.auth is None:
            raise ConfigError(
                "account.vault.auth: no way to log in to Vault; set credentials.vault.auth on the TradingAccount, or "
                "SLSBOT_VAULT_TOKEN_FILE (or SLSBOT_VAULT_ROLE_ID and SLSBOT_VAULT_SECRET_ID_FILE) for slsbot up"
            )
    quotes = {split_symbol(s)[1] for s in config.symbols}
    quote = account.paper.quote_currency if paper else sorted(quotes)[0]
    if quotes != {quote}:
        wanted = f"in {quote} (account.paper.quoteCurrency)" if paper else "in one currency (the account's cash)"
        raise ConfigError(f"symbols: every symbol must be quoted {wanted}, got {', '.join(sorted(quotes))}")
    return quote


def prepare_runtime(
    config: RuntimeConfig,
    options: RuntimeOptions,
    *,
    metrics: RuntimeMetrics | None = None,
    registry: ComponentRegistry = LIBRARY,
) -> RuntimeParts:
    """The config-only pieces of one runtime; ConfigError naming the field when it cannot run."""
    quote = check_account_wiring(config)
    replay = config.market_data.source == DataSource.REPLAY
    settings = LoopSettings(
        name=config.name,
        strategy_key=f"{config.namespace}/{config.name}",
        symbols=tuple(config.symbols),
        interval_ms=interval_ms_of(config),
        warmup_candles=config.market_data.warmup_candles,
        starting_cash=config.account.paper.starting_balance,
        quote_currency=quote,
        long_only=config.long_only,
        fixed_quantity=config.sizing.quantity if config.sizing.method == SizingMethod.FIXED_QUANTITY else None,
        paused=config.paused,
        round_trip_cost=2 * config.account.paper.fee_rate,
        commit_every_candles=1000 if replay and config.market_data.seconds_per_candle == 0 else 1,
        stale_after_candles=config.risk.healing.stale_after_candles,
        stale_after_min_s=parse_duration(config.risk.healing.stale_after_min).total_seconds(),
        reject_limit=config.risk.healing.reject_limit,
    )
    models = None
    if config.ml.signal_models:
        from slsbot_runtime.ml.wiring import build_model_bank

        models = build_model_bank(config, state_path=options.state_path or config.state.path, metrics=metrics)
    deciders = build_deciders(config, metrics=metrics, registry=registry, models=models)
    risk = RiskManager(config.risk, config.sizing, config.long_only, allocation_percent=config.allocation_percent)
    return RuntimeParts(config, options, settings, deciders, risk, metrics, models)


def config_problems(config: RuntimeConfig) -> list[str]:
    """Why this runtime would refuse ``config`` (``"field: message"`` lines, fields in RuntimeConfig terms), checked
    the way ``slsbot runtime`` checks it at start, with nothing opened: no state file, no network, no candles. The
    control plane runs it before it creates a runtime, so both sides refuse exactly the same configs."""
    try:
        prepare_runtime(config, RuntimeOptions())
    except ConfigError as error:
        return [str(error)]
    return []


def build_replay_feed(config: RuntimeConfig, default_data_dir: str | None) -> ReplayFeed:
    folder = config.market_data.data_dir or default_data_dir
    if folder is None:
        raise ConfigError(
            "marketData.dataDir: a replay needs the folder of recorded candles; set it, or pass "
            "--data-dir / SLSBOT_MARKET_DATA"
        )
    interval = interval_ms_of(config)
    histories = [
        load_history(Path(folder), symbol, str(config.timeframe), interval_ms=interval, start=config.market_data.start)
        for symbol in config.symbols
    ]
    return ReplayFeed(histories, interval_ms=interval, loop=config.market_data.loop)


def build_exchange(
    config: RuntimeConfig, *, endpoint: str | None = None, credentials: ExchangeCredentials | None = None
) -> Exchange:
    """The simulated exchange for a paper account; the ccxt adapter with the account's credentials otherwise
    (``credentials`` when given, e.g. from Vault; else the files of ``account.credentialsDir`` or the environment)."""
    account = config.account
    if account.mode == AccountMode.PAPER:
        return PaperExchange(account.paper, interval_ms=interval_ms_of(config), allow_short=not config.long_only)
    from slsbot_runtime.exchange.ccxt_venues import open_ccxt_exchange
    from slsbot_runtime.exchange.credentials import load_credentials

    if credentials is None:
        credentials = load_credentials(account.credentials_dir)
    return open_ccxt_exchange(
        account.exchange, credentials, testnet=account.mode == AccountMode.TESTNET, endpoint=endpoint
    )


def open_vault(
    config: RuntimeConfig, source: VaultCredentialSource | None = None
) -> tuple[VaultCredentialSource, SecretVersion] | None:
    """For an account whose keys are in Vault: the source (``source``, else a new one) and the newest version of the
    secret; None otherwise. AuthenticationError or CredentialsUnavailable (an ExchangeError: connecting is tried
    again)."""
    account = config.account
    if account.vault is None or account.mode == AccountMode.PAPER:
        return None
    if source is None:
        from slsbot_runtime.exchange.vault import VaultCredentialSource

        source = VaultCredentialSource(account.vault, account=account.name)
    secret = source.read()
    log.info("credentials: version %d of %s from Vault", secret.version, source.data_path)
    return source, secret


def connect_runtime(parts: RuntimeParts, store: StateStore) -> BuiltRuntime:
    """Open the exchange and the feed and build the loop over ``store``. On a live feed this asks the exchange
    for its time and (real accounts) its balances: ExchangeError, e.g. AuthenticationError, when it cannot."""
    config, options = parts.config, parts.options
    if not parts.live_feed:
        exchange = build_exchange(config)
        loop = _loop(parts, parts.settings, exchange, store)
        feed = build_replay_feed(config, options.default_data_dir)
        return BuiltRuntime(loop, feed, config.market_data.seconds_per_candle, False, store)

    from slsbot_runtime.data.live import open_live_feed
    from slsbot_runtime.exchange_time import ExchangeClock, ccxt_server_time

    account = config.account
    testnet = account.mode == AccountMode.TESTNET
    endpoint = options.exchange_endpoint
    if endpoint is not None:
        log.info("exchange endpoint: %s (instead of %s's own)", endpoint, account.exchange)
    clock = ExchangeClock(
        ccxt_server_time(account.exchange, testnet=testnet, endpoint=endpoint), sync_s=options.exchange_time_sync_s
    )
    vault = open_vault(config, parts.vault)
    if vault is not None:
        parts.vault = vault[0]
    exchange = build_exchange(config, endpoint=endpoint, credentials=None if vault is None else vault[1].credentials)
    settings = parts.settings
    if account.mode != AccountMode.PAPER:
        balances = exchange.fetch_balances()
        quote = settings.quote_currency
        settings = dataclasses.replace(settings, starting_cash=balances[quote].free if quote in balances else 0.0)
    loop = _loop(parts, settings, exchange, store)
    clock.observer = loop.health  # a failed re-read is a failed exchange call
    if vault is not None and account.vault is not None:
        source, in_use = vault
        loop.attach_key_rotation(source, in_use, account.vault.rotation)
    now_ms = clock.now_ms()
    interval = settings.interval_ms
    cursor = store.load_cursor()
    history = max(history_candles(config), parts.models.history_candles if parts.models is not None else 0)
    since = (min(cursor.values()) if cursor else now_ms) - (history + 1) * interval  # what a retrain reads
    feed: Iterable[Candle] = open_live_feed(
        account.exchange,
        config.symbols,
        str(config.timeframe),
        testnet=testnet,
        endpoint=endpoint,
        since_ms=since,
        clock=clock,
        observer=loop.health,  # every call's outcome: the exchange is failing from its first failed call
    )
    loop.trade_from_ts = now_ms - 2 * interval  # catching up: candles that closed before the start only inform
    return BuiltRuntime(loop, feed, 0.0, True, store, exchange_ms=functools.partial(_exchange_now_ms, clock))


def _exchange_now_ms(clock: ExchangeClock) -> int:
    """The exchange's time from the last measured offset: never a network call (``/status`` asks it)."""
    return int(time.monotonic() * 1000 + clock.offset_ms)


def equity_retention(config: RuntimeConfig) -> EquityRetentionPolicy | None:
    """``state.equityRetention`` as the store takes it; None when every row is kept (``keepAll``)."""
    retention = config.state.equity_retention
    if retention.keep_all:
        return None
    return EquityRetentionPolicy(
        full_ms=retention.full_resolution_ms,
        bucket_ms=retention.downsample_interval_ms,
        max_rows=retention.max_downsampled_rows,
    )


def _loop(parts: RuntimeParts, settings: LoopSettings, exchange: Exchange, store: StateStore) -> TradingLoop:
    store.retain_equity(equity_retention(parts.config))
    loop = TradingLoop(
        settings,
        exchange=exchange,
        store=store,
        deciders=parts.deciders,
        risk=parts.risk,
        metrics=parts.metrics,
        models=parts.models,
    )
    if parts.models is not None:
        parts.models.on_wait = loop.beat  # a replay waiting for a retrain still answers /healthz
    return loop


def build_runtime(
    config: RuntimeConfig,
    options: RuntimeOptions,
    *,
    metrics: RuntimeMetrics | None = None,
    registry: ComponentRegistry = LIBRARY,
) -> BuiltRuntime:
    """Every piece of one runtime, not started. A config it refuses leaves no state file behind."""
    parts = prepare_runtime(config, options, metrics=metrics, registry=registry)
    store = StateStore.open(parts.state_path)
    try:
        return connect_runtime(parts, store)
    except BaseException:
        store.close()
        raise


def run_runtime(config: RuntimeConfig, options: RuntimeOptions, *, access: ControlAccess) -> int:
    """Build, serve and run one runtime until the feed ends (``until_end``), a shutdown or a signal. ``access``
    says who may call its control endpoints (the token comes from ``slsbot runtime``, read once there)."""
    registry = CollectorRegistry()
    metrics = RuntimeMetrics(registry)
    metrics.start_time.set_to_current_time()
    parts = prepare_runtime(config, options, metrics=metrics)
    if options.exchange_endpoint is not None and not parts.live_feed and config.account.mode == AccountMode.PAPER:
        log.warning("SLSBOT_EXCHANGE_ENDPOINT is ignored: this paper runtime replays recorded candles")
    store = StateStore.open(parts.state_path)
    try:
        drained = load_drained(store, strategy_key=parts.settings.strategy_key)
        if drained is not None:
            log.warning(
                "state %s was drained at %s (cancelOrders=%s flatten=%s): not trading, serving its final status; "
                "a new state file starts trading again",
                parts.state_path,
                drained.drained_at,
                drained.cancel_orders,
                drained.flatten,
            )
            connect: Callable[[], BuiltRuntime] = _drained_never_connects
        elif parts.live_feed:
            connect = functools.partial(connect_runtime, parts, store)
        else:
            connect = functools.partial(_identity, connect_runtime(parts, store))  # a replay fails at once
        return _serve(parts, store, connect, registry, metrics, access=access, drained=drained)
    finally:
        if parts.models is not None:
            parts.models.close()  # the training process
        store.close()


def _identity(built: BuiltRuntime) -> BuiltRuntime:
    return built


def _drained_never_connects() -> BuiltRuntime:
    raise AssertionError("a drained runtime never connects")


def _serve(
    parts: RuntimeParts,
    store: StateStore,
    connect: Callable[[], BuiltRuntime],
    registry: CollectorRegistry,
    metrics: RuntimeMetrics,
    *,
    access: ControlAccess,
    drained: DrainedState | None,
) -> int:
    config, options = parts.config, parts.options
    pace = 0.0 if parts.live_feed else config.market_data.seconds_per_candle
    retention = equity_retention(config)
    process = RuntimeProcess(
        connect,
        name=config.name,
        state_path=parts.state_path,
        until_end=options.until_end,
        health_deadline_s=options.health_deadline_s or max(30.0, 3 * pace),
        metrics=metrics,
        store=store,
        drained=drained,
        strategy_key=parts.settings.strategy_key,
        allocation=Allocation.load(store.load_meta(), spec_percent=config.allocation_percent),
        headroom=headroom_from_meta(store.load_meta()) or awaiting_headroom(str(config.risk.scope), time.time()),
        full_resolution_ms=None if retention is None else retention.full_ms,
        trading_mode=TradingModeState.load(store.load_meta()),
    )
    if not access.configured:
        if access.insecure:
            log.warning("--insecure-control: the control endpoints need no token; for local development only")
        else:
            log.warning("no SLSBOT_RUNTIME_TOKEN(_FILE): the control endpoints (/status, /orders, POST) answer 403")
    port = config.server.port if options.port is None else options.port
    server = RuntimeServer(process, registry, host=config.server.host, port=port, access=access)
    store.stage_meta("http_port", server.port)
    store.stage_meta("pid", os.getpid())
    store.commit()
    server.start()
    print(
        f"slsbot runtime {config.namespace}/{config.name} listening on http://{server.host}:{server.port}", flush=True
    )
    previous = {sig: signal.signal(sig, lambda *_: process.stop()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        process.start()
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
