"""The healing ladder under a real ``slsbot up`` with real runtimes, for the classes a fake runtime cannot show.

- ExchangeUnreachable: a testnet runtime trades through ccxt on the fake Binance behind the fault proxy
  (``tests/fakes/fault_proxy.py``); the proxy then drops every request. The runtime's health block says the exchange
  is unreachable, the ladder restarts it (``ExchangeUnreachable_Restart``), the restarted runtime cannot connect, so
  the ladder climbs to ``ExchangeUnreachable_SafeMode``; the proxy lets requests through again, the runtime comes
  back, trades in safe mode for ``recoverAfter`` and then normally, and every order it holds is the exchange's, once.
  Cut off past the severity-1 rule's ``connectionLostAfter``, a ConnectionLost incident opens and the runtime is halted
  (told once it reconnects); the exchange back, the incident resolves and the runtime trades normally again.
- ResourceExhaustion: a RiskPolicy whose ``memoryLimitMb`` is below a paper runtime's real resident memory: the ladder
  restarts it, then puts it in safe mode; the policy applied again with a higher limit, it recovers.

Each prints the detection time it measured.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e.chaos_check import BotBook, ExchangeBook, check_bot  # tests/conftest.py put the repository on sys.path
from tests.fakes.fake_exchange_market import PacedClock
from tests.fakes.fake_exchange_server import FAKE_API_KEY, FAKE_SECRET, FakeExchangeServer, RecordedKlines, utc_ms
from tests.fakes.fault_proxy import FaultKind, FaultPlan, FaultProxy
from tests.integration.supervisor.manifests import DATA, PAPER_ACCOUNT

from slsbot.adapters.control_tokens import load_or_create_control_key
from slsbot.settings import ControlPlaneSettings
from slsbot_runtime.persistence.store import StateStore

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.long]  # in make test-long: 20-25 s each

HOUR_S = 3600
START = utc_ms("2025-01-02T12:00") + 5_000  # five seconds after a close
NAME = "btc-live"
#: The runtime reads the exchange's clock ten times a second: the test's clock jumps an hour at a time.
RUNTIME_COMMAND = [sys.executable, "-m", "slsbot.interfaces.cli", "runtime", "--exchange-time-sync", "0.1"]


def _condition(strategy: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in strategy.get("conditions") or [] if c["type"] == type_), {})


def _events(running, name: str) -> list[dict[str, Any]]:
    with running.client() as client:
        response = client.get("/api/v1/events", params={"name": name, "limit": 200})
    response.raise_for_status()
    return response.json()


def _metric(running, name: str, **labels: str) -> float:
    text = httpx.get(f"{running.url}/metrics", timeout=10, trust_env=False).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and line.split("{", 1)[1].split("}", 1)[0] == wanted:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _runtime_status(running, name: str) -> dict[str, Any] | None:
    """The runtime's own ``/status`` (its port from the config the supervisor rendered, its token from the
    supervisor's control key), None while it does not answer."""
    try:
        config = yaml.safe_load((running.state_dir / "default" / name / "runtime.yaml").read_text())
        key = load_or_create_control_key(ControlPlaneSettings(state_dir=running.state_dir).control_key_path)
        response = httpx.get(
            f"http://127.0.0.1:{config['server']['port']}/status",
            headers={"Authorization": f"Bearer {key.token_for('default', name)}"},
            timeout=5,
            trust_env=False,
        )
    except (OSError, KeyError, TypeError, ValueError, httpx.HTTPError):
        return None
    return response.json() if response.status_code == 200 else None


def _trading_mode(kit, running, name: str, mode: str, *, timeout: float, what: str) -> dict[str, Any]:
    """Wait until the runtime's own ``/status`` says it trades in ``mode``; that status."""
    return kit.wait_for(
        lambda: (s := _runtime_status(running, name)) and s.get("trading_mode") == mode and s,
        timeout=timeout,
        interval=0.1,
        what=what,
    )


