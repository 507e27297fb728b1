"""``slsbot runtime`` as a real process in testnet mode, trading through ccxt against the fake Binance and
the fake Bybit on 127.0.0.1 (``SLSBOT_EXCHANGE_ENDPOINT``), on real recorded candles that close as the test
moves the fake's clock on an hour at a time. Credentials come from a folder of files, as a mounted Secret
provides them.

* Orders reach the exchange with client ids tagged with the strategy (``sls`` + 8 hex digits + ``-``), fills are
  booked, /status shows the trades; a SIGKILL while the exchange holds the answer to an order it took, then a
  restart: the runtime reconciles with the exchange before it trades again, no client id is ever POSTed twice,
  and the state's position is the account's balance.
* A wrong secret: /status and the log say AuthenticationError, the secret is nowhere (log, state file,
  /status); putting the right secret in the folder lets the same process start trading.
* A paper account on the exchange's live candles trades on the simulated exchange: nothing private is ever
  asked of the exchange.
* An exchange cut off across a restart (SIGKILL, then a start while the fault proxy refuses every request, then
  only the calls the reconciliation makes): the runtime waits for the exchange (``WaitingForExchange``, not halted),
  and once the exchange is back it reconciles, is ready and trades on, no client id sent twice.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.fakes (tests is not a package)

from tests.fakes import test_secrets  # noqa: E402
from tests.fakes.fake_exchange_server import (  # noqa: E402
    FAKE_API_KEY,
    FAKE_SECRET,
    VENUE_PATHS,
    FakeExchangeServer,
    ManualClock,
    RecordedKlines,
    utc_ms,
)
from tests.fakes.fault_proxy import FaultKind, FaultPlan, FaultProxy  # noqa: E402

from slsbot_runtime.persistence.store import StateStore  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOUR = 3_600_000
OWN_ID = re.compile(r"sls[0-9a-f]{8}-[0-9a-f]{24}")  # client_ids.client_order_id: the strategy's tag, the decision
SLSBOT = [sys.executable, "-m", "slsbot.interfaces.cli"]
RUNTIME_TOKEN = test_secrets.LIVE_RUNTIME_TOKEN  # what the control plane passes in SLSBOT_RUNTIME_TOKEN


@dataclass(frozen=True)
class Wire:
    """Where a venue's order traffic shows on the fake."""

    create: str  # path of order creation (the only POST that creates)
    client_id: str  # the client order id's parameter when creating
    lookup: str  # ... and when looking an order up
    auth_error: str  # what the venue answers to a wrong signature


WIRES = {
    "binance": Wire(VENUE_PATHS["binance"].create, "newClientOrderId", "origClientOrderId", "Signature for this"),
    "bybit": Wire(VENUE_PATHS["bybit"].create, "orderLinkId", "orderLinkId", "error sign!"),
}
START = utc_ms("2025-01-02T12:00") + 5_000  # five seconds after a close (the feed waits 2 s for a candle to settle)
WRONG_SECRET = test_secrets.WRONG_SECRET  # made up; the test greps for it


@pytest.fixture(scope="module")
def recorded_klines() -> RecordedKlines:
    return RecordedKlines()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock, recorded_klines: RecordedKlines) -> Iterator[FakeExchangeServer]:
    with FakeExchangeServer(clock, klines=recorded_klines) as server:
        server.account.balances = {"USDT": 10_000.0}  # the bot owns the whole account: position == balance
        yield server


def write_credentials(folder: Path, secret: str = FAKE_SECRET) -> Path:
    folder.mkdir(exist_ok=True)
    for name, value in (("apiKey", FAKE_API_KEY), ("secret", secret)):
        (folder / name).write_text(value + "\n")
        (folder / name).chmod(0o600)  # as slsbot up writes a credentials folder (the secret scan skips such files)
    return folder


