"""The Control Center (``/ui``) in a real browser (headless Chromium driven by Playwright) on a real ``slsbot up``
whose two paper runtimes replay recorded candles, with every request that does not go to the admin API blocked:

* the fleet view lists both bots with their phase and figures, and updates them without a reload;
* a bot's page draws its equity curve and lists its trades;
* a viewer's pause is refused and the page says why; an operator's is done, the bot shows Paused, and the audit
  trail view shows the operator's request;
* an A/B rollout shows its step and statistic, and the operator rolls it back;
* the operator's kill switch on the bots' RiskPolicy shows on the page, and every runtime halts.

Screenshots of each step go to ``test-artifacts/control-center/`` (``tests/browser.py``; CI uploads the folder).
Needs a Chromium: without one the test is skipped and says so."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from tests.browser import CHROMIUM_ARGS, NO_CHROMIUM, artifacts_dir, find_chromium
from tests.fakes import test_secrets

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = find_chromium()
BTC_ROW = '#fleet-table tr[data-bot="default/btc-trend"]'
AB_ROW = '#experiments-table tr[data-experiment="default/btc-ab"]'
CANDIDATE = """\
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: btc-trend-candidate}
spec:
  accountRef: {name: paper-binance}
  allocationPercent: 0  # the rollout lends it part of btc-trend's share
  symbols: [BTC/USDT]
  timeframe: 1h
  ensemble:
    members:
      - {name: sma, strategy: sma_cross, params: {fast: 8, slow: 21}}
  marketData:
    source: replay
    dataDir: %(data)s
    secondsPerCandle: 0.05
    warmupCandles: 20
    loop: true
---
apiVersion: slsbot.io/v1alpha1
kind: Experiment
metadata: {name: btc-ab}
spec:
  type: ab
  strategyRef: {name: btc-trend}
  variants:
    - {name: baseline, strategyRef: {name: btc-trend}}
    - {name: candidate, strategyRef: {name: btc-trend-candidate}}
  schedule: {steps: [10, 25, 50, 100], stepInterval: 24h, minTrades: 2, significance: 0.05}
