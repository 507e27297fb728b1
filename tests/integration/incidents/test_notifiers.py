"""The notifiers against real HTTP servers on 127.0.0.1: what each receiver type receives, retries on 5xx and 429
(with Retry-After), and the webhook URL (it carries a token) in no log record, error message or timeline."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.fakes import test_secrets  # tests/conftest.py put the repository on sys.path

from slsbot.adapters.notifiers import FolderSecrets, WebhookSender
from slsbot.adapters.store import create_store_engine
from slsbot.adapters.supervisor_store import SqlIncidentStore
from slsbot.api.health import Notifications
from slsbot.domain.errors import NotificationFailed
from slsbot.domain.incident_rules import IncidentSignal
from slsbot.services.incidents import IncidentService, RetryPolicy

pytestmark = pytest.mark.integration

TOKEN = test_secrets.WEBHOOK_TOKEN
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Hook:
    """A webhook receiver: answers each POST with the next scripted (status, headers), then 200; keeps bodies."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.bodies: list[object] = []
        self.paths: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                status, headers = hook.script.pop(0) if hook.script else (200, {})
                hook.paths.append(self.path)
                if status == 200:
                    hook.bodies.append(body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                # A careless receiver echoes the URL it was called on in its error page.
                page = f"error on {self.path}".encode()
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{TOKEN}?token={TOKEN}"


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join(timeout=5)


def write_secret(root: Path, key: str, value: str) -> None:
    folder = root / "trading" / "hooks"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / key).write_text(value + "\n")
    (folder / key).chmod(0o600)  # as docs/concepts/incidents.md advises (the secret scan skips owner-only files)


def settings(kind: str, key: str = "url") -> Notifications:
    return Notifications.model_validate(
        {
            "receivers": [
                {"name": "oncall", "type": kind, "urlSecretRef": {"name": "hooks", "key": key}, "minSeverity": 3}
            ],
            "groupWait": "0s",
        }
    )


def signal(name: str, severity: int = 1) -> IncidentSignal:
    return IncidentSignal(
        cause=f"StateMismatch:trading/{name}",
        severity=severity,
        rule="StateMismatch",
        namespace="trading",
        objects=(f"Strategy/{name}",),
        message="position 0.1 BTC, exchange 0",
        runbook="runbooks/state-mismatch.md",
        detected_at=T0,
    )


def service_for(tmp_path: Path, kind: str, hook: Hook, **kwargs) -> tuple[IncidentService, SqlIncidentStore]:
    write_secret(tmp_path / "secrets", "url", hook.url)
    store = SqlIncidentStore(create_store_engine(tmp_path / "supervisor.db"))
    sender = WebhookSender(FolderSecrets(tmp_path / "secrets"), timeout=5, runbook_base_url="https://docs.example/")
    service = IncidentService(store, sender, notifications_for=lambda _ns: settings(kind), **kwargs)
    return service, store


def test_alertmanager_gets_one_alert_per_incident_with_its_runbook_then_the_resolution(tmp_path, hook) -> None:
    service, store = service_for(tmp_path, "alertmanager", hook)
    service.record_signals([signal("btc"), signal("eth")], T0)
    assert service.notify(T0) == 1
    assert hook.paths[0].startswith("/hooks/")  # the Secret's URL is used as written
    (alerts,) = hook.bodies
    assert isinstance(alerts, list) and len(alerts) == 2
    first = alerts[0]
    assert first["labels"]["alertname"] == "SlsbotIncident" and first["labels"]["severity"] == "critical"
    assert first["labels"]["namespace"] == "trading"
    assert first["annotations"]["runbook_url"] == "https://docs.example/runbooks/state-mismatch.md"
    assert "startsAt" in first and "endsAt" not in first
    ids = {a["labels"]["incident"] for a in alerts}
    assert ids == {i.id for i in store.active_incidents()}
    # Both resolved by a person: the next message (after groupInterval) ends both alerts.
    for incident in store.active_incidents():
        service.resolve(incident.id, "operator:x", T0 + timedelta(minutes=1))
    assert service.notify(T0 + timedelta(minutes=6)) == 1
    ended = hook.bodies[1]
    assert {a["labels"]["incident"] for a in ended} == ids and all("endsAt" in a for a in ended)


