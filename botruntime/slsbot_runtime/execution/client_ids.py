"""Deterministic client order ids: the same decision always gets the same id, so a resend is recognised
by the exchange (and by our own order table) instead of becoming a second order.

An id also says which strategy sent it: ``sls`` + 8 hex digits of a hash of the strategy key + ``-`` + 24 hex digits
of a hash of the decision, 36 characters (Binance's ``newClientOrderId`` and Bybit's ``orderLinkId`` take at most 36
letters, digits, ``-`` and ``_``; ``domain.types.CLIENT_ORDER_ID_PATTERN``). The restart reconcile adopts an order
the exchange has and the state lacks only when its id carries the strategy's tag (``is_own``), so the orders of other
strategies on the same account are never taken for its own.

Ids made before the tag (``sls-`` + 32 hex digits, ``legacy_client_order_id``) stay valid for the orders that have
them: a state file keeps its orders' ids, and a decision made again whose order is stored under its old id is
recognised by that id (``OrderManager.create_intent``).
"""

from __future__ import annotations

import functools
import hashlib

PREFIX = "sls"
LEGACY_PREFIX = "sls-"  # ids from before the strategy tag: 36 characters with 32 hex digits


@functools.lru_cache(maxsize=256)  # asked for every intent, for the few strategies of one process
def strategy_tag(strategy: str) -> str:
    """``sls`` + 8 hex digits of a hash of the strategy key + ``-``: the first 12 characters of its every id."""
    return PREFIX + hashlib.blake2b(strategy.encode(), digest_size=4).hexdigest() + "-"


def client_order_id(strategy: str, symbol: str, candle_ts: int, seq: int) -> str:
    """The strategy's tag and 24 hex digits of a hash of (strategy, symbol, candle open time, intent number): 36 chars.

    ``seq`` numbers the intents taken on the same candle (a cancel-and-replace or an exit then an entry).
    """
    return strategy_tag(strategy) + _decision_hash(strategy, symbol, candle_ts, seq, digest_size=12)


def legacy_client_order_id(strategy: str, symbol: str, candle_ts: int, seq: int) -> str:
    """The id the same decision had before ids carried the strategy's tag: ``sls-`` + 32 hex digits."""
    return LEGACY_PREFIX + _decision_hash(strategy, symbol, candle_ts, seq, digest_size=16)


def legacy_client_order_ids(
    strategy: str, symbol: str, *, first_ts: int, last_ts: int, interval_ms: int, seqs: int = 8
) -> set[str]:
    """The old-format ids of every decision ``strategy`` could have taken on ``symbol`` on a candle opening from
    ``first_ts`` to ``last_ts`` (on the ``interval_ms`` grid), with up to ``seqs`` intents per candle: an old-format id
    does not say its strategy, but it is recognised among these (a restore of a state from before the upgrade)."""
    start = -(-first_ts // interval_ms) * interval_ms  # the first candle open at or after first_ts
    return {
        legacy_client_order_id(strategy, symbol, ts, seq)
        for ts in range(start, last_ts + 1, interval_ms)
        for seq in range(seqs)
    }


def is_own(client_order_id: str, tag: str) -> bool:
    """The id was made by the strategy whose ``strategy_tag`` is ``tag`` (an id of the old format never is: it
    does not say its strategy)."""
    return client_order_id.startswith(tag) and len(client_order_id) == len(tag) + 24


def _decision_hash(strategy: str, symbol: str, candle_ts: int, seq: int, *, digest_size: int) -> str:
    return hashlib.blake2b(f"{strategy}|{symbol}|{candle_ts}|{seq}".encode(), digest_size=digest_size).hexdigest()
