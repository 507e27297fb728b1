"""One layer retries: an order is attempted at most the exchange adapter's ``max_attempts`` times per send.

The order manager drives a real ``CcxtExchange`` (the retrying layer) over a ccxt client double that only
counts calls and fails as told, so the count is of requests that would have reached the exchange.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ccxt
import pytest

from slsbot_runtime.domain.types import OrderStatus, Side
from slsbot_runtime.exchange.ccxt_exchange import CcxtExchange
from slsbot_runtime.exchange.retry import RetryPolicy
from slsbot_runtime.execution.ledger import Ledger
from slsbot_runtime.execution.order_manager import OrderManager
from slsbot_runtime.persistence.store import StateStore

HOUR = 3_600_000
SYMBOL = "BTC/USDT"


class CountingClient:
    """What ``CcxtExchange`` calls on a ccxt client: creates fail ``create_failures`` times with a network error,
    then answer; lookups by client id find only what was created."""

    def __init__(self, create_failures: int) -> None:
        self.create_failures = create_failures
        self.calls: dict[str, int] = {"create_order": 0, "fetch_order": 0, "load_markets": 0}
        self.created: dict[str, dict[str, Any]] = {}

    def load_markets(self) -> dict[str, Any]:
        self.calls["load_markets"] += 1
        return {}

    def fetch_order(self, order_id: str | None, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls["fetch_order"] += 1
        found = self.created.get(params.get("clientOrderId", ""))
        if found is None:
            raise ccxt.OrderNotFound("Order does not exist")
        return found

    def create_order(self, symbol: str, kind: str, side: str, amount: float, price: Any, params: dict[str, Any]):
        self.calls["create_order"] += 1
        if self.create_failures > 0:
            self.create_failures -= 1
            raise ccxt.NetworkError("connection reset")
        cid = params["clientOrderId"]
        self.created[cid] = {
            "id": f"x-{len(self.created) + 1}", "clientOrderId": cid, "symbol": symbol, "side": side,
            "type": kind, "amount": amount, "filled": 0.0, "status": "open", "timestamp": 1,
        }  # fmt: skip
        return self.created[cid]


ATTEMPTS = 3


def make(tmp_path: Path, client: CountingClient) -> tuple[OrderManager, list[float]]:
    sleeps: list[float] = []
    exchange = CcxtExchange(
        client,  # type: ignore[arg-type]
        retry=RetryPolicy(max_attempts=ATTEMPTS, base_delay_s=0.1, max_delay_s=1.0, jitter=0.0),
        sleep=sleeps.append,
    )
    manager = OrderManager(
        exchange=exchange,
        store=StateStore.open(tmp_path / "state.db"),
        ledger=Ledger(cash=10_000.0, quote_currency="USDT"),
        strategy_key="default/retries",
    )
    return manager, sleeps


def test_an_order_that_keeps_failing_is_attempted_max_attempts_times_per_send_not_more(tmp_path: Path) -> None:
    client = CountingClient(create_failures=100)
    manager, sleeps = make(tmp_path, client)
    order = manager.create_intent(SYMBOL, Side.BUY, 1.0, candle_ts=0, created_ts=HOUR)
    assert manager.send_pending() == []
    assert client.calls["create_order"] == ATTEMPTS  # the manager does not retry around the adapter
    assert sleeps == [0.1, 0.2]
    assert order.status == OrderStatus.PENDING and manager.submissions == 1
    assert manager.send_pending() == []  # the next candle: one more bounded round, same id
    assert client.calls["create_order"] == 2 * ATTEMPTS


@pytest.mark.parametrize("failures", [1, ATTEMPTS - 1])
def test_a_send_that_recovers_places_one_order_after_looking_its_id_up(tmp_path: Path, failures: int) -> None:
    client = CountingClient(create_failures=failures)
    manager, _ = make(tmp_path, client)
    order = manager.create_intent(SYMBOL, Side.BUY, 1.0, candle_ts=0, created_ts=HOUR)
    assert manager.send_pending() == [order]
    assert client.calls["create_order"] == failures + 1 and len(client.created) == 1
    assert client.calls["fetch_order"] == 1 + failures  # before the first send, and before each resend
    assert order.status == OrderStatus.OPEN and order.exchange_order_id == "x-1"
