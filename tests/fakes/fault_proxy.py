"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a ``FakeExchangeServer``: point the code under test at
``proxy.url`` instead of ``fake.url`` and a seeded share of its requests go wrong the ways a real exchange's do.

Kinds of fault (``FaultKind``), each drawn for a request with probability ``rate * weight / sum(weights)``:

* ``timeout``: the request is held past the client's timeout and never reaches the exchange;
* ``timeout_after``: the request reaches the exchange (an order is taken), its answer is held past the timeout;
* ``http_5xx``: 500, 502 or 503 without reaching the exchange;
* ``rate_limit``: 429 with ``Retry-After`` and the venue's own rate-limit body, without reaching the exchange;
* ``drop_before``: the connection is closed mid-request, before the exchange sees it;
* ``drop_after``: the request reaches the exchange, then the connection is closed before the answer: the
  exchange took the order and the client saw an error (the case that duplicates orders when handled badly).

And feed stalls, switched on and off by the test or the chaos run (``stall_feed`` / ``end_stall``): while a stall
lasts, every klines request is answered with the last answer from before the stall (``stale``) or held until the
stall ends or the client gave up (``held``); counted per request as ``feed_stale`` / ``feed_held``.

The draw is ``random.Random(seed)`` taken once per request in arrival order, so one seed gives one schedule of
faults over the sequence of requests. ``injected`` counts what was injected, per kind; ``faults`` lists each one.
Test helper only; not shipped.

    with FakeExchangeServer(clock) as fake, FaultProxy(fake.url, FaultPlan(rate=0.2, seed=7)) as proxy:
        exchange = open_ccxt_exchange("binance", creds, testnet=False, endpoint=proxy.url)
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["KLINES_PATHS", "TIME_PATHS", "FaultKind", "FaultPlan", "FaultProxy", "InjectedFault", "StallMode"]

#: ccxt's default client timeout (``timeout_ms`` 10 000 in the runtime); a held request outlasts it.
CLIENT_TIMEOUT_S = 10.0
KLINES_PATHS = ("/api/v3/klines", "/v5/market/kline")
TIME_PATHS = ("/api/v3/time", "/v5/market/time")


class FaultKind(StrEnum):
    TIMEOUT = "timeout"
    TIMEOUT_AFTER = "timeout_after"
    HTTP_5XX = "http_5xx"
    RATE_LIMIT = "rate_limit"
    DROP_BEFORE = "drop_before"
    DROP_AFTER = "drop_after"
    FEED_STALE = "feed_stale"
    FEED_HELD = "feed_held"

    @property
    def reaches_exchange(self) -> bool:
        return self in (FaultKind.TIMEOUT_AFTER, FaultKind.DROP_AFTER)


class StallMode(StrEnum):
    STALE = "stale"  # klines answered with the last answer from before the stall
    HELD = "held"  # klines held until the stall ends (or the client gave up)


#: Every random kind once; the feed kinds come from stalls, not from the draw.
DEFAULT_WEIGHTS: Mapping[FaultKind, float] = {
    FaultKind.TIMEOUT: 1.0,
    FaultKind.TIMEOUT_AFTER: 1.0,
    FaultKind.HTTP_5XX: 1.0,
    FaultKind.RATE_LIMIT: 1.0,
    FaultKind.DROP_BEFORE: 1.0,
    FaultKind.DROP_AFTER: 1.0,
}


