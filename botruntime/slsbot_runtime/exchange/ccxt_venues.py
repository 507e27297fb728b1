"""The exchanges slsbot trades on through ccxt, each a ``CcxtExchange`` subclass that states what it supports,
and ``open_ccxt_exchange`` which builds one from an account's exchange id and mode."""

from __future__ import annotations

import random
import time
from typing import Any, ClassVar

import ccxt

from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.exchange.ccxt_convert import order_from_ccxt
from slsbot_runtime.exchange.ccxt_exchange import CcxtExchange, build_ccxt_client
from slsbot_runtime.exchange.credentials import ExchangeCredentials
from slsbot_runtime.exchange.retry import RetryPolicy, Sleep

DAY_MS = 86_400_000
MAX_EMPTY_DAYS = 60  # days searched for the first trade after ``since``; older windows are skipped
TRADES_PAGE = 1000
#: How long (ms) after its timestamp the exchange still accepts a signed request. ccxt signs with the local clock
#: shifted by the offset it measured against the exchange's time (``adjustForTimeDifference``, read when the
#: markets load), so this only has to cover the network and the drift since; both venues cap it at 60 s.
RECV_WINDOW_MS = 10_000
#: ccxt options every venue gets: without the time offset a host clock a second ahead of the exchange's gets
#: every private call refused (Binance -1021 "Timestamp for this request is outside of the recvWindow", Bybit
#: 10002 "invalid request, please check your server timestamp or recv_window param").
SIGNED_REQUEST_OPTIONS: dict[str, Any] = {"adjustForTimeDifference": True, "recvWindow": RECV_WINDOW_MS}


class BinanceExchange(CcxtExchange):
    """Binance spot. The client order id travels as ``newClientOrderId``; Binance refuses a second order with
    the id of an order that is still open ("Duplicate order sent.", code -2010) but accepts one whose
    namesake is filled, which is why ``place_order`` always looks first."""

    ccxt_id = "binance"
    features: ClassVar[dict[str, bool]] = {
        "fetch_order_by_client_id": True,
        "cancel_by_client_id": True,
        "fetch_my_trades": True,
        "watch_ohlcv": True,
    }
    ccxt_options: ClassVar[dict[str, Any]] = {
        **SIGNED_REQUEST_OPTIONS,
        "fetchMarkets": {"types": ["spot"]},
        "fetchMargins": False,  # margin pair lists need extra permissions and are not used
        "fetchCurrencies": False,  # a private sapi call; currencies are derived from the markets instead
        "warnOnFetchOpenOrdersWithoutSymbol": False,
        "defaultType": "spot",
    }
    duplicate_order_markers = ("Duplicate order sent",)
    create_returns_order_state = True

    def _fetch_trades(self, symbol: str, since_ts: int) -> list[dict[str, Any]]:
        """``myTrades`` answers at most a 24-hour window from ``startTime``: find the first window with
        trades (searching back no further than ``MAX_EMPTY_DAYS`` before the exchange's now), then page on by
        trade id, which has no window. ``since_ts`` 0 means every trade of the account, from the first id."""
        if since_ts <= 0:
            page = self._trades_page(symbol, {"fromId": 0})
        else:
            page = self._trades_page(symbol, {"startTime": since_ts})
            if not page:
                now = self._call("fetch_time", self._client.fetch_time)
                start = max(since_ts, now - MAX_EMPTY_DAYS * DAY_MS)
                while not page and start < now:
                    page = self._trades_page(symbol, {"startTime": start})
                    start += DAY_MS
        trades = list(page)
        while len(page) == TRADES_PAGE:
            page = self._trades_page(symbol, {"fromId": int(page[-1]["id"]) + 1})
            trades.extend(page)
        return trades

    def _trades_page(self, symbol: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._call(
            "fetch_my_trades", lambda: self._client.fetch_my_trades(symbol, None, TRADES_PAGE, dict(params))
        )

    def _learn_client_ids(self, order_ids: set[str], symbol: str) -> None:
        """``allOrders`` from the oldest unknown order id returns up to 1,000 orders with their client ids."""
        missing = sorted(order_ids, key=int)
        while missing:
            first = missing[0]
            raws = self._call(
                "fetch_orders",
                lambda first=first: self._client.fetch_orders(symbol, None, TRADES_PAGE, {"orderId": first}),
            )
            for raw in raws:
                if raw.get("clientOrderId"):
                    self._remember(order_from_ccxt(raw))
            still = [m for m in missing if m not in self._client_ids]
            if not raws or still == missing:
                return  # the rest are looked up one by one
            missing = still


class BybitExchange(CcxtExchange):
    """Bybit spot on a unified trading account. The client order id travels as ``orderLinkId``; the create
    call answers with the ids only, so the order is fetched for its state. An order is found by its client
    id among the open orders first, then in the order history."""

    ccxt_id = "bybit"
    features: ClassVar[dict[str, bool]] = {
        "fetch_order_by_client_id": True,
        "cancel_by_client_id": True,
        "fetch_my_trades": True,
        "watch_ohlcv": True,
    }
    ccxt_options: ClassVar[dict[str, Any]] = {
        **SIGNED_REQUEST_OPTIONS,  # Bybit sends recvWindow as X-BAPI-RECV-WINDOW
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "defaultType": "spot",
        # Every Bybit account opened since 2023 is unified; saying so spares two permission-gated calls.
        "enableUnifiedAccount": True,
        "enableUnifiedMargin": False,
    }
    duplicate_order_markers = ("110072", "OrderLinkedID is duplicate")
    create_returns_order_state = False
    trade_client_id_fields = ("orderLinkId",)

    def _lookup(self, client_order_id: str, symbol: str) -> dict[str, Any] | None:
        by_link_id = {"orderLinkId": client_order_id}
        for fetch in (self._client.fetch_open_orders, self._client.fetch_canceled_and_closed_orders):
            try:
                found = fetch(symbol, None, None, dict(by_link_id))
            except ccxt.OrderNotFound:
                continue
            matching = [o for o in found if o.get("clientOrderId") == client_order_id]
            if matching:
                return matching[0]
        return None


#: Exchange ids (as in ``TradingAccount.spec.exchange``) that slsbot can trade on.
CCXT_EXCHANGES: dict[str, type[CcxtExchange]] = {cls.ccxt_id: cls for cls in (BinanceExchange, BybitExchange)}


def open_ccxt_exchange(
    exchange_id: str,
    credentials: ExchangeCredentials | None,
    *,
    testnet: bool,
    endpoint: str | None = None,
    timeout_ms: int = 10_000,
    rate_limit: bool = True,
    retry: RetryPolicy | None = None,
    sleep: Sleep = time.sleep,
    rng: random.Random | None = None,
) -> CcxtExchange:
    """The adapter for ``exchange_id`` (``binance``, ``bybit``); ``testnet`` switches ccxt to the exchange's
    sandbox. ``endpoint`` sends every REST call to another host (a local fake exchange in tests)."""
    exchange_class = CCXT_EXCHANGES.get(exchange_id)
    if exchange_class is None:
        raise ConfigError(
            f"account.exchange: {exchange_id!r} is not supported; use one of {', '.join(sorted(CCXT_EXCHANGES))}"
        )
    if timeout_ms <= 0:
        raise ConfigError(f"timeout_ms: must be positive, got {timeout_ms}")
    client = build_ccxt_client(
        exchange_class, credentials, testnet=testnet, endpoint=endpoint, timeout_ms=timeout_ms, rate_limit=rate_limit
    )
    return exchange_class(client, secrets=credentials.values if credentials else (), retry=retry, sleep=sleep, rng=rng)
