"""Rotating the exchange key while a live runtime trades: ``slsbot runtime`` as a real process, its keys in the fake
Vault (token auth, as ``slsbot up`` gives it), trading live-mode through ccxt against the fake Binance on 127.0.0.1,
on recorded candles that close as the test moves the fake's clock on an hour at a time.

* A new version of the secret is written while an order is in flight: the runtime stops new entries, waits for the
  order to fill, switches to the new key, checks it, reconciles and resumes. Zero failed orders, zero client order
  ids sent twice, every order on the exchange in the state file as the exchange has it, and every call after the
  switch signed with the new key (the old one is then revoked and trading goes on). The pause is printed.
* A new version whose key the exchange refuses: the runtime rolls back to the old key, keeps trading on it, and
  reports the failed rotation in ``/status`` (which the control plane's incident rule turns into an incident).
* A Vault token whose policy does not cover the path: ``/status`` says so, naming the path to grant, and the
  exchange is never called; granting it lets the same process start trading.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.fakes (tests is not a package)

from tests.fakes.fake_exchange_server import (  # noqa: E402
    FAKE_API_KEY,
    FAKE_SECRET,
    VENUE_PATHS,
    FakeExchangeServer,
    FillPlan,
    ManualClock,
    utc_ms,
)
from tests.fakes.fake_vault import FakeVault  # noqa: E402
from tests.fakes.test_secrets import KEY_ROTATION_NEW_API_KEY as NEW_API_KEY  # noqa: E402
from tests.fakes.test_secrets import KEY_ROTATION_NEW_SECRET as NEW_SECRET  # noqa: E402
from tests.fakes.test_secrets import KEY_ROTATION_REFUSED_API_KEY as REFUSED_API_KEY  # noqa: E402
from tests.fakes.test_secrets import KEY_ROTATION_REFUSED_SECRET as REFUSED_SECRET  # noqa: E402
from tests.fakes.test_secrets import KEY_ROTATION_THIRD_API_KEY as THIRD_API_KEY  # noqa: E402
from tests.fakes.test_secrets import KEY_ROTATION_THIRD_SECRET as THIRD_SECRET  # noqa: E402
from tests.integration.runtime.test_live_runtime_fake_exchange import (  # noqa: E402
    LiveRuntime,
    clock,  # noqa: F401 - fixture
    fake,  # noqa: F401 - fixture
    newest_closed,
    recorded_klines,  # noqa: F401 - fixture
    start_runtime,  # noqa: F401 - fixture
    step,
    stored_orders,
    wait_for,
)

from slsbot.api.riskpolicy import RiskPolicySpec  # noqa: E402
from slsbot.domain.incident_rules import StrategyObservation, strategy_signals  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]  # in make test-long: > 10 s each

HOUR = 3_600_000
SLSBOT = [sys.executable, "-m", "slsbot.interfaces.cli"]
START = utc_ms("2025-01-02T12:00") + 5_000
CREATE = VENUE_PATHS["binance"].create
MOUNT, PATH = "secret", "slsbot/live-binance"


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[tuple[FakeVault, Path]]:
    with FakeVault() as server:
        server.write_policy("live-binance", [f"{MOUNT}/data/{PATH}", f"{MOUNT}/metadata/{PATH}"])
        server.put_secret(MOUNT, PATH, {"apiKey": FAKE_API_KEY, "secret": FAKE_SECRET})
        token_file = tmp_path / "vault-token"
        token_file.touch(mode=0o600)  # as a token file should be kept (the secret scan skips owner-only files)
        token_file.write_text(server.create_token(["live-binance"], ttl_s=3600))
        yield server, token_file


def write_config(folder: Path, vault: FakeVault, token_file: Path) -> Path:
    config = {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "RuntimeConfig",
        "name": "live-btc",
        "account": {
            "name": "live-binance",
            "exchange": "binance",
            "mode": "live",
            "vault": {
                "address": vault.url,
                "mount": MOUNT,
                "path": PATH,
                "auth": {"method": "token", "tokenFile": str(token_file)},
                "rotation": {"checkEvery": "1s", "settleTimeout": "60s"},
            },
        },
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 3, "slow": 9}}]},
        "sizing": {"method": "fixedQuantity", "quantity": 0.01},
        "marketData": {"source": "exchange", "warmupCandles": 12},
        "server": {"port": 0},
    }
    path = folder / "live.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def credentials_of(runtime: LiveRuntime) -> dict[str, Any]:
    """The runtime's ``/status`` block on its exchange credentials (version in use, rotation phase, last result)."""
    health = runtime.status().get("health") or {}
    return health.get("credentials") or {}


def posted(fake: FakeExchangeServer) -> list[str]:  # noqa: F811
    return [r.params["newClientOrderId"] for r in fake.calls("POST", CREATE)]


def trade_until(runtime: LiveRuntime, clock: ManualClock, fake: FakeExchangeServer, orders: int) -> None:  # noqa: F811
    for _ in range(120):
        if len(posted(fake)) >= orders:
            return
        step(runtime, clock)
    raise AssertionError(f"fewer than {orders} orders within 120 candles")


