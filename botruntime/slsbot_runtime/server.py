"""The runtime's HTTP endpoints, served from a thread so the loop never waits on a client.

stdlib ``ThreadingHTTPServer``: a handful of tiny JSON endpoints do not need an ASGI stack, and a plain
thread keeps the loop thread free of any event loop. The control plane (the local supervisor and the kopf
finalizer) calls exactly these paths with exactly these keys:

* ``GET /healthz``: 200 while the loop thread is alive and ticked within the deadline, else 503.
* ``GET /readyz``: 200 once the replay, the reconciliation and the first warmup are done (and while drained,
  serving its final status), else 503.
* ``GET /metrics``: Prometheus text.
* ``GET /status``: name, phase, equity, cash, open_positions, open_orders, trade_count, orders_total,
  last_candle_ts, heartbeat (ISO UTC), paused (and ready, error; ``drained_at`` and ``drain`` once drained), and:

  - profit at a glance (the control plane copies them into the Strategy's status): ``starting_equity`` (quote
    currency), ``return_pct`` ((equity / starting_equity - 1) * 100, net of fees; null without a starting
    equity), ``realized_pnl`` (closed trades, net of fees), ``unrealized_pnl`` (open positions marked at the last
    close), ``closed_trades`` (round trips closed: wins + losses), ``win_rate_pct`` (0..100, null before the first
    closed trade), ``drawdown_pct`` (0..100, below the equity peak now), ``max_drawdown_pct`` (0..100, the
    deepest seen). Kept incrementally by the loop and rebuilt from the state file after a restart;
  - ``idle_reason``: null while the runtime trades normally (it takes what its signals ask and the risk policy
    allows), else why it takes no new trade, a CamelCase word: ``EntriesRefused`` (the risk manager refused the
    last entries of a symbol: no edge, daily loss, breaker, volatility halt...), ``WarmingUp`` (after the start
    or a gap), ``Paused``, ``Halted``, ``DataStale`` (a live feed failing), ``Starting``, ``Finished``,
    ``Drained``; ``idle_message``: one line saying what and why, e.g. ``entries refused on BTC/USDT since
    2025-01-20T12:00Z (14 refused): no edge: ...``.

  The body is the loop's last published snapshot (rebuilt at most every 20 ms while candles stream), so a
  request costs the same however long the bot has run.
* ``GET /orders?limit=N``: the newest N orders (1..1000, default 50) from the state file.
* ``POST /pause``, ``POST /resume``; ``POST /shutdown`` with ``{"cancelOrders": bool, "flatten": bool}``.
* ``POST /allocation`` with ``{"percent": 0..100 or null}``: the share of the account's capital the runtime trades
  with, overriding the Strategy's ``allocationPercent`` (null clears the override). Written to the state file before
  the answer, ``{"allocationPercent": x, "source": "controller" | "spec"}``, and in force from the next candle and
  after a restart. ``/status`` shows ``"allocation": {"percent", "source", "specPercent"}``.
* ``POST /trading-mode`` with ``{"mode": "normal" | "safe" | "halted", "flatten": bool, "reason": str}``
  (``flatten`` and ``reason`` optional): what the runtime may trade (``domain.trading_mode``). Written to the
  state file before the answer, ``{"trading_mode": ..., "flatten": bool}``, and in force after a restart.
  ``/status`` shows ``trading_mode``, ``trading_mode_reason`` and the ``health`` block (``engine.health``,
  docs/concepts/runtime-health.md).
* ``POST /headroom`` with the account or global headroom the control plane pushes (``risk.headroom``; scope,
  policy, total_exposure, symbol_exposure, halt_entries, size_multiplier, kill_switch, reason, expires_at): written
  to the state file before the answer (the headroom as ``/status`` shows it); 400 naming the field, nothing changed.
  ``/status`` shows ``"headroom": {... as pushed, "expired": bool}`` (null before any push) and the figures the
  control plane aggregates: ``exposure`` per symbol, ``total_exposure``, ``pnl_today``, ``equity_day_start``.
* ``GET /performance?since=<ms>``: ``{"allocationPercent", "lastCandleTs", "periods": [[ts, equity,
  allocated_capital, return_on_allocated | null], ...], "closedTrades", "drawdownPercent", "breakerLevel"}`` for
  the candles after ``since`` (``slsbot_runtime.performance``); ``since`` defaults to 0.
* ``GET /activity?limit=N``: ``{"equity": [[ts, equity], ...], "trades": [...], "risk_decisions": [...],
  "breaker": {"level", "action", "tripped"}}``, the newest N (1..1000, default 50) trades and risk decisions
  (``slsbot_runtime.activity``): what the admin API's Control Center shows on a bot's page.

The three probes (``/healthz``, ``/readyz``, ``/metrics``) are open to anyone: kubelets and Prometheus call them.
Every other request needs ``Authorization: Bearer <token>`` (``ControlAccess``): 401 without it or with a wrong
one (compared in constant time), 403 when the runtime was started without a token and without
``--insecure-control``. The token is never logged, echoed or put in an error. The tokens may come from a file the
control plane rewrites when it rotates its key (``control_access``): a rotated token is accepted at once, the
retired one until its grace period ends.

Handlers only parse, call the ``RuntimeControl`` they were given and render; errors are JSON with the field.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from slsbot.api.health import TradingMode
from slsbot_runtime.control_access import ControlAccess
from slsbot_runtime.domain.allocation import check_percent
from slsbot_runtime.domain.errors import SlsbotRuntimeError
from slsbot_runtime.domain.types import Order
from slsbot_runtime.risk.headroom import Headroom, parse_headroom

log = logging.getLogger(__name__)
MAX_ORDERS = 1000
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and Prometheus: never behind the token


class RuntimeControl(Protocol):
    """What the server needs from the running process (``app.RuntimeProcess`` provides it)."""

    def status_json(self) -> dict[str, Any]: ...

    def readiness(self) -> tuple[bool, str]: ...

    def health(self) -> tuple[bool, str]: ...

    def recent_orders(self, limit: int) -> list[Order]: ...

    def set_paused(self, paused: bool) -> bool: ...

    def set_allocation(self, percent: float | None) -> dict[str, Any]: ...

    def performance(self, since: int) -> dict[str, Any]: ...

    def activity(self, limit: int) -> dict[str, Any]: ...

    def set_trading_mode(self, mode: TradingMode, *, flatten: bool, reason: str | None) -> dict[str, Any]: ...
    def set_headroom(self, headroom: Headroom) -> dict[str, Any]: ...

    def request_shutdown(self, *, cancel_orders: bool, flatten: bool) -> None: ...


class BadRequest(Exception):
    pass


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def order_json(order: Order) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": str(order.side),
        "quantity": order.quantity,
        "filled_quantity": order.filled_quantity,
        "status": str(order.status),
        "created_at": iso_ms(order.created_ts),
        "updated_at": iso_ms(order.updated_ts),
    }


def parse_shutdown(body: bytes) -> tuple[bool, bool]:
    """``{"cancelOrders": bool, "flatten": bool}`` (both optional, default false) -> (cancel, flatten)."""
    if not body.strip():
        return False, False
    try:
        data = json.loads(body)
    except ValueError as error:
        raise BadRequest(f'body: not JSON ({error}); send {{"cancelOrders": true, "flatten": false}}') from None
    if not isinstance(data, dict):
        raise BadRequest("body: expected a JSON object with cancelOrders and flatten")
    unknown = sorted(set(data) - {"cancelOrders", "flatten"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field; /shutdown takes cancelOrders and flatten")
    values = []
    for key in ("cancelOrders", "flatten"):
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise BadRequest(f"{key}: must be true or false, got {value!r}")
        values.append(value)
    return values[0], values[1]


ALLOCATION_EXAMPLE = 'send {"percent": 25}, or {"percent": null} to go back to the Strategy\'s allocationPercent'
MAX_SINCE = 2**53  # ms: far beyond any candle, and within what SQLite and JSON take


def parse_allocation(body: bytes) -> float | None:
    """``{"percent": 0..100 or null}`` -> the override, or None to clear it."""
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError as error:
        raise BadRequest(f"body: not JSON ({error}); {ALLOCATION_EXAMPLE}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"body: expected a JSON object with percent; {ALLOCATION_EXAMPLE}")
    unknown = sorted(set(data) - {"percent"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field; /allocation takes percent only")
    if "percent" not in data:
        raise BadRequest(f"percent: missing; {ALLOCATION_EXAMPLE}")
    if data["percent"] is None:
        return None
    try:
        return check_percent(data["percent"])
    except ValueError as error:
        raise BadRequest(str(error)) from None


TRADING_MODE_EXAMPLE = 'send {"mode": "safe", "flatten": false, "reason": "why"}'
MODES = tuple(str(mode) for mode in TradingMode)
MAX_REASON = 500


def parse_trading_mode(body: bytes) -> tuple[TradingMode, bool, str | None]:
    """``{"mode": ..., "flatten": bool, "reason": str}`` -> (mode, flatten, reason); only ``mode`` is required."""
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError as error:
        raise BadRequest(f"body: not JSON ({error}); {TRADING_MODE_EXAMPLE}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"body: expected a JSON object with mode; {TRADING_MODE_EXAMPLE}")
    unknown = sorted(set(data) - {"mode", "flatten", "reason"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field; /trading-mode takes mode, flatten and reason")
    mode = data.get("mode")
    if mode not in MODES:
        raise BadRequest(f"mode: must be one of {', '.join(MODES)}, got {mode!r}; {TRADING_MODE_EXAMPLE}")
    flatten = data.get("flatten", False)
    if not isinstance(flatten, bool):
        raise BadRequest(f"flatten: must be true or false, got {flatten!r}")
    if flatten and mode != TradingMode.HALTED:
        raise BadRequest(f"flatten: only a halt flattens; send flatten: true with mode halted, not {mode}")
    reason = data.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise BadRequest(f"reason: must be a string, got {reason!r}")
    if reason is not None and len(reason) > MAX_REASON:
        raise BadRequest(f"reason: at most {MAX_REASON} characters, got {len(reason)}")
    return TradingMode(mode), flatten, (reason.strip() or None) if reason is not None else None


def parse_headroom_body(body: bytes) -> Headroom:
    """The ``POST /headroom`` body (``risk.headroom.parse_headroom``); BadRequest naming the field."""
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError as error:
        raise BadRequest(f"body: not JSON ({error})") from None
    try:
        return parse_headroom(data)
    except ValueError as error:
        raise BadRequest(str(error)) from None


def parse_since(query: str) -> int:
    values = parse_qs(query).get("since")
    if not values:
        return 0
    try:
        since = int(values[-1])
    except ValueError:
        raise BadRequest(
            f"since: {values[-1]!r} is not a whole number; use /performance?since=<ms UTC>, e.g. the lastCandleTs "
            "of the previous answer"
        ) from None
    if not 0 <= since <= MAX_SINCE:
        raise BadRequest(f"since: must be between 0 and {MAX_SINCE} (ms UTC), got {since}")
    return since


def parse_limit(query: str) -> int:
    values = parse_qs(query).get("limit")
    if not values:
        return 50
    try:
        limit = int(values[-1])
    except ValueError:
        raise BadRequest(f"limit: {values[-1]!r} is not a whole number; use /orders?limit=50") from None
    if not 1 <= limit <= MAX_ORDERS:
        raise BadRequest(f"limit: must be between 1 and {MAX_ORDERS}, got {limit}")
    return limit


def make_handler(
    control: RuntimeControl, registry: CollectorRegistry, access: ControlAccess
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "slsbot-runtime"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

        def do_GET(self) -> None:
            routes: dict[str, Callable[[str, bytes], None]] = {
                "/healthz": self._healthz,
                "/readyz": self._readyz,
                "/metrics": self._metrics,
                "/status": self._status,
                "/orders": self._orders,
                "/performance": lambda q, _b: self._json(200, control.performance(parse_since(q))),
                "/activity": lambda q, _b: self._json(200, control.activity(parse_limit(q))),
            }
            self._dispatch(routes, b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            routes: dict[str, Callable[[str, bytes], None]] = {
                "/pause": lambda _q, _b: self._json(200, {"paused": control.set_paused(True)}),
                "/resume": lambda _q, _b: self._json(200, {"paused": control.set_paused(False)}),
                "/shutdown": self._shutdown,
                "/allocation": lambda _q, b: self._json(200, control.set_allocation(parse_allocation(b))),
                "/trading-mode": self._trading_mode,
                "/headroom": lambda _q, b: self._json(200, control.set_headroom(parse_headroom_body(b))),
            }
            self._dispatch(routes, body)

        def _dispatch(self, routes: dict[str, Callable[[str, bytes], None]], body: bytes) -> None:
            url = urlsplit(self.path)
            path = url.path.rstrip("/") or "/"
            route = routes.get(path)
            if path not in OPEN_PATHS:
                refusal = access.refusal(self.headers.get("Authorization"))
                if refusal is not None:
                    self._json(refusal[0], {"error": refusal[1]}, www_authenticate=refusal[0] == 401)
                    return
            try:
                if route is None:
                    self._json(404, {"error": f"no endpoint {self.command} {url.path}"})
                else:
                    route(url.query, body)
            except BadRequest as error:
                self._json(400, {"error": str(error)})
            except SlsbotRuntimeError as error:
                self._json(503, {"error": str(error)})

        def _healthz(self, _query: str, _body: bytes) -> None:
            healthy, reason = control.health()
            self._json(200 if healthy else 503, {"healthy": healthy, "reason": reason})

        def _readyz(self, _query: str, _body: bytes) -> None:
            ready, phase = control.readiness()
            self._json(200 if ready else 503, {"ready": ready, "phase": phase})

        def _metrics(self, _query: str, _body: bytes) -> None:
            self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)

        def _status(self, _query: str, _body: bytes) -> None:
            self._json(200, control.status_json())

        def _orders(self, query: str, _body: bytes) -> None:
            limit = parse_limit(query)
            self._json(200, [order_json(order) for order in control.recent_orders(limit)])

        def _shutdown(self, _query: str, body: bytes) -> None:
            cancel_orders, flatten = parse_shutdown(body)
            control.request_shutdown(cancel_orders=cancel_orders, flatten=flatten)
            self._json(202, {"accepted": True, "cancelOrders": cancel_orders, "flatten": flatten})

        def _trading_mode(self, _query: str, body: bytes) -> None:
            mode, flatten, reason = parse_trading_mode(body)
            self._json(200, control.set_trading_mode(mode, flatten=flatten, reason=reason))

        def _json(self, code: int, body: Any, *, www_authenticate: bool = False) -> None:
            self._send(code, json.dumps(body).encode(), "application/json", www_authenticate=www_authenticate)

        def _send(self, code: int, payload: bytes, content_type: str, *, www_authenticate: bool = False) -> None:
            self.send_response(code)
            if www_authenticate:
                self.send_header("WWW-Authenticate", 'Bearer realm="slsbot-runtime"')
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


class RuntimeServer:
    """The HTTP server on its own daemon thread."""

    def __init__(
        self,
        control: RuntimeControl,
        registry: CollectorRegistry,
        *,
        host: str,
        port: int,
        access: ControlAccess,
    ) -> None:
        self._httpd = ThreadingHTTPServer((host, port), make_handler(control, registry, access))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="slsbot-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
