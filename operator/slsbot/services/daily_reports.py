"""The daily account report: for each TradingAccount (or one), the figures of one UTC day (``domain.daily_report``)
from its Strategies' runtime records and the incidents, written as a PDF and posted to the Slack receivers that the
account's RiskPolicy's ``notifications`` name.

``slsbot up`` runs it on a cron schedule (``interfaces.local_reports``); ``slsbot report --daily`` runs it once. A
Strategy whose records cannot be read is named in the report as not counted, never a reason to send nothing; a
receiver that fails is reported by name (never by URL) and the others still get the message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from slsbot.api import RiskPolicy, Strategy, TradingAccount
from slsbot.api.health import NotificationReceiver, ReceiverType
from slsbot.domain.daily_report import AccountDay, StrategyRecord, account_day
from slsbot.domain.errors import NotFoundError, NotificationFailed, SlsbotError
from slsbot.domain.notification_plan import merge_notifications
from slsbot.domain.ports import IncidentStore

log = logging.getLogger(__name__)
INCIDENTS_READ = 500  # newest incidents of a namespace looked at for one day's report


class StrategyRecords(Protocol):
    """A Strategy's runtime records (``adapters.runtime_state.read_strategy_record`` over a state file). None when the
    runtime has none yet; raises an SlsbotError (RuntimeUnreachable) when they cannot be read."""

    def __call__(self, namespace: str, strategy: str) -> StrategyRecord | None: ...


class ReportSender(Protocol):
    """Posts one account's report to one receiver (``adapters.notifiers.WebhookSender.send_report``). Raises
    NotificationFailed naming the receiver, never its URL."""

    def send_report(self, namespace: str, receiver: NotificationReceiver, report: AccountDay) -> None: ...


@dataclass(frozen=True, slots=True)
class DailyRun:
    reports: list[AccountDay]
    pdf: Path | None = None
    pages: int = 0
    sent: list[str] = field(default_factory=list)  # "namespace/receiver account"
    failed: list[str] = field(default_factory=list)  # NotificationFailed's messages


@dataclass(slots=True)
class DailyReports:
    resources: Callable[[], Iterable[Any]]  # the objects now: TradingAccounts, Strategies, RiskPolicies
    records: StrategyRecords
    incidents: IncidentStore | None = None
    sender: ReportSender | None = None
    write_pdf: Callable[[Sequence[AccountDay], Path], int] | None = None

    def build(self, day: date, *, account: tuple[str, str] | None = None) -> list[AccountDay]:
        """One report per account (sorted by namespace and name), or the one ``account`` (namespace, name) names.
        Raises NotFoundError when that account does not exist."""
        objects = list(self.resources())
        accounts = sorted(
            ((o.namespace, o.name) for o in objects if isinstance(o, TradingAccount)),
        )
        if account is not None:
            if account not in accounts:
                known = ", ".join(f"{ns}/{name}" for ns, name in accounts) or "none"
                raise NotFoundError(
                    f"--account {account[0]}/{account[1]}: no such TradingAccount (known: {known}); "
                    "give NAMESPACE/NAME of one of them"
                )
            accounts = [account]
        strategies = [o for o in objects if isinstance(o, Strategy)]
        incidents_of: dict[str, list[Any]] = {}
        reports = []
        for namespace, name in accounts:
            if namespace not in incidents_of:
                incidents_of[namespace] = (
                    self.incidents.list_incidents(namespace=namespace, limit=INCIDENTS_READ) if self.incidents else []
                )
            records, unavailable = [], []
            for strategy in sorted(strategies, key=lambda s: s.name):
                if strategy.namespace != namespace or strategy.spec.account_ref.name != name:
                    continue
                try:
                    record = self.records(namespace, strategy.name)
                except SlsbotError as exc:
                    log.warning("daily report %s/%s: strategy %s left out: %s", namespace, name, strategy.name, exc)
                    record = None
                if record is None:
                    unavailable.append(strategy.name)
                else:
                    records.append(record)
            reports.append(
                account_day(
                    namespace=namespace,
                    account=name,
                    day=day,
                    strategies=records,
                    incidents=incidents_of[namespace],
                    unavailable=unavailable,
                )
            )
        return reports

    def receivers(self, namespace: str, account: str) -> list[NotificationReceiver]:
        """The Slack receivers of the account's RiskPolicy (``riskPolicyRef``); for an account without one, those of
        its namespace's RiskPolicies (merged as for incidents: the first of a name wins)."""
        objects = list(self.resources())
        owner = next(
            (o for o in objects if isinstance(o, TradingAccount) and (o.namespace, o.name) == (namespace, account)),
            None,
        )
        policies = sorted(
            (o for o in objects if isinstance(o, RiskPolicy) and o.namespace == namespace), key=lambda p: p.name
        )
        ref = owner.spec.risk_policy_ref if owner is not None else None
        if ref is not None:
            policies = [p for p in policies if p.name == ref.name]
        merged = merge_notifications([p.spec.notifications for p in policies])
        return [r for r in merged.receivers if ReceiverType(r.type) is ReceiverType.SLACK]

    def run(
        self,
        day: date,
        *,
        account: tuple[str, str] | None = None,
        pdf: Path | None = None,
        slack: bool = False,
    ) -> DailyRun:
        """Build the reports, write them to ``pdf`` (all accounts in one file) and, with ``slack``, post each to its
        namespace's Slack receivers. Raises NotFoundError for an unknown ``account`` (nothing written or sent)."""
        reports = self.build(day, account=account)
        pages = 0
        if pdf is not None and self.write_pdf is not None:
            pages = self.write_pdf(reports, pdf)
        sent: list[str] = []
        failed: list[str] = []
        if slack and self.sender is not None:
            for report in reports:
                for receiver in self.receivers(report.namespace, report.account):
                    try:
                        self.sender.send_report(report.namespace, receiver, report)
                    except NotificationFailed as exc:
                        log.warning("daily report %s/%s: %s", report.namespace, report.account, exc)
                        failed.append(f"{report.namespace}/{report.account}: {exc}")
                    else:
                        sent.append(f"{report.namespace}/{receiver.name} {report.account}")
        return DailyRun(reports=reports, pdf=pdf if pages else None, pages=pages, sent=sent, failed=failed)