def assert_no_secret(runtime: LiveRuntime, state: Path, vault: FakeVault) -> None:
    texts = {
        "the log": runtime.log.read_text(errors="replace"),
        "/status": runtime.get("/status").text,
        "/metrics": runtime.get("/metrics").text,
        "the state file": b"".join(p.read_bytes() for p in state.parent.glob("state.db*")).decode("latin-1"),
    }
    secrets = (
        *(FAKE_SECRET, NEW_SECRET, THIRD_SECRET, REFUSED_SECRET),
        *(FAKE_API_KEY, NEW_API_KEY, THIRD_API_KEY, REFUSED_API_KEY),
        *vault.tokens,
    )
    leaked = [f"{s[:6]}... in {name}" for name, text in texts.items() for s in secrets if s in text]
    assert leaked == [], f"a credential appeared: {leaked}"


def test_a_new_key_written_while_an_order_is_in_flight_is_taken_without_a_failed_or_duplicated_order(
    fake: FakeExchangeServer,  # noqa: F811
    clock: ManualClock,  # noqa: F811
    vault: tuple[FakeVault, Path],
    start_runtime: Callable[[Path, Path], LiveRuntime],  # noqa: F811
    tmp_path: Path,
) -> None:
    server, token_file = vault
    state = tmp_path / "state.db"
    runtime = start_runtime(write_config(tmp_path, server, token_file), state)
    wait_for(lambda: runtime.status()["last_candle_ts"] == newest_closed(clock), what="the catch-up")
    assert credentials_of(runtime)["version"] == 1
    trade_until(runtime, clock, fake, 2)

    # The next order fills in two parts, 20 and 30 minutes after it is placed: it is in flight for a while.
    fake.account.fill_plan = FillPlan(parts=2, delay_ms=20 * 60_000, interval_ms=10 * 60_000)
    trade_until(runtime, clock, fake, len(posted(fake)) + 1)
    in_flight = fake.account.orders[-1]
    assert in_flight.status == "NEW"
    fake.add_key(NEW_API_KEY, NEW_SECRET)  # created in the exchange's API management first, then written to Vault
    assert server.put_secret(MOUNT, PATH, {"apiKey": NEW_API_KEY, "secret": NEW_SECRET}) == 2
    wait_for(lambda: credentials_of(runtime)["phase"] == "draining", what="the drain to start")
    assert runtime.status()["trading_mode"] == "safe"
    assert not [r for r in fake.requests if r.api_key == NEW_API_KEY], "switched with an order in flight"

    fake.account.fill_plan = FillPlan()  # orders from now on fill at once (exits still go out while draining)
    step(runtime, clock)  # the parts in flight fall due; the runtime books them, nothing is in flight: it switches
    credentials = wait_for(lambda: (c := credentials_of(runtime))["version"] == 2 and c, what="the switch")
    rotation = credentials["last_rotation"]
    assert (rotation["outcome"], rotation["from_version"], rotation["to_version"]) == ("succeeded", 1, 2)
    assert runtime.status()["trading_mode"] == "normal"  # the mode before the rotation, given back
    switched_at = next(i for i, r in enumerate(fake.requests) if r.api_key == NEW_API_KEY)
    print(
        f"\nkey rotation: entries stood still {rotation['pause_seconds']:.2f}s (from the new version found to the "
        f"resume, waiting one candle for the order in flight; the switch, check and reconcile themselves: "
        f"{len(fake.requests) - switched_at} calls since)"
    )

    rotated = len(posted(fake))
    trade_until(runtime, clock, fake, rotated + 2)
    fake.revoke_key(FAKE_API_KEY)  # the old key is deleted at the exchange: nothing notices
    trade_until(runtime, clock, fake, len(posted(fake)) + 1)

    # A second rotation with nothing in flight: the pause is the switch, the check and the reconcile alone.
    fake.add_key(THIRD_API_KEY, THIRD_SECRET)
    assert server.put_secret(MOUNT, PATH, {"apiKey": THIRD_API_KEY, "secret": THIRD_SECRET}) == 3
    third = wait_for(lambda: (c := credentials_of(runtime))["version"] == 3 and c, what="the second switch")
    print(f"key rotation with nothing in flight: entries stood still {third['last_rotation']['pause_seconds']:.3f}s")
    assert third["last_rotation"]["outcome"] == "succeeded"
    trade_until(runtime, clock, fake, len(posted(fake)) + 1)

    third_at = next(i for i, r in enumerate(fake.requests) if r.api_key == THIRD_API_KEY)
    private = [r for r in fake.requests[switched_at:third_at] if r.api_key is not None]
    assert private and {r.api_key for r in private} == {NEW_API_KEY}, "a call after the switch used the old key"
    assert {r.api_key for r in fake.requests[third_at:] if r.api_key} == {THIRD_API_KEY}
    ids = posted(fake)
    assert len(ids) == len(set(ids)), "a client order id reached the exchange twice"
    theirs = {o.client_order_id: (o.status.lower(), pytest.approx(o.filled)) for o in fake.account.orders}
    wait_for(
        lambda: stored_orders(state) == theirs, timeout=10, what="every order in the state file as the exchange has it"
    )
    assert all(status == "filled" for status, _ in stored_orders(state).values()), "an order failed or was refused"
    health = runtime.status()["health"]
    assert health["orders"]["failures"] == 0 and health["orders"]["rejects"] == 0
    assert runtime.status()["error"] is None
    metrics = runtime.get("/metrics").text
    assert 'slsbot_runtime_credential_rotations_total{outcome="succeeded"} 2.0' in metrics
    assert "slsbot_runtime_credential_rotation_pause_seconds_count 2.0" in metrics
    assert_no_secret(runtime, state, server)
    runtime.process.send_signal(signal.SIGTERM)
    assert runtime.process.wait(timeout=30) == 0