@dataclass(frozen=True)
class FaultPlan:
    """What to inject. ``rate``: the share of eligible requests that fail (0..1). ``weights``: how the failures
    split between kinds. ``paths``: path prefixes eligible for faults (None: every request); ``exempt``: prefixes
    never faulted (a test's clock sync, which asks ten times a second only because the test's clock jumps).
    ``hold_s``: how long a timeout holds a request (past the client's timeout). ``retry_after_s``: the 429's
    ``Retry-After``."""

    rate: float = 0.2
    seed: int = 0
    weights: Mapping[FaultKind, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    paths: tuple[str, ...] | None = None
    exempt: tuple[str, ...] = ()
    hold_s: float = CLIENT_TIMEOUT_S + 1.0
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate: must be within [0, 1], got {self.rate!r}")
        unknown = [k for k in self.weights if k not in DEFAULT_WEIGHTS]
        if unknown:
            raise ValueError(f"weights: {unknown} cannot be drawn; stalls come from stall_feed()")
        if self.rate > 0 and not any(w > 0 for w in self.weights.values()):
            raise ValueError("weights: at least one kind needs a positive weight when rate > 0")


@dataclass(frozen=True)
class InjectedFault:
    seq: int  # the request's number, from 0, in arrival order
    method: str
    path: str
    kind: FaultKind
    client_order_id: str | None  # for an order creation that was faulted


@dataclass
class _Queued:
    kind: FaultKind
    path: str | None
    method: str | None
    times: int


class FaultProxy:
    """Start with ``start()`` or ``with``; ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, upstream: str, plan: FaultPlan | None = None) -> None:
        target = urlsplit(upstream)
        if target.scheme != "http" or not target.hostname or not target.port:
            raise ValueError(f"upstream: need http://host:port, got {upstream!r}")
        self.upstream = (target.hostname, target.port)
        self.plan = plan or FaultPlan()
        self.faults: list[InjectedFault] = []
        self.requests = 0
        self.exempt_requests = 0  # requests no fault could be drawn for (``paths``, ``exempt``)
        self._rng = random.Random(self.plan.seed)
        self._queued: list[_Queued] = []
        self._lock = threading.Lock()
        self._stall: StallMode | None = None
        self._stall_markets: frozenset[str] | None = None
        self._stall_ended = threading.Event()
        self._stall_ended.set()
        self._last_klines: dict[tuple[str, str], tuple[int, str, bytes]] = {}
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life ---------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start the proxy first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        handler = type("FaultProxyHandler", (_Handler,), {"proxy": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._stall_ended.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- control ------------------------------------------------------------------------------------------------

    def set_rate(self, rate: float) -> None:
        """Change the fault rate from now on (the draw sequence of the seed goes on unchanged)."""
        with self._lock:
            self.plan = replace(self.plan, rate=rate)

    def set_paths(self, paths: tuple[str, ...] | None) -> None:
        """Change which path prefixes faults are drawn for from now on (None: every request)."""
        with self._lock:
            self.plan = replace(self.plan, paths=paths)

    def inject_next(
        self, kind: FaultKind | str, *, path: str | None = None, method: str | None = None, times: int = 1
    ) -> None:
        """Inject ``kind`` into the next ``times`` requests whose path starts with ``path`` (and whose method is
        ``method``), whatever the draw says: for tests of one fault at one place."""
        kind = FaultKind(kind)
        if kind not in DEFAULT_WEIGHTS:
            raise ValueError(f"kind: {kind} comes from stall_feed(), not from inject_next")
        with self._lock:
            self._queued.append(_Queued(kind, path, method, times))

    def stall_feed(self, mode: StallMode | str = StallMode.STALE, markets: Iterable[str] | None = None) -> None:
        """From now until ``end_stall``, klines (of these exchange market ids, e.g. ``BTCUSDT``; None: all) are
        answered stale or held."""
        with self._lock:
            self._stall = StallMode(mode)
            self._stall_markets = None if markets is None else frozenset(markets)
            self._stall_ended.clear()

    def end_stall(self) -> None:
        with self._lock:
            self._stall = None
            self._stall_markets = None
            self._stall_ended.set()

    @property
    def stalled(self) -> StallMode | None:
        return self._stall

    def wait_stall_end(self, timeout: float) -> bool:
        """Hold a request until the stall ends (True) or ``timeout`` passes (False)."""
        return self._stall_ended.wait(timeout) and self._stall is None

    @property
    def injected(self) -> dict[str, int]:
        """Faults injected so far, per kind (every kind present, zero included)."""
        counts = Counter(str(f.kind) for f in list(self.faults))
        return {str(kind): counts.get(str(kind), 0) for kind in FaultKind}

    def hold(self, seconds: float) -> None:
        """Hold a request without holding up ``stop``."""
        self._stopping.wait(seconds)

    # --- per request --------------------------------------------------------------------------------------------

    def decide(self, method: str, path: str, params: Mapping[str, str]) -> tuple[int, FaultKind | None]:
        """The request's number and the fault to inject into it (None: pass it through). One draw per request."""
        with self._lock:
            seq = self.requests
            self.requests += 1
            if self._stalls(path, params.get("symbol", "")):
                kind = FaultKind.FEED_STALE if self._stall is StallMode.STALE else FaultKind.FEED_HELD
            else:
                kind = self._take_queued(method, path) or self._draw(path)
            if kind is not None:
                cid = (params.get("newClientOrderId") or params.get("orderLinkId")) if method == "POST" else None
                self.faults.append(InjectedFault(seq, method, path, kind, cid))
            return seq, kind

    def _stalls(self, path: str, market: str) -> bool:
        """A stall is on for this klines request (under the lock)."""
        if self._stall is None or not path.startswith(KLINES_PATHS):
            return False
        return self._stall_markets is None or market in self._stall_markets

    def _take_queued(self, method: str, path: str) -> FaultKind | None:
        for queued in self._queued:
            if (queued.path is None or path.startswith(queued.path)) and queued.method in (None, method):
                queued.times -= 1
                if queued.times <= 0:
                    self._queued.remove(queued)
                return queued.kind
        return None

    def _draw(self, path: str) -> FaultKind | None:
        plan = self.plan
        roll = self._rng.random()  # drawn for every request, so the schedule depends on the sequence only
        pick = self._rng.random()
        if (plan.paths is not None and not path.startswith(plan.paths)) or path.startswith(plan.exempt):
            self.exempt_requests += 1
            return None
        if roll >= plan.rate:
            return None
        kinds = [k for k, w in plan.weights.items() if w > 0]
        total = sum(plan.weights[k] for k in kinds)
        cumulative = 0.0
        for kind in kinds:
            cumulative += plan.weights[kind] / total
            if pick < cumulative:
                return kind
        return kinds[-1]

    def remember_klines(self, key: tuple[str, str], answer: tuple[int, str, bytes]) -> None:
        with self._lock:
            if answer[0] == 200 and not self._stalls(*key):
                self._last_klines[key] = answer

    def last_klines(self, key: tuple[str, str]) -> tuple[int, str, bytes] | None:
        with self._lock:
            return self._last_klines.get(key)

    def forward(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str, bytes]:
        """The exchange's answer to the request: status, content type, body."""
        connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            connection.request(method, target, body=body or None, headers=dict(headers))
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type", "application/json"), response.read()
        finally:
            connection.close()


def rate_limit_body(path: str) -> bytes:
    """The venue's own answer to too many requests."""
    if path.startswith("/v5/"):
        body: dict[str, Any] = {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {}}
    else:
        body = {"code": -1003, "msg": "Too many requests; current limit is 6000 request weight."}
    return json.dumps(body).encode()


_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"}


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._relay("GET")

    def do_POST(self) -> None:
        self._relay("POST")

    def do_DELETE(self) -> None:
        self._relay("DELETE")

    def do_PUT(self) -> None:
        self._relay("PUT")

    def _relay(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        text = body.decode(errors="replace")
        if text.startswith("{"):
            params.update({k: str(v) for k, v in json.loads(text).items()})
        elif text:
            params.update(parse_qsl(text, keep_blank_values=True))
        seq, kind = self.proxy.decide(method, url.path, params)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        klines_key = (url.path, params.get("symbol", ""))
        plan = self.proxy.plan

        if kind is FaultKind.TIMEOUT:
            self.proxy.hold(plan.hold_s)
            return self._drop()
        if kind is FaultKind.DROP_BEFORE:
            return self._drop()
        if kind is FaultKind.HTTP_5XX:
            status = random.Random(seq).choice((500, 502, 503))  # which 5xx: fixed by the request's number
            return self._send(status, "text/plain", http.client.responses[status].encode())
        if kind is FaultKind.RATE_LIMIT:
            return self._send(429, "application/json", rate_limit_body(url.path), {"Retry-After": plan.retry_after_s})
        if kind is FaultKind.FEED_STALE:
            cached = self.proxy.last_klines(klines_key)
            if cached is not None:
                return self._send(*cached)
            kind = FaultKind.FEED_HELD  # nothing from before the stall to repeat: hold instead
        if kind is FaultKind.FEED_HELD and not self.proxy.wait_stall_end(plan.hold_s):
            return self._drop()  # the client gave up long ago

        try:
            answer = self.proxy.forward(method, self.path, headers, body)
        except OSError:
            return self._drop()  # the exchange is gone: so is the answer
        if url.path.startswith(KLINES_PATHS):
            self.proxy.remember_klines(klines_key, answer)
        if kind is FaultKind.DROP_AFTER:
            return self._drop()
        if kind is FaultKind.TIMEOUT_AFTER:
            self.proxy.hold(plan.hold_s)
            return self._drop()
        self._send(*answer)

    def _send(self, status: int, content_type: str, data: bytes, extra: Mapping[str, Any] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, str(value))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting

    def _drop(self) -> None:
        """Close the connection at once, without an answer: a reset, as a dying load balancer does."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
