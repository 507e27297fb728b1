"""/docs in a real browser (headless Chromium driven by Playwright), with every request that does not go to the
admin API itself blocked, as on a machine with no network: the page renders every route from the assets the API
serves, and a person can authorize with a token and try a route.

Needs a Chromium: Debian's ``chromium`` (``make browser`` installs it when run as root), or the path in
``SLSBOT_CHROMIUM``. Without one the test is skipped and says so (Playwright's own browser download is not used)."""

from __future__ import annotations

import pytest
from tests.browser import CHROMIUM_ARGS, NO_CHROMIUM, find_chromium

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROUTES = {
    "/healthz",
    "/api/v1/strategies",
    "/api/v1/strategies/{name}",
    "/api/v1/strategies/{name}/orders",
    "/api/v1/strategies/{name}/activity",
    "/api/v1/fleet",
    "/api/v1/riskpolicies",
    "/api/v1/riskpolicies/{name}/kill-switch",
    "/api/v1/strategies/{name}/pause",
    "/api/v1/strategies/{name}/resume",
    "/api/v1/events",
    "/api/v1/audit",
    "/api/v1/audit/refused",
    "/api/v1/experiments",
    "/api/v1/experiments/{name}",
    "/api/v1/experiments/{name}/promote",
    "/api/v1/experiments/{name}/abort",
    "/api/v1/experiments/{name}/pause",
    "/api/v1/experiments/{name}/resume",
    "/api/v1/experiments/{name}/report",
    "/api/v1/experiments/{name}/report/{file}",
    "/api/v1/incidents",
    "/api/v1/incidents/{incident_id}",
    "/api/v1/incidents/{incident_id}/acknowledge",
    "/api/v1/incidents/{incident_id}/resolve",
    "/api/v1/incidents/{incident_id}/postmortem",
    "/api/v1/accounts/overview",
}


CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_docs_render_and_try_a_route_with_no_network(served_admin_api) -> None:
    from playwright.sync_api import sync_playwright

    base = served_admin_api.url
    blocked: list[str] = []
    page_errors: list[str] = []

    def local_only(route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.route("**/*", local_only)
            page.goto(f"{base}/docs")
            page.wait_for_selector(".opblock-summary-path")
            shown = set(page.locator(".opblock-summary-path").all_inner_texts())
            assert {path.replace("\u200b", "") for path in shown} == ROUTES

            page.click("button.authorize")
            page.fill(".modal-ux input", served_admin_api.viewer_token)
            page.click(".modal-ux .auth-btn-wrapper button.authorize")
            page.click(".modal-ux button.btn-done")

            operation = page.locator("#operations-strategies-list_strategies_api_v1_strategies_get")
            operation.locator(".opblock-summary").click()
            operation.locator(".try-out__btn").click()
            operation.locator("button.execute").click()
            status = operation.locator(".live-responses-table tr.response .response-col_status").first
            status.wait_for()
            assert status.inner_text().strip().startswith("200")
            body = operation.locator(
                ".live-responses-table tr.response .response-col_description pre"
            ).first.inner_text()
            assert '"btc-trend"' in body and '"return_percent": 2.505' in body
        finally:
            browser.close()
    assert blocked == [], f"/docs asked for something other than the admin API: {blocked}"
    assert page_errors == []
