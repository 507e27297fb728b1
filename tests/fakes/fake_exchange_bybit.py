"""Bybit v5 REST (spot category, unified account) as far as ccxt's ``bybit`` class calls it, over the fake
account. Bybit answers HTTP 200 with ``retCode`` != 0 for most errors. Used by ``fake_exchange_server``;
test helper only."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from tests.fakes.fake_exchange_market import FakeAccount, FakeOrder, InsufficientBalance

Reply = tuple[int, Any]

_STATUS = {"NEW": "New", "PARTIALLY_FILLED": "PartiallyFilled", "FILLED": "Filled", "CANCELED": "Cancelled"}


def _num(value: float) -> str:
    return f"{value:.8f}".rstrip("0").rstrip(".") or "0"


class BybitApi:
    def __init__(self, account: FakeAccount, api_key: str, secret: str) -> None:
        self.account, self.api_key, self.secret = account, api_key, secret
        #: Every key the account accepts, key -> secret (the server shares one dict between the venues).
        self.keys: dict[str, str] = {api_key: secret}

    def reply(self, result: Any, code: int = 0, message: str = "OK") -> Reply:
        return 200, {
            "retCode": code,
            "retMsg": message,
            "result": result if result is not None else {},
            "retExtInfo": {},
            "time": self.account.clock.now_ms(),
        }

    def fault(self, kind: str) -> Reply:
        known = {
            "rate_limit": (10006, "Too many visits!"),
            "invalid_key": (10003, "API key is invalid."),
            "insufficient_balance": (170131, "Insufficient balance."),
        }
        if kind in known:
            return self.reply(None, *known[kind])
        if kind == "order_unknown":  # the query endpoint lagging behind order entry
            return self.reply({"category": "spot", "list": [], "nextPageCursor": ""})
        return 503, "Service Unavailable"

    def handle(self, method: str, path: str, params: dict[str, str], headers: Any, signed: str) -> Reply:
        route = path.removeprefix("/v5/")
        public = {
            ("GET", "market/time"): self.time,
            ("GET", "market/instruments-info"): self.instruments,
            ("GET", "market/kline"): self.klines,
        }
        private = {
            ("POST", "order/create"): self.create,
            ("GET", "order/realtime"): self.open_orders,
            ("GET", "order/history"): self.history,
            ("POST", "order/cancel"): self.cancel,
            ("GET", "execution/list"): self.executions,
            ("GET", "account/wallet-balance"): self.balances,
        }
        if (method, route) in public:
            return public[(method, route)](params)
        if (method, route) not in private:
            return 404, {"retCode": 10404, "retMsg": f"fake bybit has no {method} {path}"}
        api_key = headers.get("X-BAPI-API-KEY") or ""
        secret = self.keys.get(api_key)
        if secret is None:
            return self.fault("invalid_key")
        origin = f"{headers.get('X-BAPI-TIMESTAMP')}{api_key}{headers.get('X-BAPI-RECV-WINDOW')}{signed}"
        expected = hmac.new(secret.encode(), origin.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("X-BAPI-SIGN", ""), expected):
            # Bybit echoes the signed string, API key included, in this error.
            return self.reply(None, 10004, f"error sign! origin_string[{origin}]")
        if method == "POST":
            params = {k: str(v) for k, v in json.loads(signed or "{}").items()}
        return private[(method, route)](params)

    def time(self, params: dict[str, str]) -> Reply:
        now = self.account.clock.now_ms()
        return self.reply({"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)})

    def instruments(self, params: dict[str, str]) -> Reply:
        if params.get("category") != "spot":
            return self.reply({"category": params.get("category"), "list": []})
        rows = [
            {
                "symbol": mid,
                "baseCoin": mid[:-4],
                "quoteCoin": mid[-4:],
                "innovation": "0",
                "status": "Trading",
                "marginTrading": "none",
                "stTag": "0",
                "lotSizeFilter": {
                    "basePrecision": "0.00001",
                    "quotePrecision": "0.0000001",
                    "minOrderQty": "0.00001",
                    "maxOrderQty": "9000000",
                    "minOrderAmt": "5",
                    "maxOrderAmt": "9000000",
                },
                "priceFilter": {"tickSize": "0.000001"},
                "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.05"},
            }
            for mid in self.account.klines.market_ids
        ]
        return self.reply({"category": "spot", "list": rows, "nextPageCursor": ""})

    def klines(self, params: dict[str, str]) -> Reply:
        if params.get("symbol") not in self.account.klines.market_ids:
            return self.reply(None, 10001, "Not supported symbols")
        if params.get("interval") != "60":
            return self.reply(None, 10001, "Invalid period!")
        # Bybit: the newest `limit` candles within [start, end], newest first.
        rows = self.account.klines.candles(
            params["symbol"],
            self.account.clock.now_ms(),
            start_ms=int(params["start"]) if "start" in params else None,
            end_ms=int(params["end"]) if "end" in params else None,
            limit=min(int(params.get("limit", 200)), 1000),
            newest=True,
        )
        listed = [
            [str(ts), _num(o), _num(h), _num(lo), _num(c), _num(v), _num(v * c)]
            for ts, o, h, lo, c, v in reversed(rows)
        ]
        return self.reply({"symbol": params["symbol"], "category": "spot", "list": listed})

    def _order(self, order: FakeOrder) -> dict[str, Any]:
        average = order.quote_filled / order.filled if order.filled else 0.0
        return {
            "orderId": str(order.order_id),
            "orderLinkId": order.client_order_id,
            "blockTradeId": "",
            "symbol": order.market_id,
            "price": _num(order.price or 0.0),
            "qty": _num(order.quantity),
            "side": order.side.capitalize(),
            "isLeverage": "0",
            "positionIdx": 0,
            "orderStatus": _STATUS[order.status],
            "cancelType": "UNKNOWN",
            "rejectReason": "EC_NoError",
            "avgPrice": _num(average),
            "leavesQty": _num(order.quantity - order.filled),
            "leavesValue": "0",
            "cumExecQty": _num(order.filled),
            "cumExecValue": _num(order.quote_filled),
            "cumExecFee": "0",
            "timeInForce": "IOC" if order.type == "MARKET" else "GTC",
            "orderType": order.type.capitalize(),
            "stopOrderType": "",
            "orderIv": "",
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "triggerDirection": 0,
            "reduceOnly": False,
            "closeOnTrigger": False,
            "marketUnit": "baseCoin" if order.type == "MARKET" else "",
            "createdTime": str(order.created_ms),
            "updatedTime": str(order.updated_ms),
        }

    def create(self, params: dict[str, str]) -> Reply:
        market_id = params.get("symbol", "")
        if market_id not in self.account.klines.market_ids:
            return self.reply(None, 10001, "Not supported symbols")
        if params.get("marketUnit") == "quoteCoin":
            return self.reply(None, 10001, "fake bybit supports qty in the base coin only")
        client_id = params.get("orderLinkId") or f"fake{len(self.account.orders)}"
        with self.account.lock:
            # Bybit: an orderLinkId may be used once.
            if self.account.orders_by_client_id(client_id):
                return self.reply(None, 110072, "OrderLinkedID is duplicate")
            try:
                order = self.account.place(
                    market_id,
                    params["side"].upper(),
                    params["orderType"].upper(),
                    float(params["qty"]),
                    float(params["price"]) if params.get("price") else None,
                    client_id,
                )
            except InsufficientBalance:
                return self.fault("insufficient_balance")
        return self.reply({"orderId": str(order.order_id), "orderLinkId": order.client_order_id})

    def _matching(self, params: dict[str, str], *, open_: bool) -> list[FakeOrder]:
        with self.account.lock:
            self.account.match_resting()
            return [
                o
                for o in reversed(self.account.orders)
                if o.is_open == open_
                and params.get("symbol") in (None, o.market_id)
                and params.get("orderLinkId") in (None, o.client_order_id)
                and params.get("orderId") in (None, str(o.order_id))
            ]

    def open_orders(self, params: dict[str, str]) -> Reply:
        return self.reply(
            {
                "category": "spot",
                "list": [self._order(o) for o in self._matching(params, open_=True)],
                "nextPageCursor": "",
            }
        )

    def history(self, params: dict[str, str]) -> Reply:
        closed = self._matching(params, open_=False)[: int(params.get("limit", 20))]
        return self.reply({"category": "spot", "list": [self._order(o) for o in closed], "nextPageCursor": ""})

    def cancel(self, params: dict[str, str]) -> Reply:
        found = self._matching(params, open_=True)
        if not found:
            return self.reply(None, 170213, "Order does not exist.")
        self.account.cancel(found[0])
        return self.reply({"orderId": str(found[0].order_id), "orderLinkId": found[0].client_order_id})

    def executions(self, params: dict[str, str]) -> Reply:
        start, end = int(params.get("startTime", 0)), int(params.get("endTime", 2**62))
        with self.account.lock:
            self.account.match_resting()
            trades = [
                t
                for t in self.account.trades
                if params.get("symbol") in (None, t.order.market_id) and start <= t.ts <= end
            ]
        rows = [
            {
                "symbol": t.order.market_id,
                "orderId": str(t.order.order_id),
                "orderLinkId": t.order.client_order_id,
                "side": t.order.side.capitalize(),
                "orderPrice": _num(t.order.price or 0.0),
                "orderQty": _num(t.order.quantity),
                "leavesQty": "0",
                "orderType": t.order.type.capitalize(),
                "execFee": _num(t.fee),
                "feeCurrency": t.fee_asset,
                "execId": f"e-{t.trade_id}",
                "execPrice": _num(t.price),
                "execQty": _num(t.quantity),
                "execType": "Trade",
                "execValue": _num(t.price * t.quantity),
                "execTime": str(t.ts),
                "isMaker": t.is_maker,
                "feeRate": "0.001",
                "category": "spot",
            }
            for t in reversed(trades)
        ]
        # Newest first, a page of ``limit``; ``cursor`` continues where the last page stopped.
        start, limit = int(params.get("cursor") or 0), int(params.get("limit", 50))
        cursor = str(start + limit) if start + limit < len(rows) else ""
        return self.reply({"category": "spot", "list": rows[start : start + limit], "nextPageCursor": cursor})

    def balances(self, params: dict[str, str]) -> Reply:
        with self.account.lock:
            coins = [
                {
                    "coin": a,
                    "walletBalance": _num(total),
                    "locked": _num(self.account.locked.get(a, 0.0)),
                    "equity": _num(total),
                    "usdValue": "0",
                    "borrowAmount": "0",
                    "accruedInterest": "0",
                    "totalOrderIM": "0",
                    "totalPositionIM": "0",
                    "availableToWithdraw": "",
                }
                for a, total in sorted(self.account.balances.items())
            ]
        return self.reply({"list": [{"accountType": "UNIFIED", "totalEquity": "0", "coin": coins}]})
