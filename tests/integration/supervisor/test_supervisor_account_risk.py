"""Account-wide risk under the local supervisor with real runtimes (the real ``slsbot runtime`` replaying recorded
Binance candles, paced): ``slsbot up``'s pass (``supervise_once`` over the SQLite store and the local process backend,
with the options ``slsbot up`` uses), driven here pass by pass so that passes can be counted, and stopped to play a
control plane that went away.

* The kill switch: set on the policy, every runtime under it is halted, with no open order or position, within one
  pass (the time and the pass count are printed); the restarted runtimes (the config path) report halted after it.
* Two Strategies of one account under ``scope: account``: their combined exposure (at cost) never exceeds the
  account's limit, though each alone may hold three times as much.
* A runtime whose control plane is gone: its headroom expires and it trades on its own limits again.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from tests.fakes import test_secrets  # tests/conftest.py put the repository on sys.path
from tests.integration.supervisor.manifests import DATA

from slsbot.adapters.control_tokens import ControlKey
from slsbot.adapters.processes import LocalProcessBackend
from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import create_store_engine, sync_desired_objects
from slsbot.adapters.supervisor_store import SqlSupervisorStore
from slsbot.api import parse_resource
from slsbot.domain.errors import RuntimeUnreachable
from slsbot.services.account_risk import AccountRiskSettings, HeadroomPushes
from slsbot.services.reconcile import Catalog
from slsbot.services.supervisor import PassReport, SupervisorOptions, supervise_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = ControlKey(test_secrets.ACCOUNT_RISK_CONTROL_KEY, source="test")
TICK = 0.5  # slsbot up's default pass interval


def documents(
    *,
    kill: bool = False,
    policy: dict[str, Any] | None = None,
    strategies: dict[str, dict[str, Any]],
    pace: float = 0.02,
) -> list[Any]:
    docs: list[dict[str, Any]] = [
        {
            "kind": "RiskPolicy",
            "metadata": {"name": "acct-risk"},
            "spec": {"scope": "account", "killSwitch": kill, **(policy or {})},
        },
        {
            "kind": "TradingAccount",
            "metadata": {"name": "paper"},
            "spec": {
                "exchange": "binance",
                "mode": "paper",
                "paper": {"startingBalance": 10_000},
                "riskPolicyRef": {"name": "acct-risk"},
            },
        },
    ]
    for name, extra in strategies.items():
        spec = {
            "accountRef": {"name": "paper"},
            "symbols": [extra.get("symbol", "BTC/USDT")],
            "allocationPercent": extra.get("allocation", 30),
            "ensemble": {
                "members": [
                    {"name": "sma", "strategy": "sma_cross", "params": extra.get("params", {"fast": 5, "slow": 15})}
                ]
            },
            "marketData": {
                "source": "replay",
                "dataDir": str(DATA),
                "secondsPerCandle": pace,
                "warmupCandles": 20,
                "loop": True,
            },
        }
        if "risk" in extra:
            spec["risk"] = extra["risk"]
        docs.append({"kind": "Strategy", "metadata": {"name": name}, "spec": spec})
    return [parse_resource({"apiVersion": "slsbot.io/v1alpha1", **doc}) for doc in docs]


@dataclass
class Supervisor:
    """``slsbot up``'s parts, in process: the store, the local process backend, the options, the pushes' memory."""

    engine: Any
    store: SqlSupervisorStore
    backend: LocalProcessBackend
    options: SupervisorOptions
    headroom: HeadroomPushes
    state_dir: Path
    client: RuntimeHttpClient
    passes: int = 0

    def load(self, resources: list[Any]) -> None:
        with Session(self.engine) as session:
            sync_desired_objects(session, resources=resources, now=datetime.now(UTC))

    def run_pass(self) -> PassReport:
        started = time.monotonic()
        report = supervise_once(
            store=self.store, backend=self.backend, now=datetime.now(UTC), options=self.options, headroom=self.headroom
        )
        self.passes += 1
        time.sleep(max(0.0, TICK - (time.monotonic() - started)))  # the supervisor's own pacing between passes
        return report

    def status(self, name: str) -> dict[str, Any] | None:
        try:
            return self.backend.runtime_status("default", name)
        except RuntimeUnreachable:
            return None

    def passes_until(self, check: Callable[[], Any], *, timeout: float, what: str) -> Any:
        """Run passes until ``check`` holds (looked at between passes), within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.run_pass()
            value = check()
            if value:
                return value
        raise AssertionError(f"no {what} within {timeout:.0f}s ({self.passes} passes)")

    def state(self, name: str) -> Path:
        return self.state_dir / "default" / name / "state.db"


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Callable[..., Supervisor]]:
    made: list[Supervisor] = []
    client = RuntimeHttpClient(timeout=2.0)

    def make(ttl: float = 15.0) -> Supervisor:
        engine = create_store_engine(tmp_path / "supervisor.db")
        backend = LocalProcessBackend(
            engine=engine,
            client=client,
            state_dir=tmp_path / "state",
            runtime_command=[sys.executable, "-m", "slsbot.interfaces.cli", "runtime"],
            stop_timeout=10.0,
            control_key=KEY,
        )
        options = SupervisorOptions(
            tick_interval=TICK, catalog=Catalog(), account_risk=AccountRiskSettings(ttl=timedelta(seconds=ttl))
        )
        made.append(
            Supervisor(
                engine, SqlSupervisorStore(engine), backend, options, HeadroomPushes(), tmp_path / "state", client
            )
        )
        return made[-1]

    yield make
    for supervisor in made:
        supervisor.backend.stop_all()
        supervisor.engine.dispose()
    client.close()