"""


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory: pytest.TempPathFactory, kit) -> Iterator:
    """``slsbot up`` over the two paper bots of ``conftest.write_manifests`` and an A/B rollout of btc-trend."""
    root = tmp_path_factory.mktemp("control-center")
    folder = kit.write_manifests(root / "manifests")
    data = re.search(r"dataDir: (.+)", (folder / "30-btc-trend.yaml").read_text()).group(1)
    (folder / "40-btc-ab.yaml").write_text(CANDIDATE % {"data": data})
    running = kit.start(
        folder,
        root / "state",
        kit.environment(
            SLSBOT_ADMIN_TOKEN=test_secrets.SUPERVISOR_ADMIN_TOKEN,
            SLSBOT_OPERATOR_TOKEN=kit.operator_token,
            SLSBOT_VIEWER_TOKEN=kit.viewer_token,
        ),
    )
    try:
        kit.wait_for(
            lambda: len(found := running.strategies()) == 3 and all(s["phase"] == "Running" for s in found.values()),
            timeout=120,
            interval=0.25,
            what="the three strategies Running",
        )
        yield running
    finally:
        running.stop()


def money(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_the_control_center_shows_the_fleet_and_a_bot_and_acts_as_the_role_allows(supervisor, kit) -> None:
    from playwright.sync_api import sync_playwright

    base = supervisor.url
    shots = artifacts_dir("control-center")
    blocked: list[str] = []
    page_errors: list[str] = []
    console_errors: list[str] = []

    def local_only(route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    def sign_in(page, token: str) -> None:
        page.fill("#token", token)
        page.click("#sign-in button[type=submit]")
        page.wait_for_selector("#nav:not([hidden])")
        assert not page.locator("#sign-in").is_visible()

    def confirm(page) -> None:
        page.wait_for_selector("#confirm[open]")
        page.click("#confirm-ok")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
            page.route("**/*", local_only)
            page.goto(f"{base}/ui")
            sign_in(page, kit.viewer_token)
            assert "token" not in page.url and kit.viewer_token not in page.url

            # The fleet: both bots, Running, with their figures.
            page.wait_for_function("() => document.querySelectorAll('#fleet-table tr[data-bot]').length === 3")
            row = page.locator(BTC_ROW)
            cells = row.locator("td").all_inner_texts()
            assert cells[0] == "btc-trend" and cells[1].startswith("Running")
            assert money(cells[2]) > 0  # equity
            assert cells[6].isdigit() and re.fullmatch(r"ok|level \d", cells[7]) and cells[8] == "off"
            policies = page.locator('#policy-table tr[data-policy="default/local-risk"] td').all_inner_texts()
            assert policies[:3] == ["default/local-risk", "strategy", "off"]

            # Live: the figures move while the page stays loaded (no reload, no navigation).
            page.evaluate("window.notReloaded = true")
            figures = (
                "() => [...document.querySelectorAll('#fleet-table tr[data-bot]')].map(r => r.cells[2].textContent"
            )
            figures += " + r.cells[3].textContent + r.cells[5].textContent).join('|')"  # equity, PnL today, exposure
            before = page.evaluate(figures)
            page.wait_for_function(f"(before) => ({figures})() !== before", arg=before)
            assert page.evaluate("window.notReloaded === true")
            page.screenshot(path=shots / "1-fleet.png", full_page=True)

            # A viewer's pause is refused, and the page says so.
            row.get_by_role("button", name="Pause").click()
            confirm(page)
            message = page.locator("#message.error")
            message.wait_for()
            assert message.inner_text().startswith("Refused: ") and "needs the operator role" in message.inner_text()
            page.screenshot(path=shots / "2-viewer-pause-refused.png", full_page=True)

            # A bot's page: its equity curve and its trades.
            row.locator("a").click()
            page.wait_for_selector("#equity-curve polyline")
            points = page.locator("#equity-curve polyline").get_attribute("points") or ""
            assert len(points.split()) > 20
            page.wait_for_function(
                "() => [...document.querySelectorAll('#trades-table tbody tr')].some(r => r.cells.length === 8)"
            )
            trade = page.locator("#trades-table tbody tr").first.locator("td").all_inner_texts()
            assert trade[1] == "BTC/USDT" and trade[2] in ("long", "short")
            assert page.locator("#bot-title").inner_text() == "default/btc-trend"
            page.screenshot(path=shots / "3-bot.png", full_page=True)

            # An operator: the A/B rollout shows its step and statistic, and the operator rolls it back.
            page.click("#sign-out")
            page.wait_for_selector("#sign-in:not([hidden])")
            sign_in(page, kit.operator_token)
            page.click("#nav-experiments")
            page.wait_for_function(
                "(selector) => document.querySelector(selector)?.cells[3].textContent.startsWith('1 of 4')", arg=AB_ROW
            )
            experiment = page.locator(AB_ROW).locator("td").all_inner_texts()
            assert experiment[1:3] == ["ab", "Progressing"] and experiment[3] == "1 of 4 (10 %)"
            assert "baseline: " in experiment[6] and "candidate: " in experiment[6]
            page.locator(AB_ROW).get_by_role("button", name="Roll back").click()
            confirm(page)
            page.wait_for_function(
                "(selector) => document.querySelector(selector).cells[2].textContent === 'Aborted'", arg=AB_ROW
            )
            assert page.locator(AB_ROW).get_by_role("button").count() == 0  # nothing left to steer
            page.screenshot(path=shots / "4-experiment-rolled-back.png", full_page=True)

            # The operator's pause is done, shows on the bot's page, and is in the audit trail.
            page.evaluate("location.hash = '#/bot/default/btc-trend'")
            page.wait_for_selector("#bot-actions button")
            page.locator("#bot-actions").get_by_role("button", name="Pause").click()
            confirm(page)
            page.locator("#message.ok").wait_for()
            page.wait_for_function(
                "() => /Paused|\\(paused\\)/.test(document.querySelector('#bot-figures').textContent)"
            )
            page.screenshot(path=shots / "5-operator-paused.png", full_page=True)
            page.click("#nav-audit")
            page.wait_for_function(
                "() => [...document.querySelectorAll('#audit-table tbody tr')].some("
                "r => r.cells.length === 5 && r.cells[1].textContent.startsWith('operator:')"
                " && r.cells[2].textContent.endsWith('/pause') && r.cells[4].textContent === '200')"
            )
            rows = [r.locator("td").all_inner_texts() for r in page.locator("#audit-table tbody tr").all()]
            page.screenshot(path=shots / "6-audit.png", full_page=True)

            # The operator sets the kill switch of btc-trend's RiskPolicy from its row: it shows, and every runtime
            # under the policy halts.
            page.click("#nav-fleet")
            page.locator(BTC_ROW).get_by_role("button", name="Kill switch").click()
            confirm(page)
            page.locator("#message.ok").wait_for()
            page.wait_for_function(
                "() => [...document.querySelectorAll('#fleet-table tr[data-bot]')].every("
                "r => r.cells[8].textContent === 'ON' && r.cells[1].textContent.includes('Halted'))",
                timeout=60_000,
            )
            policy = page.locator('#policy-table tr[data-policy="default/local-risk"]')
            assert policy.locator("td").nth(2).inner_text() == "ON"
            assert page.locator(BTC_ROW).get_by_role("button", name="Clear kill switch").count() == 1
            page.screenshot(path=shots / "7-kill-switch.png", full_page=True)
        except Exception:
            page.screenshot(path=shots / "failure.png", full_page=True)  # what the page showed when it failed
            raise
        finally:
            browser.close()

    pauses = [(r[1].split(":")[0], r[3], r[4][:3]) for r in rows if r[2].endswith("/pause")]
    assert pauses[:2] == [
        ("operator", "Strategy default/btc-trend", "200"),
        ("viewer", "Strategy default/btc-trend", "403"),
    ]
    assert blocked == [], f"the page asked for something other than the admin API: {blocked}"
    assert page_errors == []
    refused_by_policy = [m for m in console_errors if re.search(r"Content Security Policy", m)]
    assert refused_by_policy == []
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-fleet.png",
        "2-viewer-pause-refused.png",
        "3-bot.png",
        "4-experiment-rolled-back.png",
        "5-operator-paused.png",
        "6-audit.png",
        "7-kill-switch.png",
    ]
