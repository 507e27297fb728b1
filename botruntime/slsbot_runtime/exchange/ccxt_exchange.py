"""``CcxtExchange``: a real spot exchange account behind ccxt's synchronous client.

What differs between exchanges (which options ccxt needs, how an order is found by its client id, what a
duplicate looks like) lives in the subclasses in ``ccxt_venues``, as class attributes and small overrides;
this class holds only what every exchange shares. Every ccxt call goes through ``_call``, which converts
errors at the boundary, scrubs credentials and retries temporary failures with backoff and jitter.

Orders are idempotent on ``client_order_id``: ``place_order`` first asks the exchange whether it already
knows the id and returns that order; after a temporary failure while sending (the request may have arrived
even if the answer did not) it looks the id up again before resending.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import ccxt

from slsbot_runtime.domain.errors import (
    ExchangeError,
    OrderNotFound,
    OrderRejected,
    TemporaryExchangeError,
)
from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.domain.types import CLIENT_ORDER_ID_PATTERN, Balance, Fill, Order, OrderRequest, OrderType
from slsbot_runtime.exchange.base import Exchange
from slsbot_runtime.exchange.ccxt_convert import (
    balances_from_ccxt,
    fill_from_ccxt,
    market_rules_from_ccxt,
    order_from_ccxt,
)
from slsbot_runtime.exchange.credentials import ExchangeCredentials
from slsbot_runtime.exchange.errors_map import ScrubbingLogger, ccxt_boundary
from slsbot_runtime.exchange.retry import RetryPolicy, Sleep, call_with_retries

T = TypeVar("T")
log = logging.getLogger(__name__)
WIRE_LOGGER = "slsbot_runtime.exchange.wire"

_KNOWN_ORDER_IDS = 10_000  # exchange order id -> client order id, remembered for mapping fills
FILL_PAGES = 20  # at most this many pages of account trades per fetch_fills


class CcxtExchange(Exchange):
    """A spot account on one ccxt exchange. Subclasses set ``ccxt_id`` and what the exchange supports."""

    ccxt_id: ClassVar[str] = ""
    #: Options set on the ccxt client: only spot markets, no calls that need extra permissions.
    ccxt_options: ClassVar[Mapping[str, Any]] = {}
    #: Capabilities switched off on the ccxt client, e.g. ``fetchCurrencies``, a private call during
    #: ``load_markets`` that needs extra key permissions; currencies are then derived from the markets.
    ccxt_has_overrides: ClassVar[Mapping[str, bool]] = {"fetchCurrencies": False}
    #: Text in a rejection that means "this client id is already in use".
    duplicate_order_markers: ClassVar[tuple[str, ...]] = ()
    #: False when the create call answers with ids only and the order must be fetched for its state.
    create_returns_order_state: ClassVar[bool] = True
    #: Fields of a raw trade (ccxt's ``info``) that carry the client order id, if the exchange sends it.
    trade_client_id_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        client: ccxt.Exchange,
        *,
        secrets: tuple[str, ...] = (),
        retry: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._secrets = secrets
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng
        self._client_ids: OrderedDict[str, str] = OrderedDict()
        self._rules: dict[str, MarketRules] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sandbox={self.sandbox}, api={self.api_host!r})"

    def use_credentials(self, credentials: ExchangeCredentials) -> None:
        """Sign from now on with ``credentials`` (a key rotation): the same ccxt client, so its measured time offset,
        nonce and loaded markets stay. Every key ever used stays in the scrubbing list: an old key may still come back
        in a late error."""
        client = self._client
        client.apiKey = credentials.api_key
        client.secret = credentials.secret
        client.password = credentials.password or ""
        # ccxt's binance reads -2015 ("Invalid API-key") as a temporary ban once a key has worked; a new key has not
        # worked yet, so a refusal of it must read as the authentication error it is.
        client.options["hasAlreadyAuthenticatedSuccessfully"] = False
        self._secrets = tuple(dict.fromkeys((*self._secrets, *credentials.values)))
        client.logger = ScrubbingLogger(logging.getLogger(WIRE_LOGGER), self._secrets)

    @property
    def sandbox(self) -> bool:
        return bool(getattr(self._client, "isSandboxModeEnabled", False))

    @property
    def api_host(self) -> str:
        """Host of the spot REST API the client talks to (sandbox, live, or a redirect)."""
        urls = self._client.urls.get("api")
        public = urls.get("public", next(iter(urls.values()), "")) if isinstance(urls, dict) else urls
        return urlsplit(self._client.implode_hostname(str(public))).netloc

    # --- the boundary -------------------------------------------------------------------------------

    def _once(self, operation: str, call: Callable[[], T]) -> T:
        with ccxt_boundary(f"{self.ccxt_id} {operation}", self._secrets, self._client):
            return call()

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        """One ccxt call, converted at the boundary and retried while the failure is temporary."""
        return call_with_retries(
            lambda: self._once(operation, call),
            policy=self._retry,
            sleep=self._sleep,
            rng=self._rng,
            what=f"{self.ccxt_id} {operation}",
        )

    def load_markets(self) -> None:
        self._call("load_markets", self._client.load_markets)

    def market_rules(self, symbol: str) -> MarketRules | None:
        """The step, tick and minimums ccxt read from the venue's markets (loaded once); None when they cannot be
        had right now (the order then goes out as it is and ``place_order`` checks it once the markets load)."""
        rules = self._rules.get(symbol)
        if rules is not None:
            return rules
        try:
            self.load_markets()
            market = self._once("market", lambda: self._client.market(symbol))
        except ExchangeError as error:
            log.warning("%s market rules of %s unavailable: %s", self.ccxt_id, symbol, error)
            return None
        rules = market_rules_from_ccxt(market, self._client.precisionMode, source=f"{self.ccxt_id} markets")
        if rules is not None:
            self._rules[symbol] = rules
        return rules

    # --- orders -------------------------------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> Order:
        validate_order_request(request)
        self.load_markets()
        existing = self.fetch_order(request.client_order_id, request.symbol)
        if existing is not None:
            log.info("order %s is already known to %s; not sending it again", request.client_order_id, self.ccxt_id)
            return existing
        rules = self.market_rules(request.symbol)
        if rules is not None:
            check_market_rules(request, rules)
        maybe_sent = False

        def send_once() -> Order:
            nonlocal maybe_sent
            if maybe_sent:
                found = self._once("fetch_order", lambda: self._lookup(request.client_order_id, request.symbol))
                if found is not None:
                    log.info(
                        "order %s reached %s before the failure; not resending", request.client_order_id, self.ccxt_id
                    )
                    return self._remember(order_from_ccxt(found, request))
            try:
                return self._send(request)
            except TemporaryExchangeError:
                maybe_sent = True
                raise

        try:
            return call_with_retries(
                send_once,
                policy=self._retry,
                sleep=self._sleep,
                rng=self._rng,
                what=f"{self.ccxt_id} create_order {request.client_order_id}",
            )
        except OrderRejected as rejection:
            if not any(marker in str(rejection) for marker in self.duplicate_order_markers):
                raise
            return self._existing_after_duplicate(request)

    def _existing_after_duplicate(self, request: OrderRequest) -> Order:
        """The exchange refused the id as a duplicate, so it has the order even if its query endpoint does
        not show it yet: look again, with backoff, until it does."""

        def lookup() -> Order:
            found = self.fetch_order(request.client_order_id, request.symbol)
            if found is None:
                raise TemporaryExchangeError(
                    f"{self.ccxt_id} refused {request.client_order_id} as a duplicate but does not show it yet"
                )
            return found

        return call_with_retries(
            lookup,
            policy=self._retry,
            sleep=self._sleep,
            rng=self._rng,
            what=f"{self.ccxt_id} fetch_order {request.client_order_id}",
        )

    def _send(self, request: OrderRequest) -> Order:
        price = request.limit_price if request.type is OrderType.LIMIT else None
        raw = self._once(
            "create_order",
            lambda: self._client.create_order(
                request.symbol,
                request.type.value,
                request.side.value,
                request.quantity,
                price,
                {"clientOrderId": request.client_order_id},
            ),
        )
        if not self.create_returns_order_state:
            fetched = self._once("fetch_order", lambda: self._lookup(request.client_order_id, request.symbol))
            raw = fetched if fetched is not None else raw
        return self._remember(order_from_ccxt(raw, request))

    def fetch_order(self, client_order_id: str, symbol: str) -> Order | None:
        raw = self._call("fetch_order", lambda: self._lookup(client_order_id, symbol))
        return None if raw is None else self._remember(order_from_ccxt(raw))

    def _lookup(self, client_order_id: str, symbol: str) -> dict[str, Any] | None:
        """The raw ccxt order with this client id, or None. Runs inside the boundary."""
        try:
            return self._client.fetch_order(None, symbol, {"clientOrderId": client_order_id})
        except ccxt.OrderNotFound:
            return None

    def cancel_order(self, client_order_id: str, symbol: str) -> Order:
        """Cancel; an order that already reached a final state is returned as it is."""
        try:
            raw = self._call("cancel_order", lambda: self._cancel(client_order_id, symbol))
        except OrderNotFound:
            known = self.fetch_order(client_order_id, symbol)
            if known is None:
                raise
            return known
        if not raw.get("status") or not raw.get("symbol"):
            known = self.fetch_order(client_order_id, symbol)
            if known is not None:
                return known
        # Binance names the cancel request's own id clientOrderId in its answer; the order keeps ours.
        return self._remember(order_from_ccxt({**raw, "clientOrderId": client_order_id}))

    def _cancel(self, client_order_id: str, symbol: str) -> dict[str, Any]:
        return self._client.cancel_order(None, symbol, {"clientOrderId": client_order_id})

    def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        """The account's open orders that have a client id: one placed without (by hand, on a venue that makes none
        up, such as Bybit) cannot be this runtime's, so it is left out rather than failing the call."""
        raws = self._call("fetch_open_orders", lambda: self._client.fetch_open_orders(symbol))
        return [self._remember(order_from_ccxt(raw)) for raw in raws if raw.get("clientOrderId")]

    # --- fills and balances -------------------------------------------------------------------------

    def fetch_fills(self, symbol: str, since_ts: int = 0) -> list[Fill]:
        trades = [t for t in self._fetch_trades(symbol, since_ts) if int(t.get("timestamp") or 0) >= since_ts]
        unnamed = {str(t.get("order") or "") for t in trades if not self._client_id_field(t)}
        self._learn_client_ids(unnamed - set(self._client_ids) - {""}, symbol)
        fills: dict[str, Fill] = {}
        for trade in trades:
            client_order_id = self._client_id_of_trade(trade, symbol)
            if not client_order_id:
                continue  # an order placed without a client id (by hand) cannot be this runtime's
            fill = fill_from_ccxt(trade, client_order_id)
            fills[fill.fill_id] = fill
        return sorted(fills.values(), key=lambda f: (f.ts, f.fill_id))

    def _fetch_trades(self, symbol: str, since_ts: int) -> list[dict[str, Any]]:
        """The account's trades in ``symbol`` from ``since_ts``, every page. By default ccxt pages the venue's
        own way (a cursor on Bybit); errors come back to our retry, not ccxt's (``maxRetries`` 0)."""
        paging = {"paginate": True, "paginationCalls": FILL_PAGES, "maxRetries": 0}
        return self._call(
            "fetch_my_trades", lambda: self._client.fetch_my_trades(symbol, since_ts or None, None, dict(paging))
        )

    def _client_id_field(self, trade: Mapping[str, Any]) -> str | None:
        info = trade.get("info") or {}
        for name in self.trade_client_id_fields:
            if info.get(name):
                return str(info[name])
        return None

    def _learn_client_ids(self, order_ids: set[str], symbol: str) -> None:
        """Remember the client ids of these exchange order ids in as few calls as the venue allows; by
        default ``_client_id_of_trade`` asks order by order."""

    def _client_id_of_trade(self, trade: Mapping[str, Any], symbol: str) -> str:
        """The client id of the trade's order; "" when the order has none (placed by hand)."""
        named = self._client_id_field(trade)
        if named:
            return named
        if self.trade_client_id_fields:
            return ""  # the venue names each trade's client id, and this one has none
        order_id = str(trade.get("order") or "")
        if not order_id:
            raise ExchangeError(f"{self.ccxt_id} returned trade {trade.get('id')!r} without an order id")
        if order_id not in self._client_ids:
            raw = self._call("fetch_order", lambda: self._client.fetch_order(order_id, symbol))
            if not raw.get("clientOrderId"):
                self._remember_id(order_id, "")
                return ""
            self._remember(order_from_ccxt(raw))
        return self._client_ids[order_id]

    def fetch_balances(self) -> dict[str, Balance]:
        return balances_from_ccxt(self._call("fetch_balance", self._client.fetch_balance))

    def close(self) -> None:
        session = getattr(self._client, "session", None)
        if session is not None:
            session.close()

    def _remember(self, order: Order) -> Order:
        if order.exchange_order_id:
            self._remember_id(order.exchange_order_id, order.client_order_id)
        return order

    def _remember_id(self, exchange_order_id: str, client_order_id: str) -> None:
        self._client_ids[exchange_order_id] = client_order_id
        self._client_ids.move_to_end(exchange_order_id)
        while len(self._client_ids) > _KNOWN_ORDER_IDS:
            self._client_ids.popitem(last=False)


