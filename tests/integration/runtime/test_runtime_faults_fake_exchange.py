"""``slsbot runtime`` as a real process in testnet mode, trading on the fake Binance and the fake Bybit through the
fault proxy (``tests/fakes/fault_proxy.py``) with one request in five failing: held past the client's timeout,
5xx, 429 with Retry-After, connections dropped before and after the exchange took the order; the klines feed
stalls (stale answers, then held ones) and orders fill late and in parts over the next candles.

The runtime keeps running, never has a client order id accepted twice, books every fill once, and once the
faults stop it ends consistent with the exchange: its orders and fills are the exchange's, its position the
account's balance.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.fakes (tests is not a package)

from tests.fakes import test_secrets  # noqa: E402
from tests.fakes.fake_exchange_market import PacedClock  # noqa: E402
from tests.fakes.fake_exchange_server import (  # noqa: E402
    FAKE_API_KEY,
    FAKE_SECRET,
    VENUE_PATHS,
    FakeExchangeServer,
    FillPlan,
    RecordedKlines,
    utc_ms,
)
from tests.fakes.fault_proxy import TIME_PATHS, FaultKind, FaultPlan, FaultProxy, StallMode  # noqa: E402

from slsbot_runtime.persistence.store import StateStore  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]  # minutes: make test-long

HOUR = 3_600_000
SLSBOT = [sys.executable, "-m", "slsbot.interfaces.cli"]
RUNTIME_TOKEN = test_secrets.FAULTS_RUNTIME_TOKEN
START = utc_ms("2025-01-02T12:00") + 5_000  # five seconds after a close
#: Timeouts cost 11 s of wall time each (past ccxt's 10 s); they are a smaller share so the test stays minutes.
WEIGHTS = {
    FaultKind.TIMEOUT: 0.3,
    FaultKind.TIMEOUT_AFTER: 0.3,
    FaultKind.HTTP_5XX: 1.0,
    FaultKind.RATE_LIMIT: 1.0,
    FaultKind.DROP_BEFORE: 1.0,
    FaultKind.DROP_AFTER: 1.0,
}
ORDERS_WANTED = 8


@pytest.fixture(scope="module")
def recorded_klines() -> RecordedKlines:
    return RecordedKlines()


@pytest.fixture
def clock() -> PacedClock:
    """The exchange's time runs with the wall clock (a retry's backoff, waited on the exchange's clock, ends) and
    jumps an hour when the test moves it on."""
    return PacedClock(START, speed=1.0)


@pytest.fixture
def fake(clock: PacedClock, recorded_klines: RecordedKlines) -> Iterator[FakeExchangeServer]:
    with FakeExchangeServer(clock, klines=recorded_klines) as server:
        server.account.balances = {"USDT": 10_000.0}  # the bot owns the whole account: position == balance
        # an order fills late and in three parts: 10, 50 and 90 minutes after it was taken, so it is still open when
        # the next candle comes, partly filled at the one after, and done at the third
        server.account.fill_plan = FillPlan(parts=3, delay_ms=HOUR // 6, interval_ms=HOUR * 2 // 3)
        yield server


@pytest.fixture
def proxy(fake: FakeExchangeServer) -> Iterator[FaultProxy]:
    # The clock sync is exempt: it asks ten times a second only because this test's clock jumps, and a held one
    # would freeze the runtime's clock for 10 s.
    plan = FaultPlan(rate=0.2, seed=2026, weights=WEIGHTS, exempt=TIME_PATHS)
    with FaultProxy(fake.url, plan) as started:
        yield started


def write_config(folder: Path, venue: str) -> Path:
    credentials = folder / "credentials"
    credentials.mkdir()
    (credentials / "apiKey").write_text(FAKE_API_KEY + "\n")
    (credentials / "secret").write_text(FAKE_SECRET + "\n")
    for written in credentials.iterdir():
        written.chmod(0o600)  # owner-only, as a credentials folder is kept (the secret scan skips it)
    config = {
        "apiVersion": "slsbot.io/v1alpha1",
        "kind": "RuntimeConfig",
        "name": "faults-btc",
        "account": {"name": "acct", "exchange": venue, "mode": "testnet", "credentialsDir": str(credentials)},
        "symbols": ["BTC/USDT"],
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 2, "slow": 5}}]},
        "sizing": {"method": "fixedQuantity", "quantity": 0.01},
        "marketData": {"source": "exchange", "warmupCandles": 8},
        "server": {"port": 0},
    }
    path = folder / "testnet.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(predicate: Callable[[], Any], *, timeout: float = 90.0, what: str = "condition") -> Any:
    """Poll with a deadline; the deadline covers a few held requests (11 s each) in a row."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Runtime:
    def __init__(self, config: Path, state: Path, endpoint: str) -> None:
        self.log = state.parent / "runtime.log"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "SLSBOT_EXCHANGE_ENDPOINT": endpoint,
            "SLSBOT_RUNTIME_TOKEN": RUNTIME_TOKEN,
        }
        command = [*SLSBOT, "runtime", "--config", str(config), "--state", str(state), "--exchange-time-sync", "0.1"]
        with self.log.open("w") as stderr:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=REPO
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if match is None:
            self.process.kill()
            raise AssertionError(f"no listening line; got {line!r}; log: {self.log.read_text()[-2000:]}")
        self.url = match.group(1)

    def status(self) -> dict[str, Any]:
        assert self.process.poll() is None, f"the runtime died; log: {self.log.read_text(errors='replace')[-3000:]}"
        headers = {"Authorization": f"Bearer {RUNTIME_TOKEN}"}
        return httpx.get(self.url + "/status", headers=headers, timeout=10, trust_env=False).json()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def runtimes() -> Iterator[list[Runtime]]:
    started: list[Runtime] = []
    yield started
    for runtime in started:
        if runtime.process.poll() is None:
            runtime.process.kill()
            runtime.process.wait(timeout=30)