def _recovered(kit, running, name: str, *, timeout: float, what: str) -> dict[str, Any]:
    """Wait until the Strategy's Healing condition says Recovered; the Strategy."""
    return kit.wait_for(
        lambda: (s := running.strategies()[name]) and _condition(s, "Healing").get("reason") == "Recovered" and s,
        timeout=timeout,
        interval=0.1,
        what=what,
    )


# --- ExchangeUnreachable ------------------------------------------------------------------------------------------

EXCHANGE_POLICY = {"exchangeDownAfter": "1s", "restartsPerRung": 1, "rungTimeout": "8s", "recoverAfter": "2s"}


@pytest.fixture(scope="module")
def recorded_klines() -> RecordedKlines:
    return RecordedKlines()


@pytest.fixture
def exchange(recorded_klines: RecordedKlines) -> Iterator[tuple[PacedClock, FakeExchangeServer, FaultProxy]]:
    """The fake Binance on a clock that runs with the wall clock and jumps when the test moves it, behind a proxy that
    drops every request once its rate is set to 1 (and none at 0)."""
    clock = PacedClock(START, speed=1.0)
    plan = FaultPlan(rate=0.0, seed=9, weights={FaultKind.DROP_BEFORE: 1.0})
    with FakeExchangeServer(clock, klines=recorded_klines) as fake, FaultProxy(fake.url, plan) as proxy:
        fake.account.balances = {"USDT": 1_000_000.0}  # the bot's position is the BTC balance
        yield clock, fake, proxy


