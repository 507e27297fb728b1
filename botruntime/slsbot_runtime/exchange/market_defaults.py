"""The market rules the paper exchange applies when no exchange tells it better: Binance's spot filters for the
eight pairs of the recorded data, and a fine-grained fallback for any other symbol.

Where the numbers come from (Binance changes them now and then; a connected ccxt account uses the live ones):

* ``PRICE_FILTER.tickSize``, ``LOT_SIZE.stepSize`` / ``minQty`` and ``NOTIONAL.minNotional`` (5 USDT) of BTC, ETH,
  ADA, LTC and DOGE against USDT as Binance's ``/api/v3/exchangeInfo`` gave them in ccxt's captured test markets
  (github.com/ccxt/ccxt, ``ts/src/test/static/markets/binance.json``); XRP's tick from the same capture.
* XRP's step (0.1; the capture, older, has 1), BNB's and SOL's (0.001, ticks 0.01): Binance's filters at the time
  of ``data/market/binance-spot-1h-2024``, whose every price is on these ticks and whose hourly volumes (sums of
  trade quantities) are on these steps (checked by ``tests/unit/slsbot_runtime/exchange/test_market_defaults.py``).
"""

from __future__ import annotations

from slsbot_runtime.domain.market_rules import MarketRules

BINANCE_SPOT_SOURCE = "Binance spot filters, slsbot's default for paper trading"
FALLBACK_SOURCE = "slsbot's fallback for a symbol without known filters"

#: base asset -> (LOT_SIZE stepSize = minQty, PRICE_FILTER tickSize); quoted in USDT, NOTIONAL minNotional 5.
_BINANCE_USDT_FILTERS: dict[str, tuple[float, float]] = {
    "BTC": (0.00001, 0.01),
    "ETH": (0.0001, 0.01),
    "BNB": (0.001, 0.01),
    "SOL": (0.001, 0.01),
    "XRP": (0.1, 0.0001),
    "ADA": (0.1, 0.0001),
    "DOGE": (1.0, 0.00001),
    "LTC": (0.001, 0.01),
}
BINANCE_MIN_NOTIONAL_USDT = 5.0

#: For any other symbol: the finest step and tick Binance lists (1e-8, its base precision) and no minimum notional,
#: which depends on the quote currency. Only what cannot be an order at all (less than one step) is refused.
FALLBACK_STEP = 1e-8


def default_market_rules(symbol: str) -> MarketRules:
    """Binance's spot filters for the recorded USDT pairs; the fallback for every other symbol."""
    base, _, quote = symbol.partition("/")
    filters = _BINANCE_USDT_FILTERS.get(base) if quote == "USDT" else None
    if filters is None:
        return MarketRules(symbol, FALLBACK_STEP, FALLBACK_STEP, FALLBACK_STEP, 0.0, FALLBACK_SOURCE)
    step, tick = filters
    return MarketRules(symbol, step, tick, step, BINANCE_MIN_NOTIONAL_USDT, BINANCE_SPOT_SOURCE)


def recorded_symbols() -> tuple[str, ...]:
    """The symbols with Binance defaults, ``BTC/USDT`` form."""
    return tuple(f"{base}/USDT" for base in _BINANCE_USDT_FILTERS)