def validate_order_request(request: OrderRequest) -> None:
    """Refuse, before anything is sent, a request the exchange could not take or could not deduplicate."""
    if not CLIENT_ORDER_ID_PATTERN.match(request.client_order_id or ""):
        raise OrderRejected(
            f"client_order_id: {request.client_order_id!r} must be 1-36 letters, digits, '-' or '_' "
            "(the exchange deduplicates on it)"
        )
    if not (math.isfinite(request.quantity) and request.quantity > 0):
        raise OrderRejected(f"quantity: must be a positive number, got {request.quantity!r}")
    if request.type is OrderType.LIMIT and not (
        request.limit_price is not None and math.isfinite(request.limit_price) and request.limit_price > 0
    ):
        raise OrderRejected(f"limit_price: a limit order needs a positive limit_price, got {request.limit_price!r}")


def check_market_rules(request: OrderRequest, rules: MarketRules) -> None:
    """Refuse, before it is sent, an order ccxt would silently cut (a quantity off the step: the stored intent and
    the exchange's order would differ) or the venue would refuse (below its minimum amount, or its minimum notional
    at the limit price; a market order's notional is the venue's to judge at its own price)."""
    quantity = request.quantity
    if rules.floor_amount(quantity) <= 0:
        raise OrderRejected(str(rules.order_problem(0.0, request.limit_price)))
    if not rules.is_on_step(quantity):
        raise OrderRejected(
            f"quantity: {quantity!r} is not a whole number of {rules.symbol}'s amount step {rules.amount_step:g} "
            f"({rules.source}); round it down to {rules.floor_amount(quantity):g}"
        )
    price = request.limit_price if request.type is OrderType.LIMIT else None
    if price is not None and rules.round_price(price) != price:
        raise OrderRejected(
            f"limit_price: {price!r} is not on {rules.symbol}'s tick {rules.price_tick:g} ({rules.source}); "
            f"use {rules.round_price(price):g}"
        )
    problem = rules.order_problem(quantity, price)
    if problem is not None:
        raise OrderRejected(problem)


