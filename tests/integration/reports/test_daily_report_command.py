"""``slsbot report --daily`` over a real supervisor store and a runtime's state file: the summary it prints, the PDF
it writes, the Slack message a real webhook receiver on 127.0.0.1 records (the webhook URL, which carries a token,
in no log, output or file), a receiver that fails, and the arguments it refuses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlmodel import Session
from tests.fakes import test_secrets
from tests.fakes.webhook_receiver import WebhookReceiver

from slsbot.adapters.manifest_folder import load_manifest_folder
from slsbot.adapters.store import create_store_engine, sync_desired_objects
from slsbot.adapters.supervisor_store import SqlIncidentStore
from slsbot.api.incident import IncidentSpec, IncidentStatus
from slsbot.domain.daily_report import day_bounds
from slsbot.domain.incidents import Incident
from slsbot.interfaces.cli import main
from slsbot_runtime.domain.types import Fill, Side
from slsbot_runtime.persistence.store import StateStore

pytestmark = pytest.mark.integration

TOKEN = test_secrets.WEBHOOK_TOKEN
DAY = date(2026, 3, 2)
START, _END = day_bounds(DAY)
H = 3_600_000

MANIFESTS = """
apiVersion: slsbot.io/v1alpha1
kind: RiskPolicy
metadata: {name: desk-risk, namespace: trading}
spec:
  notifications:
    receivers:
      - {name: desk, type: slack, urlSecretRef: {name: hooks, key: url}}
      - {name: pager, type: alertmanager, urlSecretRef: {name: hooks, key: url}}
---
apiVersion: slsbot.io/v1alpha1
kind: TradingAccount
metadata: {name: main, namespace: trading}
spec:
  exchange: binance
  mode: paper
  paper: {startingBalance: 10000, quoteCurrency: USDT}
  riskPolicyRef: {name: desk-risk}
---
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: btc-trend, namespace: trading}
spec:
  accountRef: {name: main}
  allocationPercent: 50
  symbols: [BTC/USDT]
  timeframe: 1h
  ensemble: {members: [{name: sma, strategy: sma_cross, params: {fast: 10, slow: 30}}]}
  marketData: {source: replay, dataDir: DATA}
---
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: never-started, namespace: trading}
spec:
  accountRef: {name: main}
  allocationPercent: 50
  symbols: [ETH/USDT]
  timeframe: 1h
  ensemble: {members: [{name: sma, strategy: sma_cross, params: {fast: 10, slow: 30}}]}
  marketData: {source: replay, dataDir: DATA}
