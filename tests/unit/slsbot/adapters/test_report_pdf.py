"""The daily report's PDF, read back with pypdf: four pages per account, each saying what the figures say."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pypdf import PdfReader

from slsbot.adapters.report_pdf import write_report_pdf
from slsbot.api.incident import IncidentSpec, IncidentStatus
from slsbot.domain.daily_report import RiskDecisionRecord, StrategyRecord, account_day, day_bounds
from slsbot.domain.incidents import Incident
from slsbot_runtime.domain.types import Fill, Side

DAY = date(2026, 3, 2)
START, _END = day_bounds(DAY)
H = 3_600_000


def report(account: str = "main"):
    btc = StrategyRecord(
        name="btc-trend",
        starting_cash=1000.0,
        equity=[(START + H, 1000.0), (START + 2 * H, 1050.0), (START + 3 * H, 1020.0)],
        fills=[
            Fill("f1", "o1", "BTC/USDT", Side.BUY, 1.0, 100.0, 1.0, "USDT", START + H),
            Fill("f2", "o2", "BTC/USDT", Side.SELL, 1.0, 121.0, 1.0, "USDT", START + 2 * H),
        ],
        decisions=[
            RiskDecisionRecord(START + H, "rejected", ("daily_loss",)),
            RiskDecisionRecord(START + 2 * H, "reduced", ("per_trade_max",)),
        ],
    )
    eth = StrategyRecord(name="eth-mean", starting_cash=500.0, equity=[(START + 2 * H, 490.0)])
    incident = Incident(
        id="drawdown-abc123",
        namespace="trading",
        spec=IncidentSpec(
            cause="x", severity=2, rule="Drawdown", objects=["Strategy/eth-mean"], runbook="runbooks/drawdown.md"
        ),
        status=IncidentStatus(opened_at=datetime(2026, 3, 2, 4, 30, tzinfo=UTC)),
    )
    return account_day(namespace="trading", account=account, day=DAY, strategies=[btc, eth], incidents=[incident])


def page_texts(path) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(path).pages]


def test_each_account_gets_a_title_page_an_equity_chart_a_strategy_table_and_its_events(tmp_path) -> None:
    path = tmp_path / "report.pdf"
    assert write_report_pdf([report("main"), report("spare")], path) == 8
    pages = page_texts(path)
    assert len(pages) == 8
    title, equity, strategies, events = pages[:4]
    # btc: +20 (realised 121 - 101 - 1 = 19, a win); eth: -10; the account +10 on 1500
    assert "Daily report 2026-03-02: trading/main" in title
    assert "PnL: +10.00 (0.67 %)" in title
    assert "Realised: +19.00" in title
    assert "Win rate: 100.00 % of 1 closed trades" in title
    assert "Best strategy: btc-trend +20.00" in title
    assert "Worst strategy: eth-mean -10.00" in title
    assert "Incidents: 1 opened, 0 resolved" in title
    assert "Risk decisions: 1 refusals, 1 cuts" in title
    assert "trading/main: account equity, 2026-03-02" in equity and "equity per strategy" in equity
    assert "btc-trend +20.00 +19.00 +1.00 2.00 1 100.00 %" in strategies
    assert "eth-mean -10.00 +0.00 -10.00 0.00 0 n/a" in strategies
    assert "04:30 drawdown-abc123 severity 2 Drawdown (open)" in events
    assert "refused by daily_loss: 1" in events and "cut by per_trade_max: 1" in events
    assert "Daily report 2026-03-02: trading/spare" in pages[4]


def test_a_day_without_data_still_gives_every_page(tmp_path) -> None:
    empty = account_day(namespace="trading", account="main", day=DAY, strategies=[])
    path = tmp_path / "empty.pdf"
    assert write_report_pdf([empty], path) == 4
    pages = page_texts(path)
    assert "no equity recorded in the day" in pages[1]
    assert "no strategies" in pages[2]
    assert "Best strategy: none" in pages[0]
