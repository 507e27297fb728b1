"""The Control Center: one web page, served by the admin API in both modes (``slsbot up`` and ``slsbot operator
--admin-api-port``) at ``/ui``, to see every bot and act (docs/how-to/control-center.md).

Plain HTML, CSS and JavaScript from the package (``static/control-center/``): no library, no CDN, no build step.
The page is open (it holds no data); it asks for a token, keeps it in the tab's sessionStorage, and calls the JSON
routes with it in the ``Authorization`` header, so every figure and every action goes through the same roles, audit
trail and protections as any other client. Its policy (``CONTROL_CENTER_CSP``) allows scripts, styles and requests
from the API's own origin only: no inline script, no inline style, no other host.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "control-center"
PAGE_URL = "/ui"
ASSETS_URL = "/ui/assets"
CONTROL_CENTER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


def control_center_page() -> FileResponse:
    return FileResponse(
        ASSETS / "index.html", media_type="text/html", headers={"Content-Security-Policy": CONTROL_CENTER_CSP}
    )


def install_control_center(app: FastAPI) -> None:
    """Serve the page at ``/ui`` (``/`` leads there) and its script and stylesheet under ``/ui/assets``."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="control-center-assets")
    app.add_api_route(PAGE_URL, control_center_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/", lambda: RedirectResponse(PAGE_URL), methods=["GET"], include_in_schema=False)
