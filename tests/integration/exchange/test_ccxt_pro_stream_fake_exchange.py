"""The live feed's ccxt.pro path end to end: ccxt.pro's binance client subscribes to a kline stream on a local
websocket server (Binance's message shapes), markets come from the fake REST exchange, and the feed yields a
streamed candle only once the next one has opened."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest
from aiohttp import WSMsgType, web
from tests.fakes.fake_exchange_server import ManualClock, utc_ms

from slsbot_runtime.data.live import LiveCandleFeed, LiveFeedSettings
from slsbot_runtime.data.live_ccxt_stream import CcxtProStream, ccxt_pro_client_class
from slsbot_runtime.exchange.ccxt_exchange import build_ccxt_client
from slsbot_runtime.exchange.ccxt_venues import BinanceExchange

pytestmark = pytest.mark.integration

HOUR = 3_600_000


def kline(ts: int, close: float, *, final: bool) -> dict:
    return {
        "e": "kline",
        "E": ts,
        "s": "BTCUSDT",
        "k": {
            "t": ts,
            "T": ts + HOUR - 1,
            "s": "BTCUSDT",
            "i": "1h",
            "f": 1,
            "L": 2,
            "o": "100.0",
            "c": str(close),
            "h": "110.0",
            "l": "90.0",
            "v": "12.5",
            "n": 2,
            "x": final,
            "q": "1250",
            "V": "6",
            "Q": "600",
            "B": "0",
        },
    }


class FakeKlineStream:
    """A Binance-shaped websocket (``/stream/ws/<n>``) in its own thread. After a client subscribes it plays
    ``script``: each entry sets the shared clock, then sends one kline event."""

    def __init__(self, clock: ManualClock, script: list[tuple[int, dict]]) -> None:
        self.clock, self.script = clock, script
        self.subscriptions: list[list[str]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/stream/ws/{n}", self._socket)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            body = json.loads(message.data)
            if body.get("method") == "SUBSCRIBE":
                self.subscriptions.append(body["params"])
                await socket.send_json({"result": None, "id": body["id"]})
                for clock_ms, event in self.script:
                    await asyncio.sleep(0.05)
                    self.clock.set(clock_ms)
                    await socket.send_json(event)
        return socket

    def __enter__(self) -> FakeKlineStream:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def pro_feed(fake, clock) -> Iterator[tuple[LiveCandleFeed, FakeKlineStream]]:
    pro_class = ccxt_pro_client_class("binance")
    if pro_class is None:
        pytest.skip("ccxt.pro is not importable")
    five, six = utc_ms("2025-01-01T05:00"), utc_ms("2025-01-01T06:00")
    script = [
        (utc_ms("2025-01-01T05:40"), kline(five, 101.0, final=False)),
        (six - 1, kline(five, 105.0, final=False)),
        (six + 200, kline(five, 106.0, final=True)),  # the final update comes just after the close
        (six + 600, kline(six, 106.5, final=False)),  # the next candle opens: 05:00 is done
    ]
    with FakeKlineStream(clock, script) as ws:

        def make_client(loop):
            client = build_ccxt_client(
                BinanceExchange,
                None,
                testnet=False,
                endpoint=fake.url,
                client_class=pro_class,
                extra_config={"asyncio_loop": loop},
            )
            client.urls["api"]["ws"]["spot"] = f"ws://127.0.0.1:{ws.port}/stream/ws"
            return client

        rest = build_ccxt_client(BinanceExchange, None, testnet=False, endpoint=fake.url, rate_limit=False)
        stream = CcxtProStream(make_client, ["BTC/USDT"], "1h")
        settings = LiveFeedSettings(poll_interval_s=0.5, settle_s=5.0)
        feed = LiveCandleFeed(
            rest, ["BTC/USDT"], "1h", stream=stream, settings=settings, clock=clock, exchange_id="binance"
        )
        yield feed, ws
        feed.close()


def test_the_streamed_candle_is_yielded_final_and_once_the_next_one_opened(pro_feed, fake, clock):
    feed, ws = pro_feed
    candles = iter(feed)

    first = next(candles)  # over REST: the newest closed candle at 05:30
    assert first.ts == utc_ms("2025-01-01T04:00")
    klines_calls = len(fake.calls("GET", "/api/v3/klines"))

    streamed = next(candles)

    assert ws.subscriptions == [["btcusdt@kline_1h"]]
    assert streamed.ts == utc_ms("2025-01-01T05:00")
    assert streamed.close == 106.0  # the final update, not the one seen at the close
    assert clock.now_ms() >= utc_ms("2025-01-01T06:00") + 600
    assert len(fake.calls("GET", "/api/v3/klines")) == klines_calls  # nothing polled meanwhile
