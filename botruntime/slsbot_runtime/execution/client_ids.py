"""Deterministic client order ids: the same decision always gets the same id, so a resend is recognised
by the exchange (and by our own order table) instead of becoming a second order."""

from __future__ import annotations

import hashlib
import re

PREFIX = "sls-"
#: Binance's rule for newClientOrderId; Bybit's orderLinkId accepts the same set.
VALID_CLIENT_ID = re.compile(r"^[a-zA-Z0-9_-]{1,36}$")


def client_order_id(strategy: str, symbol: str, candle_ts: int, seq: int) -> str:
    """``sls-`` and 32 hex digits of a hash of (strategy, symbol, candle open time, intent number): 36 chars.

    ``seq`` numbers the intents taken on the same candle (a cancel-and-replace or an exit then an entry).
    """
    digest = hashlib.blake2b(f"{strategy}|{symbol}|{candle_ts}|{seq}".encode(), digest_size=16).hexdigest()
    return PREFIX + digest
