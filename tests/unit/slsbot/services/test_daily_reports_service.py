"""``DailyReports``: which receivers get an account's report (its RiskPolicy's Slack ones), a failing receiver that
leaves the others sent, and an unknown account that writes and sends nothing."""

from __future__ import annotations

from datetime import date

import pytest

from slsbot.api import RiskPolicy, TradingAccount
from slsbot.domain.errors import NotFoundError, NotificationFailed
from slsbot.services.daily_reports import DailyReports

DAY = date(2026, 3, 2)


def account(name: str, policy: str | None) -> TradingAccount:
    spec = {"exchange": "binance", "mode": "paper"}
    if policy:
        spec["riskPolicyRef"] = {"name": policy}
    return TradingAccount.model_validate({"metadata": {"name": name, "namespace": "trading"}, "spec": spec})


def policy(name: str, *receivers: tuple[str, str]) -> RiskPolicy:
    return RiskPolicy.model_validate(
        {
            "metadata": {"name": name, "namespace": "trading"},
            "spec": {
                "notifications": {
                    "receivers": [
                        {"name": r, "type": t, "urlSecretRef": {"name": "hooks", "key": r}} for r, t in receivers
                    ]
                }
            },
        }
    )


OBJECTS = [
    account("main", "desk-risk"),
    account("loose", None),
    policy("desk-risk", ("desk", "slack"), ("pager", "alertmanager"), ("ops", "slack")),
    policy("other-risk", ("others", "slack")),
]


class RecordingSender:
    def __init__(self, failing: set[str] = frozenset()) -> None:
        self.failing = failing
        self.sent: list[tuple[str, str]] = []

    def send_report(self, namespace, receiver, report) -> None:
        if receiver.name in self.failing:
            raise NotificationFailed(f"receiver {receiver.name} (slack): HTTP 500", retryable=True)
        self.sent.append((receiver.name, report.account))


def service(sender=None, pdfs=None) -> DailyReports:
    return DailyReports(
        resources=lambda: OBJECTS,
        records=lambda namespace, name: None,
        sender=sender,
        write_pdf=(lambda reports, path: pdfs.append(path) or 4) if pdfs is not None else None,
    )


def test_an_account_reports_to_its_risk_policys_slack_receivers_only() -> None:
    assert [r.name for r in service().receivers("trading", "main")] == ["desk", "ops"]


def test_an_account_without_a_risk_policy_reports_to_its_namespaces_slack_receivers() -> None:
    assert [r.name for r in service().receivers("trading", "loose")] == ["desk", "ops", "others"]


def test_a_failing_receiver_leaves_the_others_sent() -> None:
    sender = RecordingSender(failing={"desk"})
    run = service(sender).run(DAY, account=("trading", "main"), slack=True)
    assert sender.sent == [("ops", "main")]
    assert run.sent == ["trading/ops main"]
    assert run.failed == ["trading/main: receiver desk (slack): HTTP 500"]


def test_without_slack_nothing_is_sent() -> None:
    sender = RecordingSender()
    service(sender).run(DAY, slack=False)
    assert sender.sent == []


def test_an_unknown_account_writes_and_sends_nothing(tmp_path) -> None:
    sender, pdfs = RecordingSender(), []
    with pytest.raises(NotFoundError, match=r"--account trading/nope: no such TradingAccount \(known: trading/loose"):
        service(sender, pdfs).run(DAY, account=("trading", "nope"), pdf=tmp_path / "x.pdf", slack=True)
    assert sender.sent == [] and pdfs == []
