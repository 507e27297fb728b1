"""The control plane's ``RuntimeHttpClient.set_trading_mode`` against a real HTTP server on 127.0.0.1 that speaks the
runtime's ``POST /trading-mode`` contract (``tests/fakes/fake_health_runtime.py``: the runtime's own side is another
part's work), and every error converted: a refused body names the field, a wrong token never shows."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.fakes import test_secrets  # tests/conftest.py put the repository on sys.path
from tests.fakes.fake_health_runtime import FakeRuntime, handler_for

from slsbot.adapters.runtime_client import RuntimeHttpClient
from slsbot.api.health import TradingMode
from slsbot.domain.errors import InvalidSpecError, RuntimeUnreachable

pytestmark = [pytest.mark.integration]

TOKEN = test_secrets.CLIENT_RUNTIME_TOKEN


class RefusingRuntime(FakeRuntime):
    """Answers as a runtime that refuses the body (400 naming the field), or that answers another mode."""

    answer: tuple[int, dict] = (400, {"error": "flatten: must be true or false"})

    def set_mode(self, body):
        return self.answer


def _serve(runtime: FakeRuntime) -> tuple[ThreadingHTTPServer, threading.Thread]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(runtime))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def runtime_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("SLSBOT_RUNTIME_TOKEN", TOKEN)
    monkeypatch.setenv("FAKE_RUNTIME_FAULTS", str(tmp_path))
    (tmp_path / "btc").mkdir()
    return {"state": {"path": str(tmp_path / "btc" / "state.db")}, "server": {"host": "127.0.0.1", "port": 0}}


@pytest.fixture
def fake(runtime_config: dict) -> Iterator[tuple[str, FakeRuntime]]:
    runtime = FakeRuntime(runtime_config)
    server, thread = _serve(runtime)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", runtime
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_client_sets_the_trading_mode_and_converts_every_error(fake):
    url, runtime = fake
    client = RuntimeHttpClient(timeout=2.0)
    try:
        mode = client.set_trading_mode(url, mode=TradingMode.HALTED, flatten=True, reason="StaleData_Halt", token=TOKEN)
        assert mode is TradingMode.HALTED
        assert client.status(url, token=TOKEN)["trading_mode"] == "halted"
        (push,) = [json.loads(line) for line in runtime.pushes.read_text().splitlines()]
        assert push["mode"] == "halted" and push["flatten"] is True and push["reason"] == "StaleData_Halt"

        with pytest.raises(RuntimeUnreachable, match="answered 401") as refused:
            client.set_trading_mode(url, mode=TradingMode.NORMAL, flatten=False, reason="x", token="not-the-token")
        assert "not-the-token" not in str(refused.value) and TOKEN not in str(refused.value)
        assert client.status(url, token=TOKEN)["trading_mode"] == "halted"  # the refused call changed nothing
    finally:
        client.close()


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        ((400, {"error": "flatten: must be true or false"}), InvalidSpecError, "refused: flatten: must be true"),
        ((200, {"trading_mode": "normal", "flatten": False}), RuntimeUnreachable, "not trading mode safe"),
        ((503, {"error": "busy"}), RuntimeUnreachable, "answered 503"),
    ],
)
def test_a_refusal_or_another_answer_is_an_error_naming_what_the_runtime_said(runtime_config, answer, error, match):
    runtime = RefusingRuntime(runtime_config)
    runtime.answer = answer
    server, thread = _serve(runtime)
    client = RuntimeHttpClient(timeout=2.0)
    try:
        with pytest.raises(error, match=match):
            url = f"http://127.0.0.1:{server.server_address[1]}"
            client.set_trading_mode(url, mode=TradingMode.SAFE, flatten=False, reason="x", token=TOKEN)
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_runtime_that_does_not_answer_is_unreachable():
    with socket.socket() as spare:  # a port nobody listens on
        spare.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{spare.getsockname()[1]}"
    client = RuntimeHttpClient(timeout=1.0)
    try:
        with pytest.raises(RuntimeUnreachable, match="ConnectError"):
            client.set_trading_mode(closed, mode=TradingMode.SAFE, flatten=False, reason="x", token=TOKEN)
    finally:
        client.close()