def test_a_key_the_exchange_refuses_is_rolled_back_trading_goes_on_and_the_failure_is_reported(
    fake: FakeExchangeServer,  # noqa: F811
    clock: ManualClock,  # noqa: F811
    vault: tuple[FakeVault, Path],
    start_runtime: Callable[[Path, Path], LiveRuntime],  # noqa: F811
    tmp_path: Path,
) -> None:
    server, token_file = vault
    state = tmp_path / "state.db"
    runtime = start_runtime(write_config(tmp_path, server, token_file), state)
    wait_for(lambda: runtime.status()["last_candle_ts"] == newest_closed(clock), what="the catch-up")
    trade_until(runtime, clock, fake, 1)

    server.put_secret(MOUNT, PATH, {"apiKey": REFUSED_API_KEY, "secret": REFUSED_SECRET})  # unknown to the exchange
    credentials = wait_for(lambda: (c := credentials_of(runtime))["last_rotation"] and c, what="the rotation's result")
    rotation = credentials["last_rotation"]
    assert (rotation["outcome"], rotation["from_version"], rotation["to_version"]) == ("rolled_back", 1, 2)
    assert "the new key was refused" in rotation["reason"] and "AuthenticationError" in rotation["reason"]
    assert credentials["version"] == 1 and credentials["phase"] == "idle"
    assert runtime.status()["trading_mode"] == "normal"

    refused_calls = len([r for r in fake.requests if r.api_key == REFUSED_API_KEY])
    assert refused_calls >= 1  # the check was made with it
    before = len(posted(fake))
    trade_until(runtime, clock, fake, before + 2)  # trading goes on with the old key
    assert {r.api_key for r in fake.requests[-20:] if r.api_key} == {FAKE_API_KEY}
    assert len([r for r in fake.requests if r.api_key == REFUSED_API_KEY]) == refused_calls  # never tried again
    assert all(status == "filled" for status, _ in stored_orders(state).values())
    assert 'slsbot_runtime_credential_rotations_total{outcome="rolled_back"} 1.0' in runtime.get("/metrics").text

    # What the control plane makes of this /status: an incident, severity 2, with its runbook.
    observation = StrategyObservation("default", "live-btc", account="live-binance", runtime_status=runtime.status())
    signals = strategy_signals(observation, RiskPolicySpec(), datetime.now(UTC))
    failed = [s for s in signals if s.rule == "CredentialRotationFailed"]
    assert [(s.severity, s.runbook) for s in failed] == [(2, "runbooks/credential-rotation-failed.md")]
    assert_no_secret(runtime, state, server)


def test_a_token_without_the_policy_is_reported_naming_the_path_and_granting_it_starts_trading(
    fake: FakeExchangeServer,  # noqa: F811
    clock: ManualClock,  # noqa: F811
    vault: tuple[FakeVault, Path],
    start_runtime: Callable[[Path, Path], LiveRuntime],  # noqa: F811
    tmp_path: Path,
) -> None:
    server, token_file = vault
    server.write_policy("live-binance", [])  # the token's policy grants nothing yet
    state = tmp_path / "state.db"
    runtime = start_runtime(write_config(tmp_path, server, token_file), state)

    status = wait_for(lambda: (s := runtime.status())["error"] and s, what="the error in /status")
    assert status["phase"] == "halted" and status["error"].startswith("AuthenticationError: vault read ")
    assert f"permission denied at {server.url}" in status["error"]
    assert f'path "{MOUNT}/data/{PATH}"' in status["error"]  # what to grant
    assert not [r for r in fake.requests if r.api_key is not None], "the exchange was called without keys"

    server.write_policy("live-binance", [f"{MOUNT}/data/{PATH}", f"{MOUNT}/metadata/{PATH}"])
    wait_for(lambda: runtime.status()["error"] is None, what="a retry once the policy is granted")
    wait_for(lambda: runtime.status()["last_candle_ts"] == newest_closed(clock), what="the catch-up")
    assert credentials_of(runtime)["version"] == 1
    assert_no_secret(runtime, state, server)
