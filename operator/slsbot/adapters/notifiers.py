"""Sending incident notifications: Alertmanager (``POST /api/v2/alerts``), a Slack incoming webhook, a generic JSON
webhook; and the daily account report, to Slack receivers (``send_report``). Each receiver's URL comes from a Secret
(``SecretKeyRef``): on a cluster the Kubernetes Secret, locally the file ``<secrets dir>/<namespace>/<secret>/<key>``,
laid out like a mounted Secret.

A webhook URL carries a token, so it is never logged, never put in an error message, status or event: failures name
the receiver and the HTTP status or the error's class only. httpx's own messages are not passed on, since some of
them quote the URL.

Delivery answers: 2xx delivered; 429 and 5xx retryable (with the receiver's Retry-After when it sends one); no
answer (connection refused, timeout) retryable; any other 4xx permanent (the message or the URL is wrong, asking again
will not help).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from slsbot.api.health import NotificationReceiver, ReceiverType, SecretKeyRef
from slsbot.domain.daily_report import AccountDay, decision_lines, money, summary_lines, title
from slsbot.domain.errors import NotFoundError, NotificationFailed
from slsbot.domain.incidents import Incident
from slsbot.domain.notification_plan import Message
from slsbot.domain.ports import SecretValues

SEVERITY_NAMES = {1: "critical", 2: "high", 3: "medium"}
SLACK_LINES = 20  # incidents listed in one Slack message; the rest are counted


class RedactWebhookUrls(logging.Filter):
    """httpx logs every request's URL at INFO; a webhook's URL is a secret. This filter, on the ``httpx`` and
    ``httpcore`` loggers, rewrites any record that quotes a URL a sender has read, before any handler sees it."""

    def __init__(self) -> None:
        super().__init__()
        self._urls: set[str] = set()
        self._lock = threading.Lock()

    def add(self, url: str) -> None:
        with self._lock:
            self._urls.add(url)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            urls = sorted(self._urls, key=len, reverse=True)
        if not urls:
            return True
        text = record.getMessage()
        redacted = text
        for url in urls:
            redacted = redacted.replace(url, "<webhook URL>")
        if redacted != text:
            record.msg, record.args = redacted, None
        return True


REDACT_WEBHOOK_URLS = RedactWebhookUrls()  # one for the process: the loggers it sits on are the process's


class FolderSecrets:
    """``SecretValues`` over a folder laid out as mounted Secrets: ``<root>/<namespace>/<secret>/<key>``."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def read(self, namespace: str, ref: SecretKeyRef) -> str:
        path = self._root / namespace / ref.name / ref.key
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise NotFoundError(
                f"Secret {namespace}/{ref.name} key {ref.key}: no readable file {path} ({type(exc).__name__}); "
                "write the webhook URL there"
            ) from None
        if not value:
            raise NotFoundError(f"Secret {namespace}/{ref.name} key {ref.key}: the file {path} is empty")
        return value