def newest_closed(clock: PacedClock) -> int:
    return (clock.now_ms() // HOUR - 1) * HOUR


def caught_up(runtime: Runtime, clock: PacedClock) -> bool:
    return runtime.status()["last_candle_ts"] == newest_closed(clock)


def step(runtime: Runtime, clock: PacedClock) -> None:
    clock.advance(3600)
    wait_for(lambda: caught_up(runtime, clock), what=f"the candle of {newest_closed(clock)}")


def state_of(state: Path) -> tuple[dict[str, tuple[str, float]], list[tuple[str, str, float]]]:
    """(client id -> (status, filled quantity), [(fill id, client id, quantity)]) from the state file."""
    store = StateStore.open(state, readonly=True)
    try:
        orders = {o.client_order_id: (str(o.status), o.filled_quantity) for o in store.load_orders()}
        fills = [(f.fill_id, f.client_order_id, f.quantity) for f in store.load_fills()]
        return orders, fills
    finally:
        store.close()


def position(state: Path) -> float:
    store = StateStore.open(state, readonly=True)
    try:
        row = store.load_positions().get("BTC/USDT")
        return 0.0 if row is None else row.quantity
    finally:
        store.close()


@pytest.mark.parametrize("venue", sorted(VENUE_PATHS))
def test_at_20_percent_faults_the_runtime_trades_on_without_duplicates_and_ends_consistent(
    venue: str,
    fake: FakeExchangeServer,
    proxy: FaultProxy,
    clock: PacedClock,
    runtimes: list[Runtime],
    tmp_path: Path,
) -> None:
    create = VENUE_PATHS[venue].create
    state = tmp_path / "state.db"
    runtime = Runtime(write_config(tmp_path, venue), state, proxy.url)
    runtimes.append(runtime)
    wait_for(lambda: caught_up(runtime, clock), what="the catch-up on the warmup candles")

    # Every kind once for certain on an order creation, on top of the draw, the nasty cases first: the exchange
    # takes the order and the client sees a reset, then a timeout.
    for kind in (FaultKind.DROP_AFTER, FaultKind.TIMEOUT_AFTER, *WEIGHTS):
        proxy.inject_next(kind, path=create, method="POST")
    steps = 0
    while len(fake.account.orders) < ORDERS_WANTED and steps < 120:
        step(runtime, clock)
        steps += 1
        if steps == 10:  # a stale feed for two candles: the same answer as before the stall
            proxy.stall_feed(StallMode.STALE)
            clock.advance(2 * 3600)
            wait_for(lambda: proxy.injected[FaultKind.FEED_STALE] >= 3, what="the runtime to poll the stale feed")
            proxy.end_stall()
            wait_for(lambda: caught_up(runtime, clock), what="the catch-up after the stale feed")
        if steps == 14:  # a held feed: klines unanswered until the stall ends
            proxy.stall_feed(StallMode.HELD)
            clock.advance(3600)
            wait_for(lambda: proxy.injected[FaultKind.FEED_HELD] >= 1, what="the runtime to wait on the held feed")
            proxy.end_stall()
            wait_for(lambda: caught_up(runtime, clock), what="the catch-up after the held feed")
    assert len(fake.account.orders) >= ORDERS_WANTED, f"only {len(fake.account.orders)} orders in {steps} candles"
    injected = proxy.injected
    assert all(injected[kind] > 0 for kind in WEIGHTS), injected
    faulted_creates = [f for f in proxy.faults if f.client_order_id]
    assert set(WEIGHTS) <= {f.kind for f in faulted_creates}
    eligible = proxy.requests - proxy.exempt_requests
    share = sum(injected[k] for k in WEIGHTS) / eligible
    assert 0.12 <= share <= 0.28, f"{share:.3f} of {eligible} requests faulted"

    # The faults stop; three more candles let the runtime follow every order to its end.
    proxy.set_rate(0.0)
    for _ in range(3):
        step(runtime, clock)

    accepted = [o.client_order_id for o in fake.account.orders]
    duplicated = [cid for cid, n in Counter(accepted).items() if n > 1]
    assert duplicated == [], f"the exchange accepted these client ids twice: {duplicated}"
    theirs = {o.client_order_id: (o.status.lower(), pytest.approx(o.filled)) for o in fake.account.orders}
    their_fills = Counter(t.order.client_order_id for t in fake.account.trades)

    def consistent() -> bool:
        orders, fills = state_of(state)
        ours = {cid: value for cid, value in orders.items() if value[0] not in ("pending", "rejected")}
        return ours == theirs and Counter(cid for _fid, cid, _q in fills) == their_fills

    wait_for(consistent, timeout=30, what="the state file to hold the exchange's orders and fills")
    orders, fills = state_of(state)
    assert len({fid for fid, _cid, _q in fills}) == len(fills) == len(fake.account.trades), "a fill booked twice"
    never_sent = {cid: value for cid, value in orders.items() if cid not in theirs}
    assert all(status in ("pending", "rejected") for status, _ in never_sent.values()), never_sent
    assert position(state) == pytest.approx(fake.account.balances.get("BTC", 0.0), abs=1e-9)
    status = runtime.status()
    assert status["error"] is None and status["phase"] == "running"
    assert status["trade_count"] == len(fake.account.trades)
    assert runtime.stop() == 0
