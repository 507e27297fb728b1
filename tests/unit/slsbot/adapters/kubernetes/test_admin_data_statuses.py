"""``KubernetesAdminData.runtime_statuses``: each runtime's ``/status`` is asked at most once per TTL, however many
views poll, a runtime that does not answer is left out (and not asked again until the TTL passes), and a pause
through the API forgets the Strategy's status."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from slsbot.adapters.kubernetes.admin_data import KubernetesAdminData
from slsbot.domain.admin_data import AdminObject
from slsbot.domain.errors import RuntimeUnreachable


class Runtimes:
    """The backend's side: each runtime's status, or unreachable; counts every ask."""

    def __init__(self, statuses: dict[str, dict[str, Any] | None]) -> None:
        self.statuses = statuses
        self.asked: list[str] = []

    def runtime_status(self, namespace: str, name: str) -> dict[str, Any]:
        self.asked.append(name)
        status = self.statuses[name]
        if status is None:
            raise RuntimeUnreachable(f"{name} does not answer")
        return status


class Api:
    def __init__(self) -> None:
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.patches.append((path, body))
        return {"kind": "Strategy", "metadata": {"name": path.rsplit("/", 1)[-1], "namespace": "trading"}}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def strategy(name: str) -> AdminObject:
    return AdminObject(
        kind="Strategy",
        namespace="trading",
        name=name,
        document={"spec": {}},
        status={"phase": "Running"},
        generation=1,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def build(statuses: dict[str, dict[str, Any] | None]) -> tuple[KubernetesAdminData, Runtimes, Clock]:
    runtimes, clock = Runtimes(statuses), Clock()
    data = KubernetesAdminData(Api(), runtimes, status_ttl_seconds=2.0, clock=clock)  # type: ignore[arg-type]
    return data, runtimes, clock


def test_polls_within_the_ttl_ask_each_runtime_once_and_later_ones_ask_again() -> None:
    data, runtimes, clock = build({"btc": {"equity": 1.0}, "eth": {"equity": 2.0}})
    fleet = [strategy("btc"), strategy("eth")]
    first = asyncio.run(data.runtime_statuses(fleet))
    again = asyncio.run(data.runtime_statuses(fleet))  # a second page, a moment later
    assert first == again == {("trading", "btc"): {"equity": 1.0}, ("trading", "eth"): {"equity": 2.0}}
    assert sorted(runtimes.asked) == ["btc", "eth"]
    runtimes.statuses["btc"] = {"equity": 3.0}
    clock.now += 2.5
    assert asyncio.run(data.runtime_statuses([strategy("btc")])) == {("trading", "btc"): {"equity": 3.0}}
    assert sorted(runtimes.asked) == ["btc", "btc", "eth"]


def test_a_runtime_that_does_not_answer_is_left_out_and_not_asked_by_every_poll() -> None:
    data, runtimes, clock = build({"btc": None, "eth": {"equity": 2.0}})
    fleet = [strategy("btc"), strategy("eth")]
    assert asyncio.run(data.runtime_statuses(fleet)) == {("trading", "eth"): {"equity": 2.0}}
    assert asyncio.run(data.runtime_statuses(fleet)) == {("trading", "eth"): {"equity": 2.0}}
    assert runtimes.asked.count("btc") == 1
    runtimes.statuses["btc"] = {"equity": 1.0}  # back
    clock.now += 2.5
    assert asyncio.run(data.runtime_statuses(fleet))[("trading", "btc")] == {"equity": 1.0}


def test_a_pause_through_the_api_forgets_that_strategys_status() -> None:
    data, runtimes, _ = build({"btc": {"paused": False}, "eth": {"paused": False}})
    fleet = [strategy("btc"), strategy("eth")]
    asyncio.run(data.runtime_statuses(fleet))
    runtimes.statuses["btc"] = {"paused": True}
    asyncio.run(data.set_paused(strategy("btc"), True))
    assert asyncio.run(data.runtime_statuses(fleet))[("trading", "btc")] == {"paused": True}
    assert runtimes.asked.count("btc") == 2 and runtimes.asked.count("eth") == 1
