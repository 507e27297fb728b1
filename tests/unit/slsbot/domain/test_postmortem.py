"""The post-mortem bundle (``domain.postmortem``): a runtime that could not be read says why, and ``fit_bundle``
caps a bundle to a store's limit, leaving out as little as it must, oldest first, and saying so."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from slsbot.domain.incident_rules import IncidentSignal
from slsbot.domain.incidents import open_incident
from slsbot.domain.postmortem import bundle_text, fit_bundle, postmortem_bundle

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BTC, ETH = "Strategy/btc", "Strategy/eth"


def incident():
    signal = IncidentSignal(
        cause="StateMismatch:trading/btc",
        severity=1,
        rule="StateMismatch",
        namespace="trading",
        objects=(BTC, ETH),
        message="position 0.1 BTC, exchange 0",
        runbook="runbooks/state-mismatch.md",
        detected_at=T0,
        actions=("CancelOrders", "Flatten", "Halt"),
    )
    return open_incident(signal, T0, recover_after=T0 - T0)


def order(n: int) -> dict:
    return {"id": f"o-{n:04d}", "symbol": "BTC/USDT", "side": "buy", "amount": 0.001, "note": "x" * 200}


def event(n: int) -> dict:
    return {"kind": "Strategy", "name": "btc", "reason": "Healing", "message": f"event {n:04d} " + "y" * 300}


def bundle(*, events: int = 0, orders: int = 0, status_pad: int = 0) -> dict:
    status = {"phase": "running", "trading_mode": "halted", "breaker": "open", "pad": "z" * status_pad}
    return postmortem_bundle(
        incident(),
        runtime_status={BTC: status, ETH: dict(status)},
        orders={BTC: [order(n) for n in range(orders, 0, -1)], ETH: [order(n) for n in range(orders, 0, -1)]},
        events=[event(n) for n in range(events, 0, -1)],  # newest first
        generated_at=T0,
    )


def size(text: str) -> int:
    return len(text.encode())


def test_a_runtime_that_could_not_be_read_has_a_null_status_and_the_reason() -> None:
    made = postmortem_bundle(
        incident(),
        runtime_status={BTC: {"phase": "running", "trading_mode": "halted"}, ETH: None},
        orders={BTC: [order(1)]},
        events=[],
        generated_at=T0,
        unreachable={ETH: "the runtime does not answer: connection refused"},
    )
    assert made["runtimes"][ETH] == {
        "lastStatus": None,
        "riskDecisions": {},
        "recentOrders": [],
        "unreachable": "the runtime does not answer: connection refused",
    }
    assert "unreachable" not in made["runtimes"][BTC]
    assert made["runtimes"][BTC]["riskDecisions"] == {"trading_mode": "halted"}


def test_a_bundle_within_the_limit_is_kept_whole_and_says_nothing_of_a_cut() -> None:
    whole = bundle(events=5, orders=5)
    fitted, text = fit_bundle(whole, max_bytes=size(bundle_text(whole)))
    assert fitted == whole and "truncated" not in fitted
    assert text == bundle_text(whole) and json.loads(text) == json.loads(json.dumps(whole))


def test_past_the_limit_the_oldest_events_go_first_and_no_more_than_needed() -> None:
    whole = bundle(events=200, orders=100)
    limit = size(bundle_text(whole)) - 20_000  # about 60 events too many; the orders fit
    fitted, text = fit_bundle(whole, max_bytes=limit)

    assert size(text) <= limit and json.loads(text) == fitted
    kept = fitted["events"]
    assert kept == whole["events"][: len(kept)]  # the newest
    note = fitted["truncated"]
    assert note["limitBytes"] == limit and note["bytesBefore"] == size(bundle_text(whole))
    assert note["eventsLeftOut"] == 200 - len(kept) > 0
    assert note["ordersLeftOut"] == {} and note["statusesLeftOut"] == []
    assert all(len(r["recentOrders"]) == 100 for r in fitted["runtimes"].values())
    # As few as needed: one more event would not fit.
    one_more = {**fitted, "events": whole["events"][: len(kept) + 1]}
    assert size(bundle_text(one_more)) > limit
    assert fitted["incident"] == whole["incident"]


def test_then_each_runtimes_oldest_orders_then_the_statuses_and_the_risk_decisions_stay() -> None:
    whole = bundle(events=50, orders=100, status_pad=30_000)
    without_events = {**whole, "events": []}
    limit = size(bundle_text(without_events)) - 15_000  # more than the events, about half BTC's orders
    fitted, text = fit_bundle(whole, max_bytes=limit)
    assert size(text) <= limit
    note = fitted["truncated"]
    assert fitted["events"] == [] and note["eventsLeftOut"] == 50
    btc = fitted["runtimes"][BTC]
    assert 0 < note["ordersLeftOut"][BTC] < 100 and ETH not in note["ordersLeftOut"]
    assert btc["recentOrders"] == whole["runtimes"][BTC]["recentOrders"][: 100 - note["ordersLeftOut"][BTC]]
    assert note["statusesLeftOut"] == []

    tiny = size(bundle_text({**whole, "events": [], "runtimes": {}})) + 1_500
    fitted, text = fit_bundle(whole, max_bytes=tiny)
    assert size(text) <= tiny
    note = fitted["truncated"]
    assert note["statusesLeftOut"] == [BTC, ETH]
    assert note["ordersLeftOut"] == {BTC: 100, ETH: 100}
    for runtime in fitted["runtimes"].values():
        assert runtime["lastStatus"] is None and runtime["recentOrders"] == []
        assert runtime["riskDecisions"] == {"breaker": "open", "trading_mode": "halted"}
    assert fitted["incident"] == whole["incident"]
