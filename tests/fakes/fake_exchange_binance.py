"""Binance spot REST (api/v3) as far as ccxt's ``binance`` class calls it, over the fake account.
Used by ``fake_exchange_server``; test helper only."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.fakes.fake_exchange_market import DAY_MS, HOUR_MS, FakeAccount, FakeOrder, InsufficientBalance

Reply = tuple[int, Any]  # HTTP status, JSON body (a str is sent as text)


def _num(value: float) -> str:
    return f"{value:.8f}"


class BinanceApi:
    """Binance spot REST (api/v3) as far as ccxt's binance class uses it."""

    def __init__(self, account: FakeAccount, api_key: str, secret: str) -> None:
        self.account, self.api_key, self.secret = account, api_key, secret
        #: Every key the account accepts, key -> secret (the server shares one dict between the venues).
        self.keys: dict[str, str] = {api_key: secret}

    def fault(self, kind: str) -> Reply:
        return {
            "rate_limit": (429, {"code": -1003, "msg": "Too many requests; current limit is 6000 request weight."}),
            "invalid_key": (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}),
            "insufficient_balance": (
                400,
                {"code": -2010, "msg": "Account has insufficient balance for requested action."},
            ),
            # The query endpoint lagging behind order entry: it does not know an order that exists.
            "order_unknown": (400, {"code": -2013, "msg": "Order does not exist."}),
        }.get(kind, (503, "Service Unavailable"))

    def handle(self, method: str, path: str, params: dict[str, str], headers: Any, signed: str) -> Reply:
        route = path.removeprefix("/api/v3/")
        public = {
            ("GET", "time"): self.time,
            ("GET", "ping"): lambda p: (200, {}),
            ("GET", "exchangeInfo"): self.exchange_info,
            ("GET", "klines"): self.klines,
        }
        private = {
            ("POST", "order"): self.create,
            ("GET", "order"): self.query,
            ("DELETE", "order"): self.cancel,
            ("GET", "openOrders"): self.open_orders,
            ("GET", "myTrades"): self.my_trades,
            ("GET", "allOrders"): self.all_orders,
            ("GET", "account"): self.balances,
        }
        if (method, route) in public:
            return public[(method, route)](params)
        if (method, route) not in private:
            return 404, {"code": -1000, "msg": f"fake binance has no {method} {path}"}
        secret = self.keys.get(headers.get("X-MBX-APIKEY") or "")
        if secret is None:
            return self.fault("invalid_key")
        payload, _, signature = signed.rpartition("&signature=")
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            return 400, {"code": -1022, "msg": "Signature for this request is not valid."}
        if "timestamp" not in params:
            return 400, {"code": -1102, "msg": "Mandatory parameter 'timestamp' was not sent."}
        return private[(method, route)](params)

    def time(self, params: dict[str, str]) -> Reply:
        return 200, {"serverTime": self.account.clock.now_ms()}

    def exchange_info(self, params: dict[str, str]) -> Reply:
        symbols = [
            {
                "symbol": mid,
                "status": "TRADING",
                "baseAsset": mid[:-4],
                "baseAssetPrecision": 8,
                "quoteAsset": mid[-4:],
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True,
                "ocoAllowed": True,
                "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": True,
                "cancelReplaceAllowed": True,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": "0.00000100",
                        "maxPrice": "1000000.00000000",
                        "tickSize": "0.00000100",
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": "0.00001000",
                        "maxQty": "9000000.00000000",
                        "stepSize": "0.00001000",
                    },
                    {
                        "filterType": "NOTIONAL",
                        "minNotional": "5.00000000",
                        "applyMinToMarket": True,
                        "maxNotional": "9000000.00000000",
                        "applyMaxToMarket": False,
                        "avgPriceMins": 5,
                    },
                    {
                        "filterType": "MARKET_LOT_SIZE",
                        "minQty": "0.00000000",
                        "maxQty": "100.00000000",
                        "stepSize": "0.00000000",
                    },
                ],
                "permissions": [],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            }
            for mid in self.account.klines.market_ids
        ]
        return 200, {
            "timezone": "UTC",
            "serverTime": self.account.clock.now_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def klines(self, params: dict[str, str]) -> Reply:
        if params.get("symbol") not in self.account.klines.market_ids:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if params.get("interval") != "1h":
            return 400, {"code": -1120, "msg": "Invalid interval."}
        rows = self.account.klines.candles(
            params["symbol"],
            self.account.clock.now_ms(),
            start_ms=int(params["startTime"]) if "startTime" in params else None,
            end_ms=int(params["endTime"]) if "endTime" in params else None,
            limit=min(int(params.get("limit", 500)), 1000),
        )
        return 200, [
            [
                ts,
                _num(o),
                _num(h),
                _num(lo),
                _num(c),
                _num(v),
                ts + HOUR_MS - 1,
                _num(v * c),
                100,
                _num(v / 2),
                _num(v * c / 2),
                "0",
            ]
            for ts, o, h, lo, c, v in rows
        ]

    def _order(self, order: FakeOrder, *, full: bool = False) -> dict[str, Any]:
        body = {
            "symbol": order.market_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "price": _num(order.price or 0.0),
            "origQty": _num(order.quantity),
            "executedQty": _num(order.filled),
            "cummulativeQuoteQty": _num(order.quote_filled),
            "status": order.status,
            "timeInForce": "GTC",
            "type": order.type,
            "side": order.side,
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingTime": order.created_ms,
        }
        if full:
            body["transactTime"] = order.created_ms
            body["fills"] = [
                {
                    "price": _num(t.price),
                    "qty": _num(t.quantity),
                    "commission": _num(t.fee),
                    "commissionAsset": t.fee_asset,
                    "tradeId": t.trade_id,
                }
                for t in self.account.trades
                if t.order is order
            ]
        else:
            body.update(
                time=order.created_ms,
                updateTime=order.updated_ms,
                isWorking=True,
                stopPrice="0.00000000",
                icebergQty="0.00000000",
                origQuoteOrderQty="0.00000000",
            )
        return body

    def create(self, params: dict[str, str]) -> Reply:
        market_id = params.get("symbol", "")
        if market_id not in self.account.klines.market_ids:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        quantity = float(params.get("quantity") or 0)
        if quantity <= 0:
            return 400, {"code": -1013, "msg": "Invalid quantity."}
        client_id = params.get("newClientOrderId") or f"fake{len(self.account.orders)}"
        with self.account.lock:
            # Binance: a client order id must be unique among the account's OPEN orders.
            if any(o.is_open for o in self.account.orders_by_client_id(client_id)):
                return 400, {"code": -2010, "msg": "Duplicate order sent."}
            try:
                order = self.account.place(
                    market_id,
                    params["side"],
                    params["type"],
                    quantity,
                    float(params["price"]) if "price" in params else None,
                    client_id,
                )
            except InsufficientBalance:
                return self.fault("insufficient_balance")
            return 200, self._order(order, full=params.get("newOrderRespType", "FULL") == "FULL")

    def _find(self, params: dict[str, str]) -> FakeOrder | None:
        order_id = int(params["orderId"]) if "orderId" in params else None
        return self.account.find(
            params.get("symbol", ""), order_id=order_id, client_order_id=params.get("origClientOrderId")
        )

    def query(self, params: dict[str, str]) -> Reply:
        order = self._find(params)
        return (200, self._order(order)) if order else (400, {"code": -2013, "msg": "Order does not exist."})

    def cancel(self, params: dict[str, str]) -> Reply:
        order = self._find(params)
        if order is None or not order.is_open:
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        self.account.cancel(order)
        body = self._order(order)
        # As Binance does: clientOrderId is the id of the cancel request; the order's own id is origClientOrderId.
        body.update(
            origClientOrderId=order.client_order_id,
            clientOrderId=f"cancel{order.order_id}",
            transactTime=order.updated_ms,
        )
        return 200, body

    def open_orders(self, params: dict[str, str]) -> Reply:
        with self.account.lock:
            self.account.match_resting()
            return 200, [
                self._order(o) for o in self.account.orders if o.is_open and params.get("symbol") in (None, o.market_id)
            ]

    def _window(self, params: dict[str, str], rows: list, key, ts_of) -> list | Reply:
        """Binance's paging rules: ``fromId`` / ``orderId`` (ids >= it), else a window of at most 24 hours
        (``startTime`` alone: the next 24 hours), else the most recent; at most ``limit``, oldest first."""
        limit = min(int(params.get("limit", 500)), 1000)
        id_param = next((p for p in ("fromId", "orderId") if p in params), None)
        if id_param is not None:
            return [r for r in rows if key(r) >= int(params[id_param])][:limit]
        start, end = params.get("startTime"), params.get("endTime")
        if start is None and end is None:
            return rows[-limit:]
        lo = int(start) if start is not None else int(end) - DAY_MS
        hi = int(end) if end is not None else lo + DAY_MS
        if hi - lo > DAY_MS:
            return 400, {"code": -1127, "msg": "More than 24 hours between startTime and endTime."}
        return [r for r in rows if lo <= ts_of(r) <= hi][:limit]

    def my_trades(self, params: dict[str, str]) -> Reply:
        if "symbol" not in params:
            return 400, {"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent."}
        with self.account.lock:
            self.account.match_resting()
            trades = [t for t in self.account.trades if t.order.market_id == params["symbol"]]
        selected = self._window(params, trades, key=lambda t: t.trade_id, ts_of=lambda t: t.ts)
        if isinstance(selected, tuple):
            return selected
        return 200, [
            {
                "symbol": t.order.market_id,
                "id": t.trade_id,
                "orderId": t.order.order_id,
                "orderListId": -1,
                "price": _num(t.price),
                "qty": _num(t.quantity),
                "quoteQty": _num(t.price * t.quantity),
                "commission": _num(t.fee),
                "commissionAsset": t.fee_asset,
                "time": t.ts,
                "isBuyer": t.order.side == "BUY",
                "isMaker": t.is_maker,
                "isBestMatch": True,
            }
            for t in selected
        ]

    def all_orders(self, params: dict[str, str]) -> Reply:
        if "symbol" not in params:
            return 400, {"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent."}
        with self.account.lock:
            self.account.match_resting()
            orders = [o for o in self.account.orders if o.market_id == params["symbol"]]
        selected = self._window(params, orders, key=lambda o: o.order_id, ts_of=lambda o: o.created_ms)
        if isinstance(selected, tuple):
            return selected
        return 200, [self._order(o) for o in selected]

    def balances(self, params: dict[str, str]) -> Reply:
        with self.account.lock:
            rows = [
                {"asset": a, "free": _num(self.account.free(a)), "locked": _num(self.account.locked.get(a, 0.0))}
                for a in sorted(self.account.balances)
            ]
        return 200, {
            "makerCommission": 10,
            "takerCommission": 10,
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "updateTime": self.account.clock.now_ms(),
            "accountType": "SPOT",
            "balances": rows,
            "permissions": ["SPOT"],
            "uid": 4242,
        }
