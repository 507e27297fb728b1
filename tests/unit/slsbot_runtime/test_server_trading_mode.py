"""``POST /trading-mode``'s body: what is taken, and a 400 that names the field for anything else."""

from __future__ import annotations

import json

import pytest

from slsbot.api.health import TradingMode
from slsbot_runtime.server import BadRequest, parse_trading_mode


def body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_takes_mode_flatten_and_reason() -> None:
    assert parse_trading_mode(body({"mode": "safe"})) == (TradingMode.SAFE, False, None)
    assert parse_trading_mode(body({"mode": "halted", "flatten": True, "reason": " kill switch "})) == (
        TradingMode.HALTED,
        True,
        "kill switch",
    )
    assert parse_trading_mode(body({"mode": "normal", "reason": ""})) == (TradingMode.NORMAL, False, None)


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        (b"", "body"),
        (b"{not json", "body"),
        (body(["safe"]), "body"),
        (body({}), "mode"),
        (body({"mode": "paused"}), "mode"),
        (body({"mode": "safe", "flatten": "yes"}), "flatten"),
        (body({"mode": "safe", "flatten": True}), "flatten"),  # only a halt flattens
        (body({"mode": "safe", "reason": 3}), "reason"),
        (body({"mode": "safe", "reason": "x" * 501}), "reason"),
        (body({"mode": "safe", "why": "x"}), "why"),
    ],
)
def test_a_bad_body_names_the_field(sent: bytes, field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_trading_mode(sent)
    assert str(caught.value).startswith(f"{field}:")
