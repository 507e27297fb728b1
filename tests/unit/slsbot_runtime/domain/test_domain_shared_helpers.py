"""The helpers kept once in the runtime's domain: timeframes, timestamps as text, drawdown, the order id rule."""

from __future__ import annotations

import pytest

from slsbot.api import TIMEFRAME_SECONDS
from slsbot_runtime.domain.equity import drawdown_percent, max_drawdown_percent
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.domain.timeframes import interval_ms, utc_iso, utc_minute
from slsbot_runtime.domain.types import CLIENT_ORDER_ID_PATTERN


def test_every_api_timeframe_has_its_milliseconds_and_others_are_refused_naming_the_field() -> None:
    assert {tf: interval_ms(tf) for tf in TIMEFRAME_SECONDS} == {tf: s * 1000 for tf, s in TIMEFRAME_SECONDS.items()}
    assert interval_ms("1h") == 3_600_000
    with pytest.raises(ConfigError, match=r"spec.timeframe: '2h' is not one of 1m, "):
        interval_ms("2h", field="spec.timeframe")


def test_timestamps_as_text() -> None:
    ts = 1_726_272_000_000  # 2024-09-14 00:00 UTC
    assert utc_iso(ts) == "2024-09-14T00:00:00Z"
    assert utc_iso(ts + 1_500) == "2024-09-14T00:00:01.500000Z"
    assert utc_minute(ts + 61_000) == "2024-09-14T00:01Z"


def test_drawdown_and_the_deepest_one() -> None:
    assert drawdown_percent(200.0, 150.0) == 25.0
    assert drawdown_percent(200.0, 250.0) == 0.0 and drawdown_percent(0.0, -5.0) == 0.0
    assert max_drawdown_percent([100.0, 120.0, 90.0, 130.0, 117.0]) == pytest.approx(25.0)
    assert max_drawdown_percent([]) == 0.0


@pytest.mark.parametrize(("cid", "ok"), [("sls-" + "a" * 32, True), ("x" * 37, False), ("a b", False), ("", False)])
def test_the_client_order_id_rule(cid: str, ok: bool) -> None:
    assert bool(CLIENT_ORDER_ID_PATTERN.match(cid)) is ok
