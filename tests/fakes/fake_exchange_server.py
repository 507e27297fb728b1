"""A fake exchange on a real HTTP server (127.0.0.1, a free port) that answers in Binance's and Bybit's own
REST shapes for the calls ccxt makes: markets, server time, klines (real recorded candles from
``data/market``), order create / query / cancel, open orders, account trades and balances.

It checks the API key and the request signature as the real venues do (against every key the account holds:
``add_key`` and ``revoke_key`` stand for a key created and deleted in the venue's API management, so old and new
are both valid during a rotation; ``requests`` records which key signed each call), keeps orders, fills and balances in
a ``FakeAccount``, rejects a duplicate client order id the way each venue does, and can be told to fail
the next requests (``fail_next``) with a 5xx, a timeout, a rate limit, an invalid key or an insufficient
balance; ``account.fill_plan`` makes orders fill late or in parts (``fault_proxy`` injects faults at a rate).
Paths under ``/api/`` are Binance, under ``/v5/`` Bybit. Test helper only; not shipped.

    with FakeExchangeServer(ManualClock(utc_ms("2025-01-01T05:30"))) as fake:
        exchange = open_ccxt_exchange("binance", creds, testnet=False, endpoint=fake.url)
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes import test_secrets
from tests.fakes.fake_exchange_binance import BinanceApi
from tests.fakes.fake_exchange_bybit import BybitApi
from tests.fakes.fake_exchange_market import FakeAccount, Fault, FillPlan, ManualClock, RecordedKlines, utc_ms

__all__ = [
    "VENUE_PATHS",
    "FakeAccount",
    "FakeExchangeServer",
    "Fault",
    "FillPlan",
    "ManualClock",
    "RecordedKlines",
    "utc_ms",
]

FAKE_API_KEY = test_secrets.FAKE_API_KEY
FAKE_SECRET = test_secrets.FAKE_SECRET


@dataclass(frozen=True)
class VenuePaths:
    """Where each kind of call lands on the fake, per exchange (for asserting on ``requests``)."""

    create: str
    query: str  # order lookups by client id start with this
    klines: str


VENUE_PATHS = {
    "binance": VenuePaths(create="/api/v3/order", query="/api/v3/order", klines="/api/v3/klines"),
    "bybit": VenuePaths(create="/v5/order/create", query="/v5/order/", klines="/v5/market/kline"),
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    api_key: str | None = None  # the key a private call was signed with


class FakeExchangeServer:
    """Start with ``start()`` or ``with``; ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(
        self,
        clock: ManualClock,
        *,
        api_key: str = FAKE_API_KEY,
        secret: str = FAKE_SECRET,
        klines: RecordedKlines | None = None,
    ) -> None:
        self.clock = clock
        self.account = FakeAccount(klines=klines or RecordedKlines(), clock=clock)
        self.binance = BinanceApi(self.account, api_key, secret)
        self.bybit = BybitApi(self.account, api_key, secret)
        self.keys: dict[str, str] = {api_key: secret}  # every key the account accepts, shared by both venues
        self.binance.keys = self.bybit.keys = self.keys
        self.requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeExchangeServer:
        handler = type("FakeExchangeHandler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="fake-exchange", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeExchangeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(
        self, kind: str, times: int = 1, *, path: str | None = None, method: str | None = None, delay_s: float = 2.0
    ) -> None:
        """Fail the next ``times`` requests whose path starts with ``path`` (and whose method is ``method``)."""
        with self.account.lock:
            self.account.faults.append(Fault(kind, times, path, method, delay_s))

    def add_key(self, api_key: str, secret: str) -> None:
        """A new key for the same account (both venues), valid alongside the others."""
        with self.account.lock:
            self.keys[api_key] = secret

    def revoke_key(self, api_key: str) -> None:
        """The key is deleted: every call signed with it is refused as an invalid key from now on."""
        with self.account.lock:
            self.keys.pop(api_key, None)

    def calls(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in list(self.requests) if r.method == method and r.path == path]

    def wait(self, seconds: float) -> None:
        """Hold a request (a simulated timeout) without holding up ``stop``."""
        self._stopping.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeExchangeServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        is_json = body.startswith("{")
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if body and not is_json:
            params.update(parse_qsl(body, keep_blank_values=True))
        elif is_json:
            params.update({k: str(v) for k, v in json.loads(body).items()})
        api_key = self.headers.get("X-MBX-APIKEY") or self.headers.get("X-BAPI-API-KEY")
        self.fake.requests.append(RecordedRequest(method, url.path, params, api_key))
        venue = self.fake.bybit if url.path.startswith("/v5/") else self.fake.binance
        fault = self.fake.account.take_fault(method, url.path)
        if fault is not None and fault.kind == "timeout":
            self.fake.wait(fault.delay_s)
            status, payload = 504, "Gateway Timeout"
        elif fault is not None and fault.kind != "timeout_after_processing":
            status, payload = venue.fault(fault.kind)
        else:
            signed = (body or url.query) if venue is self.fake.bybit else (url.query if method != "POST" else body)
            status, payload = venue.handle(method, url.path, params, self.headers, signed)
            if fault is not None:
                self.fake.wait(fault.delay_s)
        self._send(status, payload)

    def _send(self, status: int, payload: Any) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        data = text.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting, as a timed-out client does