@pytest.mark.parametrize("scope", ["account", "strategy"])
def test_the_kill_switch_halts_every_runtime_under_the_policy_within_one_pass(supervisor, scope: str) -> None:
    names = ("btc-one", "eth-two", "btc-three")
    strategies = {
        "btc-one": {},
        "eth-two": {"symbol": "ETH/USDT"},
        "btc-three": {"params": {"fast": 3, "slow": 10}},
    }
    sup = supervisor()
    sup.load(documents(strategies=strategies, policy={"scope": scope}))

    def trading() -> bool:
        statuses = [sup.status(n) for n in names]
        return (
            all(s and s["phase"] == "running" for s in statuses)
            and sum(1 for s in statuses if s and s["open_positions"] > 0) >= 2
        )

    sup.passes_until(trading, timeout=120, what="three running runtimes, two of them in a position")

    sup.load(documents(strategies=strategies, policy={"scope": scope}, kill=True))  # the policy edit
    edited, before = time.monotonic(), sup.passes
    report = sup.run_pass()
    took = time.monotonic() - edited
    answers = {key.split("/")[1]: answer for key, answer in report.headroom.items()}
    print(
        f"\nkill switch (scope {scope}): {sorted(answers)} halted and flat after {sup.passes - before} pass, "
        f"{took:.2f}s after the edit"
    )
    assert sorted(answers) == sorted(names), report
    for name, answer in answers.items():
        assert answer["kill_switch"] is True, (name, answer)
        assert (answer["phase"], answer["open_orders"], answer["open_positions"]) == ("halted", 0, 0), (name, answer)

    # the durable path: the config change restarts each runtime with its policy's killSwitch; it stays halted
    def all_halted() -> bool:
        statuses = [sup.status(n) for n in names]
        return all(
            s and s["phase"] == "halted" and s["open_orders"] == 0 and s["open_positions"] == 0 and s["headroom"]
            for s in statuses
        )

    sup.passes_until(all_halted, timeout=90, what="every restarted runtime halted")
    print(
        f"restarted on the new config and halted after {sup.passes - before} passes, {time.monotonic() - edited:.2f}s"
    )

    # cleared: the kill is lifted (the push that lifts it, and the config), and the runtimes trade again
    sup.load(documents(strategies=strategies, policy={"scope": scope}))
    sup.passes_until(
        lambda: all((s := sup.status(n)) and s["phase"] == "running" for n in names), timeout=90, what="trading again"
    )


def cost_exposure(state: Path, symbol: str) -> float:
    """|quantity| x average entry price of ``symbol`` in a runtime's state file (what its entries added, at cost)."""
    if not state.exists():
        return 0.0
    connection = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
    try:
        row = connection.execute("SELECT quantity, average_price FROM positions WHERE symbol = ?", (symbol,)).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return 0.0
    finally:
        connection.close()
    return 0.0 if row is None else abs(row[0]) * row[1]


def refused_by(state: Path, rule: str) -> int:
    connection = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
    try:
        return connection.execute("SELECT count(*) FROM risk_decisions WHERE events LIKE ?", (f"%{rule}%",)).fetchone()[
            0
        ]
    finally:
        connection.close()