def test_slack_and_the_generic_webhook(tmp_path, hook) -> None:
    service, _ = service_for(tmp_path, "slack", hook)
    service.record_signals([signal(f"bot-{i}") for i in range(25)], T0)
    assert service.notify(T0) == 1
    text = hook.bodies[0]["text"]
    assert text.startswith("*[slsbot] trading: 25 open severity 1 (critical) incident(s)*")
    assert "… and 5 more" in text and "runbook: https://docs.example/runbooks/state-mismatch.md" in text

    service, _ = service_for(tmp_path / "generic", "webhook", hook)
    service.record_signals([signal("btc", severity=2)], T0)
    assert service.notify(T0) == 1
    body = hook.bodies[1]
    assert body["status"] == "firing" and body["severity"] == 2
    assert body["incidents"][0]["spec"]["cause"] == "StateMismatch:trading/btc"
    assert body["incidents"][0]["runbookUrl"].endswith("runbooks/state-mismatch.md")


def test_5xx_and_429_are_retried_with_backoff_and_the_url_never_leaks(tmp_path, hook, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    hook.script = [(503, {}), (429, {"Retry-After": "7"})]
    retry = RetryPolicy(base=timedelta(seconds=2), cap=timedelta(minutes=1), attempts=5)
    service, store = service_for(tmp_path, "webhook", hook, retry=retry)
    service.record_signals([signal("btc")], T0)
    assert service.notify(T0) == 0  # 503
    assert service.notify(T0 + timedelta(seconds=1)) == 0 and len(hook.paths) == 1  # backing off
    assert service.notify(T0 + timedelta(seconds=2)) == 0 and len(hook.paths) == 2  # 429, Retry-After 7 s
    assert service.notify(T0 + timedelta(seconds=8)) == 0 and len(hook.paths) == 2
    assert service.notify(T0 + timedelta(seconds=9)) == 1 and len(hook.paths) == 3
    assert len(hook.bodies) == 1
    incident = store.active_incidents()[0]
    assert incident.status.timeline[-1].message == "sent to oncall"
    # The token is nowhere: not in any log record (httpx logs each request's URL), not in the incident.
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "HTTP Request: POST <webhook URL>" in logged  # httpx did log the request, redacted
    assert "retrying" in logged and "HTTP 503" in logged
    assert TOKEN not in logged
    assert TOKEN not in incident.model_dump_json()


def test_errors_name_the_receiver_never_the_url(tmp_path, hook) -> None:
    write_secret(tmp_path, "url", hook.url)
    sender = WebhookSender(FolderSecrets(tmp_path), timeout=2)
    service = IncidentService(
        SqlIncidentStore(create_store_engine(tmp_path / "db.sqlite")),
        sender,
        notifications_for=lambda _: settings("slack"),
    )
    service.record_signals([signal("btc")], T0)
    (incident,) = service.store.active_incidents()
    from slsbot.domain.notification_plan import Message

    message = Message(settings("slack").receivers[0], "trading", 1, (incident,))
    hook.script = [(404, {})]
    with pytest.raises(NotificationFailed) as refused:
        sender.send(message)
    assert not refused.value.retryable and "receiver oncall (slack): HTTP 404" in str(refused.value)
    # Nothing listens: no answer, retryable, and the URL is not in the message.
    write_secret(tmp_path, "url", f"http://127.0.0.1:1/hooks/{TOKEN}")
    with pytest.raises(NotificationFailed) as unreachable:
        sender.send(message)
    assert unreachable.value.retryable and "no answer (ConnectError)" in str(unreachable.value)
    write_secret(tmp_path, "url", f"not a url {TOKEN}")
    with pytest.raises(NotificationFailed) as malformed:
        sender.send(message)
    # A missing Secret names the Secret and the key, and is retried (it may be created later).
    (tmp_path / "trading" / "hooks" / "url").unlink()
    with pytest.raises(NotificationFailed, match="Secret trading/hooks key url") as missing:
        sender.send(message)
    assert missing.value.retryable
    for error in (refused, unreachable, malformed, missing):
        assert TOKEN not in str(error.value)
        assert error.value.__cause__ is None  # httpx's error (which may quote the URL) is not chained
        assert error.value.__context__ is None or error.value.__suppress_context__
