"""A chaos run: ``slsbot up`` with several testnet bots trading on the fake exchange through the fault proxy, while
runtimes are killed (SIGKILL), candle feeds stall and exchange calls fail; then a report of what was injected,
what the control plane saw and whether anything was corrupted.

    python -m e2e.chaos --minutes 5 --bots 3 --seed 42        # or: make chaos CHAOS_ARGS="--minutes 5 --seed 42"

Needs the development dependencies (``make setup``): the fake exchange and the proxy are test helpers
(``tests/fakes``). Each bot trades its own symbol on one shared fake Binance account, in ``testnet`` mode (the
supervisor passes ``SLSBOT_EXCHANGE_API_KEY`` / ``SLSBOT_EXCHANGE_SECRET`` to its runtimes; in local mode a
TradingAccount's ``secretRef`` is not read) with every REST call sent to the proxy (``SLSBOT_EXCHANGE_ENDPOINT``).
The exchange's clock runs ``3600 / --candle-seconds`` times faster than the wall clock.

The seed fixes the schedule of kills, stalls and fault bursts (printed before the run) and the proxy's draw; the
same seed replays the same schedule. Exit code 0 when no order was lost or duplicated and every bot ends
consistent with the exchange, 1 otherwise, 2 when the run could not start. See docs/guides/chaos.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.fakes and e2e when run as a file

import httpx  # noqa: E402
import yaml  # noqa: E402
from e2e.chaos_check import BotBook, ExchangeBook, check_bot, parse_histograms  # noqa: E402
from tests.fakes.fake_exchange_market import PacedClock, utc_ms  # noqa: E402
from tests.fakes.fake_exchange_server import FAKE_API_KEY, FAKE_SECRET, FakeExchangeServer, FillPlan  # noqa: E402
from tests.fakes.fault_proxy import FaultPlan, FaultProxy, StallMode  # noqa: E402

from slsbot.adapters.control_tokens import ControlKey, load_or_create_control_key  # noqa: E402
from slsbot.settings import ControlPlaneSettings  # noqa: E402
from slsbot_runtime.persistence.store import StateStore  # noqa: E402

HOUR_MS = 3_600_000
START = utc_ms("2025-01-02T12:00") + 5_000
#: One bot per symbol (the fake has these eight); each trades about 500 USDT a time.
SYMBOLS = ("BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "LTC")
NOTIONAL = 500.0
SLSBOT = [sys.executable, "-m", "slsbot.interfaces.cli"]


@dataclass(frozen=True)
class Event:
    at_s: float  # seconds after the start of the chaos phase
    kind: str  # kill, stall_stale, stall_held, fault_burst
    bot: int | None = None  # index of the bot (kill, stall)
    duration_s: float = 0.0  # stall, burst
    rate: float = 0.0  # burst


def schedule(seed: int, minutes: float, bots: int) -> list[Event]:
    """The run's faults, from the seed alone: every 8 to 20 s one of kill (twice as likely), stale feed, held feed
    (20 to 60 s, one bot's symbol) or a burst of exchange faults (40 to 60 % of calls for 4 to 10 s)."""
    rng = random.Random(seed)
    events, at, end = [], rng.uniform(5, 10), minutes * 60
    while at < end - 5:
        kind = rng.choice(("kill", "kill", "stall_stale", "stall_held", "fault_burst"))
        bot = rng.randrange(bots)
        if kind == "kill":
            events.append(Event(round(at, 2), kind, bot))
        elif kind == "fault_burst":
            events.append(
                Event(round(at, 2), kind, None, round(rng.uniform(4, 10), 2), round(rng.uniform(0.4, 0.6), 2))
            )
        else:
            # long enough to span the runtime's 30 s clock reading, so a poll meets the stall
            events.append(Event(round(at, 2), kind, bot, round(rng.uniform(20, 60), 2)))
        at += rng.uniform(8, 20)
    return events


@dataclass
class Report:
    seed: int
    minutes: float
    bots: int
    schedule: list[dict[str, Any]]
    faults_injected: dict[str, int] = field(default_factory=dict)
    incidents: list[dict[str, Any]] | str = "incidents API not available"
    mttr: dict[str, dict[str, float]] | str = "MTTR metrics not available"
    kill_to_trading_s: list[float] = field(default_factory=list)
    kills_not_back: int = 0
    kills_skipped: int = 0  # scheduled while the bot's runtime was down (an earlier kill): nothing to kill
    orders: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.orders.get("lost", 0) == 0 and self.orders.get("duplicated", 0) == 0


def manifests(folder: Path, bots: int, prices: dict[str, float]) -> list[str]:
    """The YAML of the run: a policy, one testnet account, one Strategy per bot. Returns the bots' names."""
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        raise RuntimeError(f"--workdir: {folder.parent} holds an earlier run; pass a new or empty folder") from None
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "RiskPolicy",
            "metadata": {"name": "chaos-risk", "namespace": "default"},
            "spec": {"maxSymbolExposurePercent": 100, "maxTotalExposurePercent": 100, "maxDrawdownPercent": 50},
        },
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "TradingAccount",
            "metadata": {"name": "chaos-binance", "namespace": "default"},
            "spec": {
                "exchange": "binance",
                "mode": "testnet",
                # read under Kubernetes only; slsbot up passes SLSBOT_EXCHANGE_API_KEY/SECRET to its runtimes
                "credentials": {"secretRef": {"name": "chaos-binance-keys"}},
                "riskPolicyRef": {"name": "chaos-risk"},
            },
        },
    ]
    names = []
    for index in range(bots):
        base = SYMBOLS[index]
        name = f"chaos-{base.lower()}"
        names.append(name)
        quantity = round(NOTIONAL / prices[base], 5)
        docs.append(
            {
                "apiVersion": "slsbot.io/v1alpha1",
                "kind": "Strategy",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {
                    "accountRef": {"name": "chaos-binance"},
                    "allocationPercent": round(100 / bots, 2),
                    "symbols": [f"{base}/USDT"],
                    # fast 1 / slow 2 crosses at every turn of the close (about every other candle on these
                    # series), so a bot that lives a few candles between kills and stalls still trades: a slower
                    # pair (2 / 5) sent no order at all in some one-minute runs, and such a run proves nothing
                    "ensemble": {
                        "members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 1, "slow": 2}}]
                    },
                    "sizing": {"method": "fixedQuantity", "quantity": quantity},
                    "marketData": {"source": "exchange", "warmupCandles": 8},
                },
            }
        )
    (folder / "chaos.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return names


class Supervisor:
    """``slsbot up`` as a child process, and what the chaos run asks of it."""

    def __init__(self, folder: Path, state_dir: Path, endpoint: str) -> None:
        self.state_dir = state_dir
        self.log = state_dir.parent / "supervisor.log"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "SLSBOT_EXCHANGE_ENDPOINT": endpoint,
            "SLSBOT_EXCHANGE_API_KEY": FAKE_API_KEY,
            "SLSBOT_EXCHANGE_SECRET": FAKE_SECRET,
        }
        command = [*SLSBOT, "up", "-f", str(folder), "--port", "0", "--state-dir", str(state_dir)]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        connection = wait_for(self._connection, timeout=60, what="slsbot up to write admin-api.json")
        # the token is in the file when slsbot up generated it, else it is the one this environment gave it
        self.url = connection["url"]
        self.token = connection.get("token") or os.environ.get("SLSBOT_ADMIN_TOKEN", "")
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10, trust_env=False
        )
        # The runtimes' bearer tokens derive from the supervisor's control key, in the state folder this run owns.
        self.control_key: ControlKey = load_or_create_control_key(
            ControlPlaneSettings(state_dir=state_dir).control_key_path
        )

    def _connection(self) -> dict[str, Any] | None:
        if self.process.poll() is not None:
            raise RuntimeError(f"slsbot up exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
        path = self.state_dir / "admin-api.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def strategy(self, name: str) -> dict[str, Any]:
        return self.client.get(f"/api/v1/strategies/{name}").json()

    def runtime_status(self, name: str) -> dict[str, Any] | None:
        """The runtime's own /status (its port is in the config the supervisor rendered), None when it is down."""
        try:
            config = yaml.safe_load((self.state_dir / "default" / name / "runtime.yaml").read_text())
            port = config["server"]["port"]
            headers = {"Authorization": f"Bearer {self.control_key.token_for('default', name)}"}
            response = httpx.get(f"http://127.0.0.1:{port}/status", headers=headers, timeout=2, trust_env=False)
            return response.json() if response.status_code == 200 else None
        except (OSError, KeyError, TypeError, ValueError, httpx.HTTPError):
            return None

    def incidents(self) -> list[dict[str, Any]] | str:
        response = self.client.get("/api/v1/incidents")
        if response.status_code == 404:
            return "incidents API not available"
        if response.status_code != 200:
            return f"incidents API answered {response.status_code}: {response.text[:200]}"
        body = response.json()
        return body if isinstance(body, list) else body.get("items", [body])

    def metrics(self) -> str | None:
        response = self.client.get("/metrics")
        return response.text if response.status_code == 200 else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def trading(status: dict[str, Any] | None, after_candle: int) -> bool:
    """Running, on a candle newer than ``after_candle`` (a runtime reads the exchange's clock every 30 s, so its
    newest candle trails the fake's by up to 30 s of exchange time; a restarted one reads it at once)."""
    return bool(status and status.get("phase") == "running" and (status.get("last_candle_ts") or 0) > after_candle)


def kill_and_time(supervisor: Supervisor, name: str, report: Report, lock: threading.Lock) -> None:
    """SIGKILL the bot's runtime, then time it until /status shows a new process trading on a current candle."""
    before = supervisor.strategy(name)
    pid = before.get("pid")
    status = supervisor.runtime_status(name)
    try:
        if not pid or status is None:
            raise ProcessLookupError(name)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        with lock:
            report.kills_skipped += 1
        return
    killed = time.monotonic()
    target = status.get("last_candle_ts") or 0

    def back() -> bool:
        view = supervisor.strategy(name)
        return bool(view.get("pid") and view["pid"] != pid and trading(supervisor.runtime_status(name), target))

    try:
        wait_for(back, timeout=120, what=f"{name} back and trading")
    except TimeoutError:
        with lock:
            report.kills_not_back += 1
        return
    with lock:
        report.kill_to_trading_s.append(round(time.monotonic() - killed, 2))


def run(args: argparse.Namespace) -> Report:
    events = schedule(args.seed, args.minutes, args.bots)
    report = Report(args.seed, args.minutes, args.bots, [asdict(e) for e in events])
    print(f"chaos run: seed {args.seed}, {args.minutes:g} min, {args.bots} bots, {len(events)} scheduled faults")
    for event in events:
        print(f"  t+{event.at_s:6.1f}s {event.kind:12s} bot={event.bot} duration={event.duration_s} rate={event.rate}")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="slsbot-chaos-"))
    clock = PacedClock(START, speed=3600 / args.candle_seconds)
    plan = FaultPlan(rate=args.fault_rate, seed=args.seed)
    with FakeExchangeServer(clock) as fake, FaultProxy(fake.url, plan) as proxy:
        fake.account.balances = {"USDT": 1_000_000.0}  # nothing else: each bot's position is its base's balance
        fake.account.fill_plan = FillPlan(parts=2, delay_ms=0, interval_ms=HOUR_MS // 4)
        prices = {b: fake.account.klines.price(f"{b}USDT", clock.now_ms()) for b in SYMBOLS[: args.bots]}
        names = manifests(workdir / "manifests", args.bots, prices)
        print(f"work folder: {workdir} (supervisor.log, state/)")
        supervisor = Supervisor(workdir / "manifests", workdir / "state", proxy.url)
        try:
            wait_for(
                lambda: all(trading(supervisor.runtime_status(n), 0) for n in names),
                timeout=180,
                what="every bot running",
            )
            # the faults start once every bot has traded: a kill then hits a bot that holds a position, and a run
            # whose bots never traded (a few candles each between faults) cannot pass as proving anything
            wait_for(
                lambda: all(exchange_book(fake, n).orders for n in names),
                timeout=180,
                what="every bot's first order at the exchange",
            )
            chaos(events, names, supervisor, proxy, report)
            settle(names, supervisor, fake, proxy, report)
            report.incidents = supervisor.incidents()
            report.mttr = parse_histograms(supervisor.metrics() or "") or "MTTR metrics not available"
        finally:
            supervisor.stop()
        report.faults_injected = {**proxy.injected, **report.faults_injected}
        check(names, supervisor.state_dir, fake, report)
    return report


def chaos(events: list[Event], names: list[str], supervisor: Supervisor, proxy: FaultProxy, report: Report) -> None:
    began = time.monotonic()
    base_rate = proxy.plan.rate  # what a burst returns to
    lock = threading.Lock()
    timers: list[threading.Thread] = []
    endings: list[threading.Timer] = []  # the ends of stalls and bursts, cancelled when the chaos phase ends
    counts = {"feed_stall": 0, "fault_burst": 0}
    for event in events:
        delay = began + event.at_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        print(f"t+{time.monotonic() - began:6.1f}s {event.kind} {'' if event.bot is None else names[event.bot]}")
        if event.kind == "kill":
            thread = threading.Thread(
                target=kill_and_time, args=(supervisor, names[event.bot], report, lock), daemon=True
            )
            thread.start()
            timers.append(thread)
        elif event.kind.startswith("stall"):
            counts["feed_stall"] += 1
            market = f"{SYMBOLS[event.bot]}USDT"
            proxy.stall_feed(StallMode.STALE if event.kind == "stall_stale" else StallMode.HELD, markets=[market])
            endings.append(threading.Timer(event.duration_s, proxy.end_stall))
            endings[-1].start()
        else:
            counts["fault_burst"] += 1
            proxy.set_rate(event.rate)
            endings.append(threading.Timer(event.duration_s, proxy.set_rate, args=(base_rate,)))
            endings[-1].start()
    remaining = began + report.minutes * 60 - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
    for ending in endings:
        ending.cancel()
    for thread in timers:
        thread.join(timeout=150)
    report.faults_injected.update(runtime_kill=len(report.kill_to_trading_s) + report.kills_not_back, **counts)


def settle(
    names: list[str], supervisor: Supervisor, fake: FakeExchangeServer, proxy: FaultProxy, report: Report
) -> None:
    """Faults off; wait until every bot is consistent with the exchange (or 120 s), so the check sees the end."""
    proxy.set_rate(0.0)
    proxy.end_stall()

    def consistent() -> bool:
        problems: list[str] = []
        for name in names:
            problems += check_bot(bot_book(supervisor.state_dir, name), exchange_book(fake, name)).problems
        return not problems

    try:
        wait_for(consistent, timeout=120, what="every bot consistent with the exchange")
    except TimeoutError:
        report.problems.append("the bots were not consistent with the exchange 120 s after the faults stopped")


def bot_book(state_dir: Path, name: str) -> BotBook:
    store = StateStore.open(state_dir / "default" / name / "state.db", readonly=True)
    try:
        orders = {o.client_order_id: (str(o.status), o.filled_quantity) for o in store.load_orders()}
        fills = [(f.fill_id, f.client_order_id) for f in store.load_fills()]
        positions = {symbol: row.quantity for symbol, row in store.load_positions().items()}
    finally:
        store.close()
    return BotBook(name, orders, fills, positions)


def exchange_book(fake: FakeExchangeServer, name: str) -> ExchangeBook:
    base = name.removeprefix("chaos-").upper()
    with fake.account.lock:
        market = [o for o in fake.account.orders if o.market_id == f"{base}USDT"]
        return ExchangeBook(
            symbol=f"{base}/USDT",
            orders=[(o.client_order_id, o.status.lower(), o.filled) for o in market],
            fills=[(str(t.trade_id), t.order.client_order_id) for t in fake.account.trades if t.order in market],
            balance=fake.account.balances.get(base, 0.0),
        )


def check(names: list[str], state_dir: Path, fake: FakeExchangeServer, report: Report) -> None:
    totals = {"sent": 0, "lost": 0, "duplicated": 0, "pending": 0}
    for name in names:
        result = check_bot(bot_book(state_dir, name), exchange_book(fake, name))
        for key in totals:
            totals[key] += getattr(result, key)
        report.problems += [f"{name}: {problem}" for problem in result.problems]
    report.orders = totals


def print_report(report: Report) -> None:
    print("\n=== chaos report ===")
    print(
        f"seed: {report.seed} (replay: python -m e2e.chaos --minutes {report.minutes:g} --bots {report.bots} "
        f"--seed {report.seed})"
    )
    print("faults injected:")
    for kind, count in report.faults_injected.items():
        print(f"  {kind:14s} {count}")
    if isinstance(report.incidents, str):
        print(f"incidents: {report.incidents}")
    else:
        print(f"incidents opened: {len(report.incidents)}")
        for incident in report.incidents:
            spec, status = incident.get("spec") or {}, incident.get("status") or {}
            print(
                f"  severity {spec.get('severity')} {spec.get('rule')} ({status.get('state')}, seen "
                f"{status.get('count')}x): {spec.get('message', '')}"
            )
    if isinstance(report.mttr, str):
        print(f"MTTR: {report.mttr}")
    else:
        print("MTTR per failure class (mean seconds; count; StaleData's detection counts from the missing candle's due")
        print("time on the fake exchange's clock, which runs faster than the wall clock here):")
        for name, classes in report.mttr.items():
            for cls, (mean, count) in classes.items():
                print(f"  {name:10s} {cls:22s} {mean:8.2f}  ({count:g})")
    times = sorted(report.kill_to_trading_s)
    if times:
        print(
            f"killed runtime back and trading: n={len(times)}, median {times[len(times) // 2]:.2f}s, "
            f"max {times[-1]:.2f}s" + (f", {report.kills_not_back} not back in 120 s" if report.kills_not_back else "")
        )
    else:
        print("killed runtime back and trading: no kill measured")
    if report.kills_skipped:
        print(f"kills skipped (the runtime was already down): {report.kills_skipped}")
    orders = report.orders
    print(
        f"orders: {orders.get('sent', 0)} at the exchange, lost {orders.get('lost', 0)}, "
        f"duplicated {orders.get('duplicated', 0)}, still pending {orders.get('pending', 0)}"
    )
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    print("result: " + ("OK, nothing lost, duplicated or corrupted" if report.ok else "FAILED"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m e2e.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="How long faults are injected (default 5).")
    parser.add_argument("--bots", type=int, default=3, help=f"Bots, one symbol each (1..{len(SYMBOLS)}, default 3).")
    parser.add_argument("--seed", type=int, default=None, help="Replays a run's schedule (default: a random one).")
    parser.add_argument("--fault-rate", type=float, default=0.1, help="Share of exchange calls failing (0.1).")
    parser.add_argument("--candle-seconds", type=float, default=5.0, help="Wall seconds per 1h candle (5).")
    parser.add_argument("--workdir", default=None, help="Where manifests, state and logs go (default: a temp dir).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the report as JSON to this file.")
    args = parser.parse_args(argv)
    if not 1 <= args.bots <= len(SYMBOLS):
        parser.error(f"--bots: must be within 1..{len(SYMBOLS)}, got {args.bots}")
    if not args.minutes > 0:
        parser.error(f"--minutes: must be positive, got {args.minutes}")
    if not 0 <= args.fault_rate <= 1:
        parser.error(f"--fault-rate: must be within [0, 1], got {args.fault_rate}")
    if not args.candle_seconds >= 1:
        parser.error(f"--candle-seconds: must be at least 1, got {args.candle_seconds}")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except (TimeoutError, RuntimeError) as error:
        print(f"chaos run could not run: {error}", file=sys.stderr)
        return 2
    print_report(report)
    if args.json is not None:
        args.json.write_text(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