@pytest.mark.long  # 40 s of paced trading: make test-long
def test_two_strategies_of_one_account_never_hold_more_than_the_account_limit_together(supervisor) -> None:
    # each Strategy alone enters with 40-60 % of its 50 % share and may hold 90 % of it (its own overrides); the
    # account allows 30 % of its capital in all: two entries of 2,000 would be 4,000 of a 3,000 limit
    own = {
        "maxSymbolExposurePercent": 90,
        "maxTotalExposurePercent": 90,
        "perTrade": {"minPercent": 40, "maxPercent": 60},
    }
    strategies = {
        "fast": {"allocation": 50, "params": {"fast": 3, "slow": 10}, "risk": own},
        "slow": {"allocation": 50, "params": {"fast": 5, "slow": 15}, "risk": own},
    }
    policy = {
        "maxSymbolExposurePercent": 30,
        "maxTotalExposurePercent": 30,
        "perTrade": {"minPercent": 1, "maxPercent": 15},
    }
    sup = supervisor()
    sup.load(documents(strategies=strategies, policy=policy, pace=0.05))
    sup.passes_until(
        lambda: all((s := sup.status(n)) and s["phase"] == "running" for n in strategies), timeout=120, what="running"
    )

    limit_seen, combined_max, samples = 0.0, 0.0, 0
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        sup.run_pass()
        statuses = [sup.status(n) for n in strategies]
        if not all(statuses):
            continue
        # the account's limit: 30 % of the capital its Strategies trade with (each runtime's equity x 50 %)
        limit_seen = max(limit_seen, 0.30 * sum(s["equity"] * 0.5 for s in statuses if s))
        combined = sum(cost_exposure(sup.state(n), "BTC/USDT") for n in strategies)
        combined_max, samples = max(combined_max, combined), samples + 1
        assert combined <= limit_seen * 1.002, (combined, limit_seen)  # fees are in the cost basis (0.1 %)
    refusals = sum(refused_by(sup.state(n), "account_symbol_exposure") for n in strategies)
    print(
        f"\ncombined BTC exposure at cost: at most {combined_max:.2f} of the account's {limit_seen:.2f} limit over "
        f"{samples} passes; {refusals} entries cut or refused by the account's headroom"
    )
    assert samples >= 20 and refusals > 0  # the limit did bind
    assert combined_max > 0.5 * limit_seen


def test_a_runtime_whose_control_plane_is_gone_falls_back_to_its_own_limits_after_expiry(supervisor) -> None:
    # the account allows 1 % (50 USDT for this 50 % share): entries are cut to that; its own limits allow 15 % per trade
    own = {
        "maxSymbolExposurePercent": 100,
        "maxTotalExposurePercent": 100,
        "perTrade": {"minPercent": 10, "maxPercent": 15},
    }
    policy = {
        "maxSymbolExposurePercent": 1,
        "maxTotalExposurePercent": 1,
        "perTrade": {"minPercent": 0.5, "maxPercent": 1},
    }
    strategies = {"solo": {"allocation": 50, "params": {"fast": 3, "slow": 10}, "risk": own}}
    sup = supervisor(ttl=4.0)
    sup.load(documents(strategies=strategies, policy=policy))
    sup.passes_until(
        lambda: (s := sup.status("solo")) and s["trade_count"] >= 4, timeout=120, what="trades under the headroom"
    )
    status = sup.status("solo")
    assert status is not None and status["headroom"] is not None and not status["headroom"]["expired"]
    cut = max(float(o["quantity"]) for o in _buys(sup))
    # the control plane goes away: no pass any more; the runtime keeps trading on its own
    gone = time.monotonic()
    deadline = gone + 60
    while time.monotonic() < deadline:
        status = sup.status("solo")
        if status and status["headroom"]["expired"]:
            break
        time.sleep(0.1)
    assert status and status["headroom"]["expired"], "the headroom did not expire"
    expired_ts = status["last_candle_ts"]
    later = _wait(
        lambda: [o for o in _buys(sup) if o["created_at"] > _iso(expired_ts)], 60, "an entry after the expiry"
    )
    print(
        f"\nentries cut to at most {cut:.6g} BTC under the headroom; {float(later[0]['quantity']):.6g} BTC on its own "
        f"limits once the headroom expired ({time.monotonic() - gone:.1f}s after the last pass)"
    )
    assert float(later[0]["quantity"]) > 4 * cut  # 10-15 % of its share, not the account's 1 %


def _buys(sup: Supervisor) -> list[dict[str, Any]]:
    url = sup.backend.base_url("default", "solo") or ""
    orders = sup.client.orders(url, limit=1000, token=KEY.token_for("default", "solo"))
    return [o for o in orders if o["side"] == "buy"]


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout:.0f}s")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
