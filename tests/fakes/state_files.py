"""A runtime's state file with a known history, written through the runtime's own ``StateStore`` (the format a paper
runtime writes): an hourly equity curve over two symbols, two round trips on BTC/USDT, two risk decisions and a
tripped circuit-breaker level. For the tests of ``GET /activity`` and of the Control Center."""

from __future__ import annotations

from pathlib import Path

from slsbot_runtime.domain.types import Fill, Side
from slsbot_runtime.persistence.store import StateStore

HOUR_MS = 3_600_000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
CANDLES = 48
EQUITY = [10_000.0 + 10.0 * i - (40.0 if i > 30 else 0.0) for i in range(CANDLES)]


def fill(number: int, side: Side, price: float, candle: int) -> Fill:
    return Fill(
        fill_id=f"f{number}",
        client_order_id=f"o{number}",
        symbol="BTC/USDT",
        side=side,
        quantity=0.1,
        price=price,
        fee=1.0,
        fee_currency="USDT",
        ts=START_MS + candle * HOUR_MS,
    )


FILLS = [
    fill(1, Side.BUY, 40_000.0, 2),
    fill(2, Side.SELL, 41_000.0, 10),  # first trade: +100 - 2 fees = +98
    fill(3, Side.BUY, 42_000.0, 20),
    fill(4, Side.SELL, 41_500.0, 31),  # second trade: -50 - 2 fees = -52
]


def write_state_file(path: Path, *, candles: int = CANDLES) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    store = StateStore.open(path)
    try:
        for i in range(candles):
            ts = START_MS + i * HOUR_MS
            store.stage_candle(ts, "BTC/USDT", EQUITY[i] - 1.0, 5_000.0)  # the first symbol's row of the candle
            store.stage_candle(ts, "ETH/USDT", EQUITY[i], 5_000.0)  # the candle's last row: its equity
        for item in FILLS:
            store.stage_fill(item)
        store.stage_risk_decision(
            ts=START_MS + 12 * HOUR_MS,
            symbol="ETH/USDT",
            side="buy",
            is_entry=True,
            action="reduced",
            requested_quantity=2.0,
            quantity=1.0,
            events=[("per_trade_max", "size cut to the per-trade limit")],
        )
        store.stage_risk_decision(
            ts=START_MS + 33 * HOUR_MS,
            symbol="BTC/USDT",
            side="buy",
            is_entry=True,
            action="rejected",
            requested_quantity=0.1,
            quantity=0.0,
            events=[("breaker_level_1", "breaker level 1 tripped"), ("daily_loss", "daily loss near its limit")],
        )
        tripped = {"level": 1, "action": "reduceSize", "tripped_ts": START_MS + 31 * HOUR_MS, "until_ts": 0}
        store.stage_risk(START_MS + 33 * HOUR_MS, {"breaker": {"peak": 10_300.0, "tripped": [tripped]}})
        store.commit()
    finally:
        store.close()
    return path