"""


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def state_dir(tmp_path: Path, repo_root: Path, hook: WebhookReceiver) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    data = repo_root / "data" / "market" / "binance-spot-1h-2024"
    (folder / "objects.yaml").write_text(MANIFESTS.replace("DATA", str(data)))
    state = tmp_path / "state"
    engine = create_store_engine(state / "supervisor.db")
    with Session(engine) as session:
        sync_desired_objects(session, resources=load_manifest_folder(folder).resources, now=datetime.now(UTC))
    SqlIncidentStore(engine).save_incident(
        Incident(
            id="drawdown-1a2b3c",
            namespace="trading",
            spec=IncidentSpec(
                cause="Drawdown:trading/btc-trend",
                severity=2,
                rule="Drawdown",
                objects=["Strategy/btc-trend", "TradingAccount/main"],
                runbook="runbooks/drawdown.md",
            ),
            status=IncidentStatus(opened_at=datetime(2026, 3, 2, 3, 15, tzinfo=UTC)),
        )
    )
    engine.dispose()
    # btc-trend: 5,000 USDT; buys 1 BTC at 100 (fee 1) before the day, sells it at 131 (fee 1) in it: +29 realised
    store = StateStore.open(state / "trading" / "btc-trend" / "state.db")
    store.stage_meta("starting_cash", 5000.0)
    store.stage_meta("quote_currency", "USDT")
    store.stage_fill(Fill("f1", "o1", "BTC/USDT", Side.BUY, 1.0, 100.0, 1.0, "USDT", START - H))
    store.stage_fill(Fill("f2", "o2", "BTC/USDT", Side.SELL, 1.0, 131.0, 1.0, "USDT", START + H))
    for ts, equity in ((START - H, 4999.0), (START + H, 5029.0), (START + 2 * H, 5029.0)):
        store.stage_equity(ts, "BTC/USDT", equity, equity)
    store.stage_risk_decision(
        ts=START + 2 * H,
        symbol="BTC/USDT",
        side="buy",
        is_entry=True,
        action="rejected",
        requested_quantity=1.0,
        quantity=0.0,
        events=[("daily_loss", "daily loss limit reached")],
    )
    store.commit()
    store.close()
    secret = state / "secrets" / "trading" / "hooks" / "url"
    secret.parent.mkdir(parents=True)
    secret.write_text(hook.url + "\n")
    secret.chmod(0o600)
    return state


def daily(state_dir: Path, *extra: str) -> list[str]:
    return ["report", "--daily", "--state-dir", str(state_dir), "--date", DAY.isoformat(), *extra]


def test_the_daily_report_is_printed_written_as_a_pdf_and_posted_to_slack(state_dir, hook, tmp_path, capsys) -> None:
    pdf = tmp_path / "out" / "daily.pdf"
    assert main(daily(state_dir, "--pdf", str(pdf), "--slack")) == 0
    out, err = capsys.readouterr()
    assert "Daily report 2026-03-02: trading/main" in out
    assert "PnL: +30.00 (0.60 %)" in out  # 4,999 + 1 (never-started is not counted) -> 5,029 on 4,999
    assert "Realised: +29.00" in out
    assert "Not counted: never-started (no readable state)" in out
    assert "sent: trading/desk main" in out
    assert TOKEN not in out + err

    pages = [" ".join(p.extract_text().split()) for p in PdfReader(pdf).pages]
    assert len(pages) == 4
    assert "PnL: +30.00 (0.60 %)" in pages[0] and "Incidents: 1 opened, 0 resolved" in pages[0]
    assert "refused by daily_loss: 1" in pages[3]

    [body] = hook.bodies  # the Slack receiver only: the Alertmanager one takes incidents, not reports
    assert body["blocks"][0]["text"]["text"] == "Daily report 2026-03-02: trading/main"
    figures = body["blocks"][1]["text"]["text"]
    assert "*PnL:* +30.00 (0.60 %)" in figures and "*Win rate:* 100.00 % of 1 closed trades" in figures
    assert "*Risk decisions:* 1 refusals, 0 cuts" in figures
    assert any("`btc-trend` +30.00" in block["text"]["text"] for block in body["blocks"][2:])
    assert body["text"].startswith("*Daily report 2026-03-02: trading/main*")


def test_a_failing_receiver_is_named_and_the_exit_code_says_so(state_dir, hook, capsys) -> None:
    hook.script = [500]
    assert main(daily(state_dir, "--slack", "--account", "trading/main")) == 1
    out, err = capsys.readouterr()
    assert "not sent: trading/main: receiver desk (slack): HTTP 500" in err
    assert TOKEN not in out + err
    assert hook.bodies == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--account", "trading/nope"), "--account trading/nope: no such TradingAccount (known: trading/main)"),
        (("--account", "main"), "--account 'main': give NAMESPACE/NAME"),
        (("--date", "02/03/2026"), "--date '02/03/2026': give a day as YYYY-MM-DD"),
    ],
)
def test_bad_arguments_write_and_send_nothing(state_dir, hook, tmp_path, capsys, extra, message) -> None:
    pdf = tmp_path / "never.pdf"
    assert main(daily(state_dir, "--pdf", str(pdf), "--slack", *extra)) == 2
    assert message in capsys.readouterr().err
    assert not pdf.exists() and hook.bodies == []


def test_without_a_store_the_error_names_the_state_folder(tmp_path, capsys) -> None:
    assert main(["report", "--daily", "--state-dir", str(tmp_path / "none")]) == 2
    assert "--state-dir" in capsys.readouterr().err


def test_the_state_report_refuses_the_daily_options(tmp_path, capsys) -> None:
    assert main(["report", "--state", str(tmp_path / "state.db"), "--pdf", "x.pdf"]) == 2
    assert "--pdf go with --daily only" in capsys.readouterr().err