class WebhookSender:
    """``NotificationSender`` for the three receiver types, over one httpx client."""

    def __init__(
        self,
        secrets: SecretValues,
        *,
        timeout: float = 5.0,
        runbook_base_url: str = "",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).addFilter(REDACT_WEBHOOK_URLS)  # once: a filter is never added twice
        self._secrets = secrets
        self._http = httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False)
        self._runbook_base_url = runbook_base_url
        self._clock = clock

    def close(self) -> None:
        self._http.close()

    def send(self, message: Message) -> None:
        self._post(message.namespace, message.receiver, self.payload(message))

    def send_report(self, namespace: str, receiver: NotificationReceiver, report: AccountDay) -> None:
        """Post a daily account report to a Slack receiver (``daily_report_slack``); the same answers as ``send``.
        Other receiver types take incidents only: NotificationFailed, not retryable."""
        if ReceiverType(receiver.type) is not ReceiverType.SLACK:
            raise NotificationFailed(
                f"receiver {receiver.name} ({receiver.type}): daily reports go to Slack receivers only",
                retryable=False,
            )
        self._post(namespace, receiver, daily_report_slack(report))

    def _post(self, namespace: str, receiver: NotificationReceiver, payload: Any) -> None:
        label = f"receiver {receiver.name} ({receiver.type})"
        try:
            url = self._secrets.read(namespace, receiver.url_secret_ref)
        except NotFoundError as exc:
            raise NotificationFailed(f"{label}: {exc}", retryable=True) from None
        REDACT_WEBHOOK_URLS.add(url)
        try:
            response = self._http.post(url, json=payload)
        except httpx.HTTPError as exc:  # its text may quote the URL: only the class is kept
            raise NotificationFailed(f"{label}: no answer ({type(exc).__name__})", retryable=True) from None
        except ValueError:  # not a URL httpx can use; saying how would quote it
            raise NotificationFailed(f"{label}: the Secret's value is not an http(s) URL", retryable=False) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 429 or status >= 500:
            raise NotificationFailed(
                f"{label}: HTTP {status}", retryable=True, retry_after=_retry_after(response.headers.get("Retry-After"))
            )
        raise NotificationFailed(f"{label}: HTTP {status}, not retried", retryable=False)

    def payload(self, message: Message) -> Any:
        kind = ReceiverType(message.receiver.type)
        if kind is ReceiverType.ALERTMANAGER:
            return self._alertmanager(message)
        if kind is ReceiverType.SLACK:
            return self._slack(message)
        return self._webhook(message)

    def runbook_url(self, incident: Incident) -> str:
        return self._runbook_base_url + incident.spec.runbook if self._runbook_base_url else incident.spec.runbook

    def _alertmanager(self, message: Message) -> list[dict[str, Any]]:
        """One alert per incident. The labels are what identifies an alert (so a resolved one can be sent with its
        id alone); the rule, objects and runbook are annotations."""
        now = self._clock().isoformat()
        alerts = []
        for incident in message.firing:
            alerts.append(
                {
                    "labels": _labels(message, incident.id),
                    "annotations": {
                        "summary": f"{incident.spec.rule}: {', '.join(incident.spec.objects)}",
                        "description": incident.spec.message,
                        "runbook_url": self.runbook_url(incident),
                        "rule": incident.spec.rule,
                        "count": str(incident.status.count),
                    },
                    "startsAt": incident.status.opened_at.isoformat(),
                }
            )
        for incident_id in message.resolved_ids:
            alerts.append({"labels": _labels(message, incident_id), "annotations": {}, "endsAt": now})
        return alerts

    def _slack(self, message: Message) -> dict[str, Any]:
        lines = [f"*{message.title}*" + (" (reminder)" if message.repeat else "")]
        for incident in message.firing[:SLACK_LINES]:
            lines.append(
                f"• `{incident.id}` {incident.spec.rule} {', '.join(incident.spec.objects)}: "
                f"{incident.spec.message[:300]} (runbook: {self.runbook_url(incident)})"
            )
        if len(message.firing) > SLACK_LINES:
            lines.append(f"… and {len(message.firing) - SLACK_LINES} more")
        if message.resolved_ids:
            lines.append(f"resolved: {len(message.resolved_ids)} incident(s)")
        return {"text": "\n".join(lines)}

    def _webhook(self, message: Message) -> dict[str, Any]:
        return {
            "version": 1,
            "source": "slsbot",
            "namespace": message.namespace,
            "severity": message.severity,
            "status": "firing" if message.firing else "resolved",
            "repeat": message.repeat,
            "title": message.title,
            "incidents": [
                {**i.model_dump(mode="json", by_alias=True, exclude_none=True), "runbookUrl": self.runbook_url(i)}
                for i in message.firing
            ],
            "resolvedIds": list(message.resolved_ids),
        }


def daily_report_slack(report: AccountDay) -> dict[str, Any]:
    """A daily account report as a Slack message: ``text`` (what notifications and older clients show) and blocks: a
    header, the headline figures, the Strategies by PnL, the risk decisions and the incidents opened."""
    figures = "\n".join(f"*{label}:* {value}" for label, value in summary_lines(report))
    ranked = sorted(report.strategies, key=lambda s: (-s.pnl, s.name))
    strategies = [f"• `{s.name}` {money(s.pnl)}, {s.closed_trades} closed trades" for s in ranked[:SLACK_LINES]]
    if len(ranked) > SLACK_LINES:
        strategies.append(f"… and {len(ranked) - SLACK_LINES} more")
    decisions = decision_lines(report)[:SLACK_LINES]
    incidents = [
        f"• `{line.id}` severity {line.severity} {line.rule} ({line.state})"
        for line in report.incidents_opened[:SLACK_LINES]
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title(report)[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": figures[:3000]}},
    ]
    for heading, lines in (("Strategies", strategies), ("Risk decisions", decisions), ("Incidents opened", incidents)):
        if lines:
            text = f"*{heading}*\n" + "\n".join(lines)
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
    text = f"*{title(report)}*\n" + "\n".join(f"{label}: {value}" for label, value in summary_lines(report))
    return {"text": text, "blocks": blocks}


def _labels(message: Message, incident_id: str) -> dict[str, str]:
    return {
        "alertname": "SlsbotIncident",
        "incident": incident_id,
        "namespace": message.namespace,
        "severity": SEVERITY_NAMES.get(message.severity, str(message.severity)),
    }


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is read as no hint)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None
