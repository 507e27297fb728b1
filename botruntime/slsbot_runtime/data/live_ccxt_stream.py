"""Pushed candle updates through ccxt.pro ``watch_ohlcv``, for the synchronous live feed.

ccxt.pro is asyncio; this runs its own event loop and turns one round of waiting into one blocking call,
so ``LiveCandleFeed`` stays a plain iterator. Used only when ccxt.pro is importable and the exchange has
``watchOHLCV``; otherwise the feed polls REST.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Sequence
from typing import Any


def ccxt_pro_client_class(exchange_id: str) -> type | None:
    """ccxt.pro's class for ``exchange_id`` when ccxt.pro is importable and it can watch OHLCV, else None."""
    try:
        pro = importlib.import_module("ccxt.pro")
    except ImportError:
        return None
    client_class = getattr(pro, exchange_id, None)
    if client_class is None:
        return None
    has = client_class().has  # no connection is opened until the first call
    return client_class if has.get("watchOHLCV") else None


class CcxtProStream:
    """``watch_ohlcv`` for each symbol, one pending watch per symbol, on a private event loop."""

    def __init__(
        self, make_client: Callable[[asyncio.AbstractEventLoop], Any], symbols: Sequence[str], timeframe: str
    ) -> None:
        self._make_client = make_client
        self._symbols = tuple(symbols)
        self._timeframe = timeframe
        self._loop = asyncio.new_event_loop()
        self._client = make_client(self._loop)
        self._watches: dict[str, asyncio.Task[list[list[Any]]]] = {}

    def updates(self, timeout_s: float) -> dict[str, list[list[Any]]]:
        """Rows that changed, per symbol, waiting up to ``timeout_s`` for the first; raises ccxt errors."""
        for symbol in self._symbols:
            if symbol not in self._watches:
                self._watches[symbol] = self._loop.create_task(self._client.watch_ohlcv(symbol, self._timeframe))
        done, _ = self._loop.run_until_complete(
            asyncio.wait(self._watches.values(), timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        )
        changed: dict[str, list[list[Any]]] = {}
        for symbol, watch in list(self._watches.items()):
            if watch in done:
                del self._watches[symbol]
                changed[symbol] = watch.result()
        return changed

    def reconnect(self) -> None:
        self._shut_client()
        self._client = self._make_client(self._loop)

    def close(self) -> None:
        self._shut_client()
        self._loop.close()

    def _shut_client(self) -> None:
        for watch in self._watches.values():
            watch.cancel()
        if self._watches:
            self._loop.run_until_complete(asyncio.gather(*self._watches.values(), return_exceptions=True))
        self._watches.clear()
        self._loop.run_until_complete(self._client.close())
