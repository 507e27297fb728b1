"""LocalProcessBackend's process mechanics with real processes: a stand-in program (sleeps; one variant ignores
SIGTERM) takes the runtime's place, because what is under test is spawning, crash detection, restarts,
adoption after a supervisor restart and stop escalation, not the runtime (that is test_local_supervisor.py)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlmodel import Session
from tests.fakes import test_secrets  # tests/conftest.py put the repository on sys.path

from slsbot.adapters.control_tokens import ControlKey
from slsbot.adapters.process_table import command_line, port_is_free
from slsbot.adapters.processes import LocalProcessBackend
from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import RuntimeRecord, create_store_engine, get_runtime_record, save_runtime_record
from slsbot.api import parse_resource
from slsbot.domain.plan import Action, ActionKind, RuntimeState
from slsbot.domain.resolve import ResolvedStrategy, resolve_strategy
from slsbot.domain.runtime_spec import desired_runtime

pytestmark = pytest.mark.integration

KEY = ControlKey(test_secrets.SUPERVISOR_CONTROL_KEY, source="test")
RUNTIME_NICE = 7

STAND_IN = (
    "import signal, sys, time\n"
    "if 'stubborn' in open(sys.argv[-1]).read():\n"
    "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('stand-in runtime up', flush=True)\n"
    "time.sleep(600)\n"
)


def resolved(name: str) -> ResolvedStrategy:
    account = parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "TradingAccount",
            "metadata": {"name": "paper"},
            "spec": {"exchange": "binance"},
        }
    )
    strategy = parse_resource(
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Strategy",
            "metadata": {"name": name},
            "spec": {
                "accountRef": {"name": "paper"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
            },
        }
    )
    result = resolve_strategy(strategy, {"paper": account}, {})
    assert isinstance(result, ResolvedStrategy)
    return result


def until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_store_engine(tmp_path / "supervisor.db")
    yield engine
    engine.dispose()


@pytest.fixture
def make_backend(engine, tmp_path: Path):
    clients: list[RuntimeHttpClient] = []
    backends: list[LocalProcessBackend] = []

    def make(stop_timeout: float = 5.0) -> LocalProcessBackend:
        clients.append(RuntimeHttpClient(timeout=0.2))
        backends.append(
            LocalProcessBackend(
                engine=engine,
                client=clients[-1],
                state_dir=tmp_path / "state",
                runtime_command=[sys.executable, "-c", STAND_IN],
                stop_timeout=stop_timeout,
                control_key=KEY,
                runtime_nice=RUNTIME_NICE,
                environ={
                    "PATH": os.environ.get("PATH", ""),
                    "SLSBOT_ADMIN_TOKEN": test_secrets.MUST_NOT_LEAK_ADMIN_TOKEN,
                },
            )
        )
        return backends[-1]

    yield make
    if backends:
        backends[-1].stop_all()
    for client in clients:
        client.close()


def create_action(backend: LocalProcessBackend, name: str, kind: ActionKind = ActionKind.CREATE) -> Action:
    config = backend.render_config(resolved(name))
    return Action(kind, kind.value, "test", desired=desired_runtime(resolved(name), config))


def test_render_config_paths_and_a_stable_port(make_backend, tmp_path: Path) -> None:
    backend = make_backend()
    first = backend.render_config(resolved("btc"))
    assert first.state.path == str((tmp_path / "state" / "default" / "btc" / "state.db").resolve())
    assert first.server.host == "127.0.0.1"
    assert port_is_free(first.server.port)
    assert backend.render_config(resolved("btc")).server.port == first.server.port
    assert backend.render_config(resolved("eth")).server.port != first.server.port


def test_start_crash_restart_and_adoption(make_backend, engine, tmp_path: Path) -> None:
    backend = make_backend()
    assert backend.observe("default", "btc").state is RuntimeState.ABSENT
    backend.execute("default", "btc", create_action(backend, "btc"))
    started = backend.observe("default", "btc")
    assert started.state is RuntimeState.STARTING  # alive, but it serves no /readyz
    assert started.pid is not None and started.restarts == 0
    folder = tmp_path / "state" / "default" / "btc"
    assert "name: btc" in (folder / "runtime.yaml").read_text()
    until(lambda: "stand-in runtime up" in (folder / "runtime.log").read_text())
    environ = Path(f"/proc/{started.pid}/environ").read_bytes()
    assert b"must-not-leak" not in environ and b"PYTHONPYCACHEPREFIX=" in environ
    # Its own token, in a private file it reads again when the control key rotates, not in its environment.
    assert f"SLSBOT_RUNTIME_TOKEN_FILE={folder / 'control.token'}\0".encode() in environ
    assert (folder / "control.token").read_text() == f"{KEY.token_for('default', 'btc')}\n"
    assert (folder / "control.token").stat().st_mode & 0o077 == 0 and b"SLSBOT_RUNTIME_TOKEN=" not in environ
    assert os.getpgid(started.pid) == started.pid  # its own process group
    # ...in the supervisor's session, so the scheduler counts the fleet as one group (with autogroup, a session
    # each made every runtime weigh as much as the supervisor), and below the supervisor's priority in it.
    assert os.getsid(started.pid) == os.getsid(0)
    assert os.getpriority(os.PRIO_PROCESS, started.pid) == os.getpriority(os.PRIO_PROCESS, 0) + RUNTIME_NICE

    os.kill(started.pid, signal.SIGKILL)
    crashed = until(lambda: (o := backend.observe("default", "btc")).state is RuntimeState.EXITED and o)
    assert crashed.consecutive_failures == 1 and crashed.exited_at is not None
    with Session(engine) as session:
        assert get_runtime_record(session, namespace="default", name="btc").exit_code == -signal.SIGKILL

    backend.execute("default", "btc", create_action(backend, "btc", ActionKind.RESTART))
    restarted = backend.observe("default", "btc")
    assert restarted.restarts == 1 and restarted.pid not in (None, started.pid)

    successor = make_backend()  # the supervisor itself restarted: the runtime kept running and is adopted
    adopted = successor.observe("default", "btc")
    assert adopted.state is RuntimeState.STARTING and adopted.pid == restarted.pid and adopted.restarts == 1


def test_a_runtime_ignoring_sigterm_is_killed_after_the_stop_timeout(make_backend) -> None:
    backend = make_backend(stop_timeout=1.0)
    backend.execute("default", "stubborn", create_action(backend, "stubborn"))
    pid = backend.observe("default", "stubborn").pid
    until(lambda: _ignores_sigterm(pid))
    asked = time.monotonic()
    backend.execute("default", "stubborn", Action(ActionKind.DELETE, "Deleting", "test"))
    assert backend.observe("default", "stubborn").state is RuntimeState.TERMINATING
    until(lambda: backend.observe("default", "stubborn").state is RuntimeState.ABSENT, timeout=10)
    assert time.monotonic() - asked >= 1.0  # SIGTERM had its stop_timeout before the SIGKILL
    observed = backend.observe("default", "stubborn")
    assert observed.consecutive_failures == 0  # a stop we asked for is not a crash


def test_stop_all_stops_every_runtime(make_backend) -> None:
    backend = make_backend(stop_timeout=1.0)
    pids = []
    for name in ("btc", "stubborn"):
        backend.execute("default", name, create_action(backend, name))
        pids.append(backend.observe("default", name).pid)
    until(lambda: _ignores_sigterm(pids[1]))
    backend.stop_all()
    assert [pid for pid in pids if _runs(pid)] == []
    assert backend.observe("default", "btc").state is RuntimeState.ABSENT


def _ignores_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def _runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"


class SlowRuntime:
    """Answers /readyz and /status only while every runtime of the pass is being asked at the same time (a barrier):
    probed one after another, each would wait out the client's timeout and look not ready."""

    def __init__(self, barrier: threading.Barrier) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait()
                body = json.dumps({"phase": "running", "paused": False, "heartbeat": "2026-01-01T00:00:00Z"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_pass_probes_every_runtime_at_once(engine) -> None:
    barrier = threading.Barrier(3, timeout=5)
    runtimes = [SlowRuntime(barrier) for _ in range(3)]
    client = RuntimeHttpClient(timeout=0.5)
    backend = LocalProcessBackend(
        engine=engine,
        client=client,
        state_dir=Path("unused"),
        runtime_command=["false"],
        stop_timeout=1,
        control_key=KEY,
    )
    names = [f"r{i}" for i in range(3)]
    me = command_line(os.getpid()).split()[0]  # records of runtimes "adopted" from this very process
    with Session(engine) as session:
        for name, runtime in zip(names, runtimes, strict=True):
            record = RuntimeRecord(namespace="default", name=name, pid=os.getpid(), port=runtime.port, config_path=me)
            save_runtime_record(session, record=record, now=datetime.now(UTC))
    try:
        backend.probe([("default", name) for name in names])
        observed = [backend.observe("default", name) for name in names]
    finally:
        with Session(engine) as session:  # the "runtimes" are this process: nothing for stop_all to signal
            for name in names:
                record = get_runtime_record(session, namespace="default", name=name)
                record.pid = None
                save_runtime_record(session, record=record, now=datetime.now(UTC))
        backend.stop_all()  # and its probe threads end
        client.close()
        for runtime in runtimes:
            runtime.server.shutdown()
    assert [o.state for o in observed] == [RuntimeState.READY] * 3
    assert all(o.runtime_status["phase"] == "running" for o in observed)


class AllocationRuntime:
    """Answers the runtime's ``GET /performance`` and ``POST /allocation`` on 127.0.0.1 for the right token only."""

    def __init__(self, token: str) -> None:
        self.allocation: float | None = None
        self.asked: list[str] = []
        runtime = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, code: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {token}":
                    return self._answer(401, {"error": "Authorization: missing or wrong bearer token"})
                runtime.asked.append(self.path)
                percent = 100.0 if runtime.allocation is None else runtime.allocation
                periods = [[1_000, 10_000.0, percent * 100, None], [2_000, 10_010.0, percent * 100, 0.001]]
                body = {"allocationPercent": percent, "lastCandleTs": 2_000, "periods": periods, "closedTrades": 3}
                self._answer(200, {**body, "drawdownPercent": 1.5, "breakerLevel": 1})

            def do_POST(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {token}":
                    return self._answer(401, {"error": "Authorization: missing or wrong bearer token"})
                percent = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["percent"]
                if percent is not None and not 0 <= percent <= 100:
                    return self._answer(400, {"error": f"percent: must be between 0 and 100, got {percent}"})
                runtime.allocation = percent
                source = "spec" if percent is None else "controller"
                self._answer(200, {"allocationPercent": 100.0 if percent is None else percent, "source": source})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_rollout_reaches_a_runtime_with_its_own_token(engine) -> None:
    from slsbot.domain.errors import InvalidSpecError, RuntimeUnreachable

    runtime = AllocationRuntime(KEY.token_for("default", "btc"))
    client = RuntimeHttpClient(timeout=2)
    backend = LocalProcessBackend(
        engine=engine,
        client=client,
        state_dir=Path("unused"),
        runtime_command=["false"],
        stop_timeout=1,
        control_key=KEY,
    )
    me = command_line(os.getpid()).split()[0]
    with Session(engine) as session:
        for name, port in (("btc", runtime.port), ("eth", runtime.port)):  # eth's token is not btc's
            record = RuntimeRecord(namespace="default", name=name, pid=os.getpid(), port=port, config_path=me)
            save_runtime_record(session, record=record, now=datetime.now(UTC))
    try:
        backend.set_allocation("default", "btc", 25.0)
        report = backend.performance("default", "btc", since=500)
        assert (report.allocation_percent, report.last_candle_ts, report.closed_trades) == (25.0, 2_000, 3)
        assert (report.drawdown_percent, report.breaker_level) == (1.5, 1)
        assert [(p.ts, p.allocated_capital, p.return_on_allocated) for p in report.periods] == [
            (1_000, 2_500.0, None),
            (2_000, 2_500.0, 0.001),
        ]
        assert runtime.asked == ["/performance?since=500"]
        backend.set_allocation("default", "btc", None)
        assert runtime.allocation is None
        with pytest.raises(InvalidSpecError, match="percent: must be between 0 and 100"):
            backend.set_allocation("default", "btc", 150.0)
        with pytest.raises(RuntimeUnreachable, match="401"):
            backend.performance("default", "eth", since=0)
        with pytest.raises(RuntimeUnreachable, match="not running"):
            backend.performance("default", "sol", since=0)
    finally:
        with Session(engine) as session:
            for name in ("btc", "eth"):
                record = get_runtime_record(session, namespace="default", name=name)
                record.pid = None
                save_runtime_record(session, record=record, now=datetime.now(UTC))
        backend.stop_all()
        client.close()
        runtime.server.shutdown()