def _live_manifests(folder: Path, quantity: float, incidents: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True)
    docs = [
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "RiskPolicy",
            "metadata": {"name": "live-risk"},
            "spec": {
                "maxSymbolExposurePercent": 100,
                "maxTotalExposurePercent": 100,
                # the candles stop with the exchange: stale data must not come first
                "healing": {**EXCHANGE_POLICY, "staleAfterCandles": 50},
                "incidents": incidents or {"connectionLostAfter": "10m"},
            },
        },
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "TradingAccount",
            "metadata": {"name": "live-binance"},
            "spec": {
                "exchange": "binance",
                "mode": "testnet",
                "credentials": {"secretRef": {"name": "live-binance-keys"}},  # slsbot up passes SLSBOT_EXCHANGE_*
                "riskPolicyRef": {"name": "live-risk"},
            },
        },
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": NAME},
            "spec": {
                "accountRef": {"name": "live-binance"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 2, "slow": 5}}]},
                "sizing": {"method": "fixedQuantity", "quantity": quantity},
                "marketData": {"source": "exchange", "warmupCandles": 8},
            },
        },
    ]
    (folder / "live.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return folder


def _newest_closed(clock: PacedClock) -> int:
    return (clock.now_ms() // 3_600_000 - 1) * 3_600_000


def _books(state_dir: Path, fake: FakeExchangeServer) -> tuple[BotBook, ExchangeBook]:
    store = StateStore.open(state_dir / "default" / NAME / "state.db", readonly=True)
    try:
        orders = {o.client_order_id: (str(o.status), o.filled_quantity) for o in store.load_orders()}
        fills = [(f.fill_id, f.client_order_id) for f in store.load_fills()]
        positions = {symbol: row.quantity for symbol, row in store.load_positions().items()}
    finally:
        store.close()
    with fake.account.lock:
        book = ExchangeBook(
            symbol="BTC/USDT",
            orders=[(o.client_order_id, o.status.lower(), o.filled) for o in fake.account.orders],
            fills=[(str(t.trade_id), t.order.client_order_id) for t in fake.account.trades],
            balance=fake.account.balances.get("BTC", 0.0),
        )
    return BotBook(NAME, orders, fills, positions), book


def _start_live(kit, tmp_path: Path, exchange, incidents: dict[str, Any] | None = None):
    clock, fake, proxy = exchange
    quantity = round(500 / fake.account.klines.price("BTCUSDT", clock.now_ms()), 5)
    running = kit.start(
        _live_manifests(tmp_path / "manifests", quantity, incidents),
        tmp_path / "state",
        kit.environment(
            SLSBOT_ADMIN_TOKEN=kit.operator_token,
            SLSBOT_EXCHANGE_ENDPOINT=proxy.url,
            SLSBOT_EXCHANGE_API_KEY=FAKE_API_KEY,
            SLSBOT_EXCHANGE_SECRET=FAKE_SECRET,
            SLSBOT_RUNTIME_COMMAND=json.dumps(RUNTIME_COMMAND),
        ),
    )
    try:
        kit.wait_for(lambda: running.strategies()[NAME]["phase"] == "Running", timeout=60, interval=0.1, what="Running")
    except AssertionError:
        running.stop()
        raise
    return running


def _trade(kit, running, clock: PacedClock) -> None:
    """Move the exchange's clock on an hour at a time until the bot has sent two orders."""
    for _ in range(12):
        clock.advance(HOUR_S)
        newest = _newest_closed(clock)
        status = kit.wait_for(
            lambda newest=newest: (s := _runtime_status(running, NAME)) and s["last_candle_ts"] == newest and s,
            timeout=20,
            interval=0.1,
            what=f"the candle of {newest}",
        )
        if status["orders_total"] >= 2:
            return
    raise AssertionError("the bot did not trade: the test would prove nothing")


def _cut_off(kit, clock: PacedClock, fake: FakeExchangeServer, proxy: FaultProxy) -> None:
    """The next candle closes three seconds from now; once the runtime has read the exchange's clock, every request
    is dropped, so the feed's call for that candle fails."""
    clock.advance(HOUR_S - 3)
    synced = len(fake.requests)
    kit.wait_for(
        lambda: any(r.path == "/api/v3/time" for r in fake.requests[synced:]),
        timeout=5,
        interval=0.02,
        what="the runtime reading the exchange's clock",
    )
    proxy.set_rate(1.0)


def test_an_unreachable_exchange_climbs_restart_then_safe_mode_and_the_runtime_comes_back_with_every_order_once(
    kit, tmp_path: Path, exchange, secret_scan
):
    clock, fake, proxy = exchange
    running = _start_live(kit, tmp_path, exchange)
    try:
        _trade(kit, running, clock)
        assert not any(
            c.get("reason", "").startswith("ExchangeUnreachable") for c in running.strategies()[NAME]["conditions"]
        )
        _cut_off(kit, clock, fake, proxy)
        cut = time.monotonic()
        down = kit.wait_for(
            lambda: (s := _runtime_status(running, NAME)) and s["health"]["exchange"]["connected"] is False and s,
            timeout=20,
            interval=0.1,
            what="the health block saying the exchange is unreachable",
        )
        assert down["health"]["exchange"]["failing_since"] is not None
        restarted = kit.wait_for(
            lambda: (
                (s := running.strategies()[NAME])["restarts"] == 1
                and _condition(s, "Healing").get("reason") == "ExchangeUnreachable_Restart"
                and s
            ),
            timeout=15,
            interval=0.1,
            what="ExchangeUnreachable detected and the runtime restarted",
        )
        detected_after = time.monotonic() - cut
        assert _condition(restarted, "Healing")["status"] == "True"
        safe = kit.wait_for(
            lambda: (
                (s := running.strategies()[NAME])
                and _condition(s, "Healing").get("reason") == "ExchangeUnreachable_SafeMode"
                and s
            ),
            timeout=20,
            interval=0.1,
            what="the next rung: safe mode, the restarted runtime still cut off",
        )
        assert safe["restarts"] == 1  # one restart per rung (restartsPerRung: 1)
        assert "not ready" in _condition(safe, "Healing")["message"]

        proxy.set_rate(0.0)  # the exchange is back
        back = time.monotonic()
        in_safe_mode = _trading_mode(
            kit, running, NAME, "safe", timeout=30, what="the reconnected runtime told to trade in safe mode"
        )
        assert in_safe_mode["health"]["exchange"]["connected"] is True
        recovered = _recovered(kit, running, NAME, timeout=20, what="back to normal after recoverAfter")
        healthy_after = time.monotonic() - back
        assert _condition(recovered, "Healing")["status"] == "False"
        _trading_mode(kit, running, NAME, "normal", timeout=10, what="normal trading pushed")
        detection = _metric(running, "slsbot_heal_detection_seconds_sum", failure_class="ExchangeUnreachable")
        print(
            f"\nexchange cut off: the ladder detected it {detected_after:.2f}s after the cut (fault to detection "
            f"{detection:.2f}s, exchangeDownAfter 1s); back to normal {healthy_after:.2f}s after the exchange was"
        )
        reasons = [e["reason"] for e in _events(running, NAME)]
        for rung in ("ExchangeUnreachable_Restart", "ExchangeUnreachable_SafeMode", "Healthy", "Recovered"):
            assert reasons.count(rung) == 1, reasons  # one Event per rung change, not one per pass
        assert "ExchangeUnreachable_Halt" not in reasons

        # it trades on, and nothing was lost or sent twice across the outage and the restart
        clock.advance(HOUR_S)
        newest = _newest_closed(clock)
        kit.wait_for(
            lambda: (s := _runtime_status(running, NAME)) and s["last_candle_ts"] == newest and not s["open_orders"],
            timeout=30,
            interval=0.1,
            what="the candle after the outage",
        )
        secret_scan.observe(json.dumps(_runtime_status(running, NAME)), where="the runtime's /status")
    finally:
        assert running.stop() == 0
    bot, book = _books(running.state_dir, fake)
    result = check_bot(bot, book)
    assert result.sent >= 2 and result.lost == 0 and result.duplicated == 0 and result.pending == 0, result
    assert result.problems == [], result.problems


def _incidents(running) -> list[dict[str, Any]]:
    with running.client() as client:
        response = client.get("/api/v1/incidents")
    response.raise_for_status()
    body = response.json()
    return body if isinstance(body, list) else body.get("items", [])


def _connection_lost(running) -> dict[str, Any] | None:
    found = [i for i in _incidents(running) if '"rule": "ConnectionLost"' in json.dumps(i)]
    return found[0] if found else None


def test_a_connection_lost_past_the_severity_1_rule_opens_an_incident_and_halts_the_runtime(
    kit, tmp_path: Path, exchange
):
    clock, fake, proxy = exchange
    running = _start_live(kit, tmp_path, exchange, incidents={"connectionLostAfter": "4s", "flattenOnCritical": False})
    try:
        _trade(kit, running, clock)
        _cut_off(kit, clock, fake, proxy)
        cut = time.monotonic()
        # restarted at once (exchangeDownAfter 1s); the restarted runtime keeps connecting and reports no health, and
        # the outage is still counted from the ladder's fault
        kit.wait_for(
            lambda: _condition(running.strategies()[NAME], "Healing").get("reason") == "ExchangeUnreachable_Restart",
            timeout=15,
            interval=0.1,
            what="ExchangeUnreachable_Restart",
        )
        incident = kit.wait_for(
            lambda: _connection_lost(running), timeout=15, interval=0.1, what="a ConnectionLost incident"
        )
        opened_after = time.monotonic() - cut
        assert '"severity": 1' in json.dumps(incident), incident
        halted = kit.wait_for(
            lambda: (
                (s := running.strategies()[NAME])
                and _condition(s, "Healing").get("reason") == "ExchangeUnreachable_Halt"
                and s
            ),
            timeout=10,
            interval=0.1,
            what="the runtime halted at once by the severity-1 signal",
        )
        assert "ConnectionLost" in _condition(halted, "Healing")["message"]
        print(f"\nconnection lost (connectionLostAfter 4s): severity-1 incident open {opened_after:.2f}s after the cut")

        proxy.set_rate(0.0)  # the exchange is back: the reconnected runtime is told to halt first
        _trading_mode(kit, running, NAME, "halted", timeout=30, what="halted pushed to the reconnected runtime")
        _recovered(
            kit,
            running,
            NAME,
            timeout=30,
            what="the incident's cause gone and the runtime back to normal after recoverAfter",
        )
        kit.wait_for(
            lambda: '"resolved"' in json.dumps(_connection_lost(running) or {}),
            timeout=10,
            interval=0.1,
            what="the ConnectionLost incident resolved",
        )
        _trading_mode(kit, running, NAME, "normal", timeout=10, what="normal trading pushed")
        reasons = [e["reason"] for e in _events(running, NAME)]
        assert reasons.count("ExchangeUnreachable_Halt") == 1, reasons
    finally:
        assert running.stop() == 0
    result = check_bot(*_books(running.state_dir, fake))
    assert result.lost == 0 and result.duplicated == 0 and result.problems == [], result


# --- ResourceExhaustion -------------------------------------------------------------------------------------------

PAPER = (
    """\
apiVersion: slsbot.io/v1alpha1
kind: RiskPolicy
metadata: {name: local-risk}
spec:
  healing: {memoryLimitMb: %(limit)d, restartsPerRung: 1, rungTimeout: 10s, recoverAfter: 2s}
---
"""
    + PAPER_ACCOUNT
    + """---
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: btc-paper}
spec:
  accountRef: {name: paper-binance}
  symbols: [BTC/USDT]
  timeframe: 1h
  ensemble:
    members:
      - {name: sma, strategy: sma_cross, params: {fast: 5, slow: 15}}
  marketData:
    source: replay
    dataDir: %(data)s
    secondsPerCandle: 0.05
    warmupCandles: 20
    loop: true
"""
)


def _apply_paper(folder: Path, limit_mb: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / ".paper.yaml.tmp"
    staging.write_text(PAPER % {"limit": limit_mb, "data": DATA})
    staging.replace(folder / "paper.yaml")


def test_memory_above_the_policy_limit_climbs_restart_then_safe_mode_and_a_raised_limit_heals_it(kit, tmp_path: Path):
    folder = tmp_path / "manifests"
    _apply_paper(folder, 16)  # the lowest memoryLimitMb allowed; a real runtime uses several times that
    running = kit.start(folder, tmp_path / "state", kit.environment(SLSBOT_ADMIN_TOKEN=kit.operator_token))
    name = "btc-paper"
    try:
        started = time.monotonic()
        restarted = kit.wait_for(
            lambda: (
                (s := running.strategies()[name])["restarts"] == 1
                and _condition(s, "Healing").get("reason") == "ResourceExhaustion_Restart"
                and s
            ),
            timeout=60,
            interval=0.1,
            what="ResourceExhaustion detected and the runtime restarted",
        )
        assert "above memoryLimitMb 16" in _condition(restarted, "Healing")["message"]
        detected_after = time.monotonic() - started
        kit.wait_for(
            lambda: _condition(running.strategies()[name], "Healing").get("reason") == "ResourceExhaustion_SafeMode",
            timeout=30,
            interval=0.1,
            what="the next rung: safe mode, the restarted runtime still above the limit",
        )
        in_safe_mode = _trading_mode(kit, running, name, "safe", timeout=10, what="safe mode pushed to the runtime")
        used_mb = in_safe_mode["health"]["memory_bytes"] / 2**20
        assert used_mb > 16
        assert running.strategies()[name]["restarts"] == 1  # one restart per rung (restartsPerRung: 1)

        _apply_paper(folder, 4096)  # the policy applied again with room to spare
        raised = time.monotonic()
        recovered = _recovered(
            kit, running, name, timeout=40, what="back to normal after recoverAfter under the raised limit"
        )
        assert _condition(recovered, "Healing")["status"] == "False"
        _trading_mode(kit, running, name, "normal", timeout=15, what="normal trading pushed")
        detection = _metric(running, "slsbot_heal_detection_seconds_sum", failure_class="ResourceExhaustion")
        print(
            f"\nresource exhaustion ({used_mb:.0f} MiB resident, memoryLimitMb 16): restarted {detected_after:.2f}s "
            f"after slsbot up started (fault to detection {detection:.2f}s: measured when /status is asked); "
            f"recovered {time.monotonic() - raised:.2f}s after the limit was raised"
        )
        reasons = [e["reason"] for e in _events(running, name)]
        for rung in ("ResourceExhaustion_Restart", "ResourceExhaustion_SafeMode", "Recovered"):
            assert reasons.count(rung) == 1, reasons  # one Event per rung change, not one per pass
        assert "ResourceExhaustion_Halt" not in reasons
    finally:
        assert running.stop() == 0
