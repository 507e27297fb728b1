"""``slsbot runtime``: run one bot runtime from a RuntimeConfig file (the process a pod or the local
supervisor starts). Exit codes: 0 clean stop, 1 trading halted on an error (with --until-end), 2 bad config.

Environment, read once here and passed down: ``SLSBOT_MARKET_DATA`` (recorded candles when neither
``marketData.dataDir`` nor ``--data-dir`` is set), ``SLSBOT_EXCHANGE_ENDPOINT`` (send every exchange REST call
to this ``http(s)://host[:port][/path]`` instead: a proxy, a private mirror, a local fake exchange), and the
credentials variables of ``slsbot_runtime.exchange.credentials`` when neither ``account.credentialsDir`` nor
``account.vault`` is set (with ``account.vault`` the runtime logs in to Vault and reads the keys itself).

Control: ``SLSBOT_RUNTIME_TOKEN`` is the bearer token the control endpoints (``/status``, ``/orders``, every
POST) require; or ``SLSBOT_RUNTIME_TOKEN_FILE``, a file of tokens the control plane rewrites when it rotates its
control key, read again when it changes (``slsbot_runtime.control_access``): the operator and the local supervisor
set one per runtime. Without either those endpoints answer 403,
unless ``--insecure-control`` opens them to anyone (local development and tests only). The probes
(``/healthz``, ``/readyz``, ``/metrics``) are always open."""

from __future__ import annotations

import argparse
import logging
import os
import sys

HELP = "Run one bot runtime from a RuntimeConfig file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="RuntimeConfig YAML file")
    parser.add_argument("--state", metavar="PATH", help="SQLite state file (overrides state.path)")
    parser.add_argument("--port", type=int, metavar="N", help="HTTP port (overrides server.port; 0 picks one)")
    parser.add_argument(
        "--until-end", action="store_true", help="exit 0 when a replay that does not loop has no more candles"
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="recorded candles when marketData.dataDir is unset (default: $SLSBOT_MARKET_DATA)",
    )
    parser.add_argument(
        "--exchange-time-sync",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="live feeds: how often to read the exchange's server time again (default 30)",
    )
    parser.add_argument(
        "--insecure-control",
        action="store_true",
        help="without SLSBOT_RUNTIME_TOKEN(_FILE), serve the control endpoints to anyone (local development only)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    from slsbot_runtime.app import ControlAccess, RuntimeOptions, run_runtime
    from slsbot_runtime.config_loading import ENV_EXCHANGE_ENDPOINT, load_runtime_config, parse_exchange_endpoint
    from slsbot_runtime.control_access import TOKEN_ENVIRONMENT, TOKEN_FILE_ENVIRONMENT
    from slsbot_runtime.domain.errors import ConfigError, SlsbotRuntimeError

    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.port is not None and not 0 <= args.port <= 65535:
        print(f"slsbot runtime: --port: must be between 0 and 65535, got {args.port}", file=sys.stderr)
        return 2
    if not 0 < args.exchange_time_sync <= 3600:
        print(
            f"slsbot runtime: --exchange-time-sync: must be within (0, 3600] seconds, got {args.exchange_time_sync}",
            file=sys.stderr,
        )
        return 2
    try:
        access = ControlAccess.from_environment(
            os.environ.get(TOKEN_ENVIRONMENT),
            insecure=args.insecure_control,
            token_file=os.environ.get(TOKEN_FILE_ENVIRONMENT),
        )
        options = RuntimeOptions(
            state_path=args.state,
            port=args.port,
            until_end=args.until_end,
            default_data_dir=args.data_dir or os.environ.get("SLSBOT_MARKET_DATA"),
            exchange_endpoint=parse_exchange_endpoint(os.environ.get(ENV_EXCHANGE_ENDPOINT)),
            exchange_time_sync_s=args.exchange_time_sync,
        )
        config = load_runtime_config(args.config)
        return run_runtime(config, options, access=access)
    except ConfigError as error:
        print(f"slsbot runtime: invalid config: {error}", file=sys.stderr)
        return 2
    except SlsbotRuntimeError as error:
        print(f"slsbot runtime: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