def write_config(
    folder: Path, *, mode: str = "testnet", credentials: Path | None = None, venue: str = "binance"
) -> Path:
    account: dict[str, Any] = {"name": "acct", "exchange": venue, "mode": mode}
    if credentials is not None:
        account["credentialsDir"] = str(credentials)
    config = {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "RuntimeConfig",
        "name": "live-btc",
        "account": account,
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 3, "slow": 9}}]},
        "sizing": {"method": "fixedQuantity", "quantity": 0.01},
        "marketData": {"source": "exchange", "warmupCandles": 12},
        "server": {"port": 0},
    }
    path = folder / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class LiveRuntime:
    process: subprocess.Popen[str]
    url: str
    log: Path

    def status(self) -> dict[str, Any]:
        return self.get("/status").json()

    def get(self, path: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {RUNTIME_TOKEN}"}  # the control endpoints need the runtime's token
        return httpx.get(self.url + path, headers=headers, timeout=10, trust_env=False)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def start_runtime(fake: FakeExchangeServer) -> Iterator[Callable[..., LiveRuntime]]:
    """``start_runtime(config, state, log_name, endpoint)``: ``slsbot runtime`` pointed at the fake (or at ``endpoint``,
    a proxy in front of it); killed at the end."""
    started: list[LiveRuntime] = []

    def start(config: Path, state: Path, log_name: str = "runtime.log", endpoint: str | None = None) -> LiveRuntime:
        log = state.parent / log_name
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "SLSBOT_EXCHANGE_ENDPOINT": endpoint or fake.url,
            "SLSBOT_RUNTIME_TOKEN": RUNTIME_TOKEN,
        }
        command = [*SLSBOT, "runtime", "--config", str(config), "--state", str(state), "--exchange-time-sync", "0.1"]
        with log.open("w") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=REPO)
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if match is None:
            process.kill()
            raise AssertionError(f"no listening line; got {line!r}; log: {log.read_text()[-2000:]}")
        runtime = LiveRuntime(process, match.group(1), log)
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        if runtime.process.poll() is None:
            runtime.kill()


