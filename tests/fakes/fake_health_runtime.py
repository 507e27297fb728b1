"""A fake bot runtime for the healing ladder's tests: a real HTTP server on the config's 127.0.0.1 port that speaks
the runtime's issue-9 contract (``GET /healthz``, ``/readyz``, ``/status`` with ``trading_mode`` and a ``health``
block, ``POST /trading-mode``), started by ``slsbot up`` in place of ``slsbot runtime`` (``SLSBOT_RUNTIME_COMMAND``).

It is the fake of the other part (the runtime's side, built elsewhere); what the tests check is the control plane's
ladder. The faults it reports come from ``$FAKE_RUNTIME_FAULTS/<strategy>.json``, which the test writes:
``{"stale_since": <epoch s> | null, "reconcile_ok": bool}``. It keeps its trading mode in ``trading-mode.json``
beside its state file (so a restart keeps it, as the contract says) and appends every ``POST /trading-mode`` it
took to ``pushes.jsonl`` there. ``/status`` and ``/trading-mode`` need the bearer token of
``$SLSBOT_RUNTIME_TOKEN_FILE`` (or ``$SLSBOT_RUNTIME_TOKEN``), checked as the real runtime checks it. Test helper
only; not shipped.

    python -m tests.fakes.fake_health_runtime --config runtime.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from slsbot_runtime.control_access import ControlAccess

MODES = ("normal", "safe", "halted")
INTERVAL_S = 1.0  # the candle cadence it claims


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


class FakeRuntime:
    def __init__(self, config: dict[str, Any]) -> None:
        state = Path(config["state"]["path"])
        self.folder = state.parent
        self.name = self.folder.name
        self.host, self.port = config["server"]["host"], int(config["server"]["port"])
        # the real runtime's token check: SLSBOT_RUNTIME_TOKEN_FILE (what the supervisor gives), re-read as it changes
        self.access = ControlAccess.from_environment(
            os.environ.get("SLSBOT_RUNTIME_TOKEN"),
            insecure=False,
            token_file=os.environ.get("SLSBOT_RUNTIME_TOKEN_FILE"),
        )
        self.faults = Path(os.environ["FAKE_RUNTIME_FAULTS"]) / f"{self.name}.json"
        self.mode_file = self.folder / "trading-mode.json"
        self.pushes = self.folder / "pushes.jsonl"

    def mode(self) -> dict[str, Any]:
        try:
            return json.loads(self.mode_file.read_text())
        except (OSError, ValueError):
            return {"trading_mode": "normal", "trading_mode_reason": None}

    def status(self) -> dict[str, Any]:
        try:
            faults = json.loads(self.faults.read_text())
        except (OSError, ValueError):
            faults = {}
        now = time.time()
        stale_since = faults.get("stale_since")
        age = max(now - stale_since - INTERVAL_S, 0.0) if stale_since else 0.2
        return {
            "phase": "running",
            "paused": False,
            "heartbeat": _iso(now),
            **self.mode(),
            "health": {
                "checked_at": _iso(now),
                "data": {
                    "BTC/USDT": {
                        "last_candle_ts": None,
                        "received_at": None,
                        "age_seconds": age,
                        "interval_seconds": INTERVAL_S,
                        "stale": age > 2 * INTERVAL_S,
                    }
                },
                "exchange": {"connected": True, "errors": 0, "consecutive_errors": 0, "failing_since": None},
                "orders": {"rejects": 0, "consecutive_rejects": 0, "failures": 0, "consecutive_failures": 0},
                "reconcile": {"ok": faults.get("reconcile_ok", True), "problems": 0, "last_problem": None},
                "models": None,
                "memory_bytes": 50_000_000,
                "memory_limit_bytes": None,
            },
        }

    def set_mode(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or body.get("mode") not in MODES:
            return 400, {"error": "mode: must be one of normal, safe, halted"}
        if not isinstance(body.get("flatten", False), bool):
            return 400, {"error": "flatten: must be true or false"}
        mode = {"trading_mode": body["mode"], "trading_mode_reason": str(body.get("reason") or "")[:200]}
        self.mode_file.write_text(json.dumps(mode))
        with self.pushes.open("a") as log:
            log.write(json.dumps({**body, "at": time.time()}) + "\n")
        return 200, {"trading_mode": body["mode"], "flatten": bool(body.get("flatten", False))}


def handler_for(runtime: FakeRuntime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _answer(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            refusal = runtime.access.refusal(self.headers.get("Authorization"))
            if refusal is None:
                return True
            self._answer(refusal[0], {"error": refusal[1]})
            return False

        def do_GET(self) -> None:
            if self.path in ("/healthz", "/readyz"):
                self._answer(200, {"status": "ok"})
            elif self.path == "/status" and self._authorized():
                self._answer(200, runtime.status())
            elif self.path != "/status":
                self._answer(404, {"error": "no such path"})

        def do_POST(self) -> None:
            if self.path != "/trading-mode":
                self._answer(404, {"error": "no such path"})
                return
            if not self._authorized():
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                self._answer(400, {"error": "body: not JSON"})
                return
            self._answer(*runtime.set_mode(body))

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    runtime = FakeRuntime(yaml.safe_load(Path(args.config).read_text()))
    server = ThreadingHTTPServer((runtime.host, runtime.port), handler_for(runtime))
    signal.signal(signal.SIGTERM, lambda *_: (server.server_close(), os._exit(0)))
    server.serve_forever()


if __name__ == "__main__":
    main()
