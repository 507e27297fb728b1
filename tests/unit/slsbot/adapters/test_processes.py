"""LocalProcessBackend without starting anything: the runtime's environment, ports, and what observe makes of
the records it finds (the process mechanics are in tests/integration/supervisor/test_process_backend.py)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from slsbot.adapters.control_tokens import ControlKey
from slsbot.adapters.process_table import free_port, pid_runs, port_is_free
from slsbot.adapters.processes import LocalProcessBackend, runtime_environment
from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.adapters.store import RuntimeRecord, create_store_engine, get_runtime_record, save_runtime_record
from slsbot.api import RiskPolicySpec, Strategy, TradingAccount
from slsbot.api.account import VaultAuth
from slsbot.domain.errors import RuntimeUnreachable
from slsbot.domain.plan import Action, ActionKind, RuntimeState
from slsbot.domain.resolve import ResolvedStrategy

NOW = datetime(2026, 2, 3, 4, 5, tzinfo=UTC)
GONE_PID = 4_194_304 + 4321  # above Linux's largest pid_max: never a running process


def test_runtime_environment_drops_the_tokens_and_caches_bytecode(tmp_path: Path) -> None:
    env = runtime_environment(
        {
            "PATH": "/bin",
            "SLSBOT_ADMIN_TOKEN": "a" * 20,
            "SLSBOT_OPERATOR_TOKEN": "e" * 20,
            "SLSBOT_VIEWER_TOKEN": "b" * 20,
            "SLSBOT_RUNTIME_TOKEN": "c" * 20,
            "SLSBOT_OPERATOR_CONTROL_KEY": "d" * 40,
            "PYTHONDONTWRITEBYTECODE": "1",
            "SLSBOT_MARKET_DATA": "/data",
        },
        bytecode_cache=tmp_path / ".pycache",
    )
    assert env == {
        "PATH": "/bin",
        "SLSBOT_MARKET_DATA": "/data",
        "PYTHONPYCACHEPREFIX": str(tmp_path / ".pycache"),
        "PYTHONUNBUFFERED": "1",
    }


def test_runtime_environment_drops_the_age_key_that_decrypts_the_folder(tmp_path: Path) -> None:
    age = {
        "SOPS_AGE_KEY": "AGE-SECRET-KEY-1EXAMPLE",
        "SOPS_AGE_KEY_FILE": "/home/me/.config/sops/age/keys.txt",
        "SOPS_AGE_KEY_CMD": "pass show age",
        "SOPS_AGE_SSH_PRIVATE_KEY_FILE": "/home/me/.ssh/id_ed25519",
    }
    env = runtime_environment({"PATH": "/bin", **age}, bytecode_cache=tmp_path)
    assert not set(age) & set(env)


def test_ports() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_is_free(port) is False
        assert free_port(avoid=[port]) != port
    assert port_is_free(free_port())
    assert pid_runs(GONE_PID) is False


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_store_engine(tmp_path / "supervisor.db")
    yield engine
    engine.dispose()


@pytest.fixture
def backend(engine, tmp_path: Path):
    client = RuntimeHttpClient(timeout=0.2)
    yield LocalProcessBackend(
        engine=engine,
        client=client,
        state_dir=tmp_path / "state",
        runtime_command=["false"],
        stop_timeout=1,
        control_key=ControlKey("k" * 40, source="test"),
        environ={},
        clock=lambda: NOW,
    )
    client.close()


@pytest.fixture
def save(engine):
    def save(**fields) -> None:
        with Session(engine) as session:
            save_runtime_record(session, record=RuntimeRecord(namespace="default", name="btc", **fields), now=NOW)

    return save


def test_nothing_recorded_is_absent(backend: LocalProcessBackend) -> None:
    assert backend.observe("default", "btc").state is RuntimeState.ABSENT
    assert backend.base_url("default", "btc") is None


def test_a_stopped_runtime_is_absent_and_a_crashed_one_exited(backend: LocalProcessBackend, save) -> None:
    save(port=9100, config_hash="abc", restarts=2)
    observed = backend.observe("default", "btc")
    assert (observed.state, observed.restarts, observed.config_hash) == (RuntimeState.ABSENT, 2, "abc")
    save(port=9100, config_hash="abc", restarts=2, consecutive_failures=3, exited_at=NOW)
    backend.forget("default", "btc")  # written behind its back: the backend reads a record once, then keeps it
    observed = backend.observe("default", "btc")
    assert (observed.state, observed.consecutive_failures, observed.exited_at) == (RuntimeState.EXITED, 3, NOW)


def test_a_recorded_pid_that_is_gone_counts_as_a_crash(backend: LocalProcessBackend, save, engine) -> None:
    save(pid=GONE_PID, port=9100, config_hash="abc", config_path="/x/runtime.yaml")
    observed = backend.observe("default", "btc")
    assert observed.state is RuntimeState.EXITED
    assert observed.consecutive_failures == 1 and observed.exited_at == NOW and observed.pid is None
    with Session(engine) as session:
        assert get_runtime_record(session, namespace="default", name="btc").pid is None


def test_calls_to_a_runtime_that_does_not_run_are_unreachable(backend: LocalProcessBackend, save) -> None:
    save(port=9100)
    with pytest.raises(RuntimeUnreachable, match="default/btc is not running"):
        backend.execute("default", "btc", Action(ActionKind.DRAIN, "Draining", "test", cancel_orders=True))


def test_deleting_a_crashed_runtime_makes_it_absent(backend: LocalProcessBackend, save) -> None:
    save(port=9100, exited_at=NOW, consecutive_failures=1)
    backend.execute("default", "btc", Action(ActionKind.DELETE, "Deleting", "test"))
    assert backend.observe("default", "btc").state is RuntimeState.ABSENT


def test_deleting_a_stopped_runtime_retires_its_state_file(backend: LocalProcessBackend, save, tmp_path) -> None:
    folder = tmp_path / "state" / "default" / "btc"
    folder.mkdir(parents=True)
    (folder / "state.db").write_text("db")
    (folder / "state.db-wal").write_text("wal")
    save(port=9100, exited_at=NOW, consecutive_failures=1)
    backend.execute("default", "btc", Action(ActionKind.DELETE, "Deleting", "test"))
    assert sorted(p.name for p in folder.iterdir()) == [
        "state.db.retired-20260203T040500Z",
        "state.db.retired-20260203T040500Z-wal",
    ]
    assert (folder / "state.db.retired-20260203T040500Z-wal").read_text() == "wal"


def test_the_token_of_a_runtime_is_found_by_its_url(backend: LocalProcessBackend, save) -> None:
    save(port=9100)
    token = ControlKey("k" * 40, source="test").token_for("default", "btc")
    assert backend.token_for_url("http://127.0.0.1:9100") == (token,) and len(token) == 64
    assert backend.token_for_url("http://127.0.0.1:9101") is None


def test_the_record_is_read_once_and_written_when_its_lifecycle_changes(backend: LocalProcessBackend, save, engine):
    """The backend is the only writer of runtime records: it reads one once, keeps it, and writes it back at once
    when the lifecycle changes (an exit here), but a change of only the last /status at most every few seconds."""
    from sqlalchemy import event

    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    save(pid=GONE_PID, port=9100, config_hash="abc", config_path="/x/runtime.yaml")
    statements.clear()
    assert backend.observe("default", "btc").state is RuntimeState.EXITED  # a read, then the exit written
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    writes = [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert writes, "an exit is written at once"
    statements.clear()
    for _ in range(5):
        assert backend.observe("default", "btc").state is RuntimeState.EXITED
    assert statements == [], "nothing changed: no read, no write"
    assert len(reads) >= 1


def test_a_vault_account_gets_slsbot_ups_vault_address_and_token_file_path_never_a_value(
    engine, tmp_path: Path
) -> None:
    (tmp_path / "vault-token").write_text("hvs.not-a-real-token-0123456789")  # test_secrets
    local = LocalProcessBackend(
        engine=engine,
        client=RuntimeHttpClient(timeout=0.2),
        state_dir=tmp_path / "state",
        runtime_command=["false"],
        stop_timeout=1,
        control_key=ControlKey("k" * 40, source="test"),
        environ={},
        vault_address="http://127.0.0.1:8200",
        vault_auth=VaultAuth(method="token", token_file=str(tmp_path / "vault-token")),
    )
    strategy = Strategy.model_validate(
        {
            "metadata": {"name": "btc", "namespace": "default"},
            "spec": {
                "accountRef": {"name": "live"},
                "symbols": ["BTC/USDT"],
                "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross"}]},
                "marketData": {"source": "exchange"},
            },
        }
    )
    account = TradingAccount.model_validate(
        {
            "metadata": {"name": "live", "namespace": "default"},
            "spec": {"exchange": "binance", "mode": "live", "credentials": {"vault": {"path": "slsbot/live"}}},
        }
    )
    resolved = ResolvedStrategy(strategy=strategy, account=account, policy=RiskPolicySpec(), policy_name=None)
    config = local.render_config(resolved)
    vault = config.account.vault
    assert vault is not None and vault.address == "http://127.0.0.1:8200" and vault.path == "slsbot/live"
    assert vault.auth is not None and vault.auth.token_file == str(tmp_path / "vault-token")
    assert "hvs." not in config.model_dump_json()