def newest_closed(clock: ManualClock) -> int:
    return (clock.now_ms() // HOUR - 1) * HOUR


def caught_up(runtime: LiveRuntime, clock: ManualClock) -> bool:
    return runtime.status()["last_candle_ts"] == newest_closed(clock)


def step(runtime: LiveRuntime, clock: ManualClock) -> None:
    """One hour passes on the exchange; the runtime takes the candle that closed."""
    clock.advance(3600)
    wait_for(lambda: caught_up(runtime, clock), what=f"the candle of {newest_closed(clock)}")


def posted_client_ids(fake: FakeExchangeServer, wire: Wire) -> list[str]:
    return [r.params[wire.client_id] for r in fake.calls("POST", wire.create)]


def stored_orders(state: Path) -> dict[str, tuple[str, float]]:
    """client id -> (status, filled quantity), from the state file (read-only, as ``slsbot report`` reads it)."""
    store = StateStore.open(state, readonly=True)
    try:
        return {o.client_order_id: (str(o.status), o.filled_quantity) for o in store.load_orders()}
    finally:
        store.close()


def report(state: Path) -> dict[str, Any]:
    done = subprocess.run(
        [*SLSBOT, "report", "--state", str(state), "--json"], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout)


@pytest.mark.long  # in make test-long: 15-20 s per venue
@pytest.mark.parametrize("venue", sorted(WIRES))
def test_trades_through_ccxt_and_a_sigkill_mid_order_is_reconciled_before_trading(
    venue: str, fake: FakeExchangeServer, clock: ManualClock, start_runtime: Callable[..., LiveRuntime], tmp_path: Path
) -> None:
    wire = WIRES[venue]
    config = write_config(tmp_path, credentials=write_credentials(tmp_path / "credentials"), venue=venue)
    state = tmp_path / "state.db"
    first = start_runtime(config, state, "first.log")
    wait_for(lambda: caught_up(first, clock), what="the catch-up on the last warmupCandles candles")
    assert first.status()["phase"] == "running"
    for _ in range(80):
        if len(posted_client_ids(fake, wire)) >= 3:
            break
        step(first, clock)
    assert len(posted_client_ids(fake, wire)) >= 3, "no trading within 80 candles"
    wait_for(lambda: first.status()["trade_count"] == len(fake.account.trades), timeout=10, what="/status trades")

    # The exchange takes the next order but holds its answer; the runtime dies waiting for it.
    fake.fail_next("timeout_after_processing", path=wire.create, method="POST", delay_s=60)
    orders_before = len(fake.account.orders)
    for _ in range(80):
        clock.advance(3600)
        wait_for(
            lambda: caught_up(first, clock) or len(fake.account.orders) > orders_before,
            what="the next candle or an order",
        )
        if len(fake.account.orders) > orders_before:
            break
    held = fake.account.orders[-1]
    wait_for(lambda: held.status == "FILLED", timeout=10, what="the fake to fill the held order")
    assert OWN_ID.fullmatch(held.client_order_id)
    first.kill()
    assert stored_orders(state)[held.client_order_id][0] == "pending"  # the intent was on disk, its answer not

    second = start_runtime(config, state, "second.log")
    wait_for(lambda: second.status()["phase"] == "reconciling", what="the restart replaying its candles")
    requests_at_restart = len(fake.requests)
    step(second, clock)
    wait_for(
        lambda: stored_orders(state)[held.client_order_id] == ("filled", pytest.approx(held.filled)),
        timeout=10,
        what="the held order reconciled as filled",
    )
    wait_for(lambda: "1 orders checked, 0 resent" in second.log_text(), timeout=10, what="the reconcile log line")
    after_restart = fake.requests[requests_at_restart:]
    looked_up = next(
        i
        for i, r in enumerate(after_restart)
        if r.method == "GET" and r.params.get(wire.lookup) == held.client_order_id
    )
    first_post = next((i for i, r in enumerate(after_restart) if r.method == "POST"), len(after_restart))
    assert looked_up < first_post, "the runtime sent an order before it reconciled the one it had in flight"

    posts_at_restart = len(posted_client_ids(fake, wire))
    for _ in range(80):
        if len(posted_client_ids(fake, wire)) >= posts_at_restart + 2:
            break
        step(second, clock)
    assert len(posted_client_ids(fake, wire)) >= posts_at_restart + 2, "no trading after the restart"

    posted = posted_client_ids(fake, wire)
    assert all(OWN_ID.fullmatch(cid) for cid in posted) and len({cid[:12] for cid in posted}) == 1
    assert len(posted) == len(set(posted)), "a client order id reached the exchange twice"
    theirs = {o.client_order_id: (o.status.lower(), pytest.approx(o.filled)) for o in fake.account.orders}
    wait_for(lambda: stored_orders(state) == theirs, timeout=10, what="the state file to hold the last answers")
    wait_for(lambda: second.status()["trade_count"] == len(fake.account.trades), timeout=10, what="/status trades")
    assert second.status()["error"] is None
    positions = {p["symbol"]: p["quantity"] for p in report(state)["positions"]}
    assert positions.get("BTC/USDT", 0.0) == pytest.approx(fake.account.balances.get("BTC", 0.0), abs=1e-12)
    second.process.send_signal(signal.SIGTERM)
    assert second.process.wait(timeout=30) == 0


@pytest.mark.parametrize("venue", sorted(WIRES))
def test_a_wrong_secret_is_reported_without_the_secret_and_fixing_the_file_starts_trading(
    venue: str, fake: FakeExchangeServer, clock: ManualClock, start_runtime: Callable[..., LiveRuntime], tmp_path: Path
) -> None:
    wire = WIRES[venue]
    credentials = write_credentials(tmp_path / "credentials", secret=WRONG_SECRET)
    state = tmp_path / "state.db"
    runtime = start_runtime(write_config(tmp_path, credentials=credentials, venue=venue), state)

    status = wait_for(lambda: (s := runtime.status())["error"] and s, what="the error in /status")
    assert status["phase"] == "halted" and status["error"].startswith("AuthenticationError: ")
    assert wire.auth_error in status["error"]
    assert runtime.get("/healthz").status_code == 200  # the process works; restarting it would not help
    assert runtime.get("/readyz").status_code == 503
    wait_for(lambda: "could not start trading: AuthenticationError" in runtime.log_text(), what="the log line")
    assert not fake.calls("POST", wire.create)

    status_while_refused = runtime.get("/status").text

    write_credentials(credentials)  # the Secret is fixed in place, as a rotated Kubernetes Secret is
    wait_for(lambda: runtime.status()["error"] is None, timeout=30, what="a retry with the new secret")
    wait_for(lambda: caught_up(runtime, clock), what="the catch-up")
    leaked = [
        f"{secret[:5]}... in {name}"
        for name, text in (
            ("the log", runtime.log_text()),
            ("the state file", b"".join(p.read_bytes() for p in tmp_path.glob("state.db*")).decode("latin-1")),
            ("/status", status_while_refused),
            ("/metrics", runtime.get("/metrics").text),
        )
        for secret in (WRONG_SECRET, FAKE_SECRET, FAKE_API_KEY)  # Bybit echoes the key in its signature error
        if secret in text
    ]
    assert leaked == [], f"a credential appeared: {leaked}"
    assert runtime.status()["phase"] in ("running", "warming_up")


def test_a_paper_account_on_live_candles_never_calls_the_exchange_privately(
    fake: FakeExchangeServer, clock: ManualClock, start_runtime: Callable[..., LiveRuntime], tmp_path: Path
) -> None:
    runtime = start_runtime(write_config(tmp_path, mode="paper"), tmp_path / "state.db")
    wait_for(lambda: caught_up(runtime, clock), what="the catch-up")
    for _ in range(60):
        if runtime.status()["trade_count"] >= 2:
            break
        step(runtime, clock)
    assert runtime.status()["trade_count"] >= 2
    private = {r.path for r in fake.requests} - {"/api/v3/exchangeInfo", "/api/v3/klines", "/api/v3/time"}
    assert private == set(), f"a paper runtime called {private}"
    assert not fake.calls("POST", WIRES["binance"].create)
    assert fake.account.orders == []


#: The calls of the restart's reconciliation (open orders, fills, an order by client id); also order creation.
RECONCILE_PATHS = ("/api/v3/openOrders", "/api/v3/myTrades", "/api/v3/order", "/api/v3/allOrders")


@pytest.mark.long  # in make test-long: about 25 s (three starts of a testnet runtime)
def test_an_exchange_cut_off_across_a_restart_is_waited_for_then_the_runtime_reconciles_and_trades_on(
    fake: FakeExchangeServer, clock: ManualClock, start_runtime: Callable[..., LiveRuntime], tmp_path: Path
) -> None:
    wire = WIRES["binance"]
    config = write_config(tmp_path, credentials=write_credentials(tmp_path / "credentials"))
    state = tmp_path / "state.db"
    refused = FaultPlan(rate=0.0, seed=9, weights={FaultKind.HTTP_5XX: 1.0})  # 500/502/503: ccxt's temporary errors
    with FaultProxy(fake.url, refused) as proxy:
        first = start_runtime(config, state, "first.log", endpoint=proxy.url)
        wait_for(lambda: caught_up(first, clock), what="the catch-up")
        for _ in range(80):
            if posted_client_ids(fake, wire):
                break
            step(first, clock)
        assert posted_client_ids(fake, wire), "no trading within 80 candles"
        wait_for(lambda: first.status()["trade_count"] == len(fake.account.trades), timeout=10, what="/status trades")
        first.kill()

        proxy.set_rate(1.0)  # the exchange is away: every request refused
        second = start_runtime(config, state, "second.log", endpoint=proxy.url)
        status = wait_for(lambda: (s := second.status())["error"] and s, what="the connect error in /status")
        assert status["phase"] == "starting" and "Exchange" in status["error"], status  # temporary: not halted
        proxy.set_paths(RECONCILE_PATHS)  # back, but the account's orders and fills still refused
        requests_at_restart = len(fake.requests)

        def waiting() -> dict[str, Any] | None:
            status = second.status()
            assert status["phase"] != "halted", f"halted by an outage: {status['error']}"
            return status if status["idle_reason"] == "WaitingForExchange" else None

        status = wait_for(waiting, timeout=60, what="the runtime to wait for the exchange to reconcile")
        assert status["phase"] == "reconciling" and status["error"] is None and status["ready"] is False
        exchange = status["health"]["exchange"]  # the feed's calls go through and may say connected meanwhile
        assert exchange["errors"] >= 1 and "fetch_open_orders" in (exchange["last_error"] or ""), exchange
        assert "signature" not in json.dumps(status), "a request's signature reached /status"
        assert status["health"]["reconcile"]["problems"] == 0  # an outage is no disagreement
        assert second.get("/readyz").status_code == 503
        assert not any(f.method == "POST" for f in proxy.faults), "an order was sent before the reconciliation"

        proxy.set_rate(0.0)  # the exchange is back
        wait_for(
            lambda: (s := second.status())["phase"] == "running" and s["ready"],
            timeout=60,
            what="the runtime reconciled, running and ready",
        )
        assert second.get("/readyz").status_code == 200
        wait_for(lambda: "reconcile: the exchange answers again" in second.log_text(), timeout=10, what="the log")
        assert "trading halted" not in second.log_text()
        after_restart = fake.requests[requests_at_restart:]
        lookup = next(
            i for i, r in enumerate(after_restart) if r.path.startswith(RECONCILE_PATHS) and r.method == "GET"
        )
        first_post = next((i for i, r in enumerate(after_restart) if r.method == "POST"), len(after_restart))
        assert lookup < first_post, "the runtime sent an order before it reconciled"

        posts_at_restart = len(posted_client_ids(fake, wire))
        for _ in range(80):
            if len(posted_client_ids(fake, wire)) > posts_at_restart:
                break
            step(second, clock)
        assert len(posted_client_ids(fake, wire)) > posts_at_restart, "no trading after the outage"
        posted = posted_client_ids(fake, wire)
        assert len(posted) == len(set(posted)), "a client order id reached the exchange twice"
        theirs = {o.client_order_id: (o.status.lower(), pytest.approx(o.filled)) for o in fake.account.orders}
        wait_for(
            lambda: stored_orders(state) == theirs, timeout=10, what="the state file to hold the exchange's orders"
        )
        wait_for(lambda: second.status()["trade_count"] == len(fake.account.trades), timeout=10, what="/status trades")
        assert second.status()["error"] is None and second.status()["health"]["exchange"]["connected"] is True
        positions = {p["symbol"]: p["quantity"] for p in report(state)["positions"]}
        assert positions.get("BTC/USDT", 0.0) == pytest.approx(fake.account.balances.get("BTC", 0.0), abs=1e-12)
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(timeout=30) == 0
