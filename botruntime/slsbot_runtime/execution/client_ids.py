"""Deterministic client order ids: the same decision always gets the same id, so a resend is recognised
by the exchange (and by our own order table) instead of becoming a second order."""

from __future__ import annotations

import hashlib

PREFIX = "sls-"  # with 32 hex digits: 36 characters, within domain.types.CLIENT_ORDER_ID_PATTERN


def client_order_id(strategy: str, symbol: str, candle_ts: int, seq: int) -> str:
    """``sls-`` and 32 hex digits of a hash of (strategy, symbol, candle open time, intent number): 36 chars.

    ``seq`` numbers the intents taken on the same candle (a cancel-and-replace or an exit then an entry).
    """
    digest = hashlib.blake2b(f"{strategy}|{symbol}|{candle_ts}|{seq}".encode(), digest_size=16).hexdigest()
    return PREFIX + digest