def build_ccxt_client(
    exchange_class: type[CcxtExchange],
    credentials: ExchangeCredentials | None,
    *,
    testnet: bool,
    endpoint: str | None = None,
    timeout_ms: int = 10_000,
    rate_limit: bool = True,
    client_class: Callable[[dict[str, Any]], Any] | None = None,
    extra_config: Mapping[str, Any] | None = None,
) -> Any:
    """A configured ccxt client: keys, spot-only options, sandbox when ``testnet``, and every REST URL moved
    to ``endpoint`` (scheme and host, e.g. ``http://127.0.0.1:8080``) when given, keeping the paths.

    ``client_class`` defaults to ccxt's synchronous class for the exchange; the live feed passes ccxt.pro's.
    """
    config: dict[str, Any] = {"enableRateLimit": rate_limit, "timeout": timeout_ms, **(extra_config or {})}
    if credentials is not None:
        config.update(apiKey=credentials.api_key, secret=credentials.secret)
        if credentials.password:
            config["password"] = credentials.password
    client = (client_class or getattr(ccxt, exchange_class.ccxt_id))(config)
    _merge_options(client.options, exchange_class.ccxt_options)
    client.has = {**client.has, **exchange_class.ccxt_has_overrides}
    client.logger = ScrubbingLogger(logging.getLogger(WIRE_LOGGER), credentials.values if credentials else ())
    if testnet:
        client.set_sandbox_mode(True)
    if endpoint:
        client.urls["api"] = redirect_urls(client.urls["api"], endpoint)
    return client


def redirect_urls(api_urls: Mapping[str, Any], endpoint: str) -> dict[str, Any]:
    """Each URL of ccxt's ``urls['api']`` with its scheme and host replaced by ``endpoint``."""
    base = endpoint.rstrip("/")
    redirected: dict[str, Any] = {}
    for name, url in api_urls.items():
        if isinstance(url, Mapping):
            redirected[name] = redirect_urls(url, endpoint)
            continue
        path = urlsplit(str(url).replace("{hostname}", "placeholder.invalid")).path
        redirected[name] = base + path
    return redirected


def _merge_options(target: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    """Set ``overrides`` into ccxt's nested ``options`` without dropping the keys it does not mention."""
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            if not isinstance(target.get(key), dict):
                target[key] = {}
            _merge_options(target[key], value)
        else:
            target[key] = list(value) if isinstance(value, list | tuple) else value
