"""HTTP calls to one bot runtime's control endpoints (the contract of ``slsbot runtime``'s server):

``GET /readyz`` (200 once warmed up and reconciled), ``GET /status``, ``GET /orders?limit=N``,
``POST /pause``, ``POST /resume``, ``POST /shutdown`` with ``{"cancelOrders": bool, "flatten": bool}``.

httpx errors are converted here into ``RuntimeUnreachable``, whose message names the runtime's URL and the cause.
"""

from __future__ import annotations

from typing import Any

import httpx

from slsbot.domain.errors import RuntimeUnreachable


class RuntimeHttpClient:
    """One connection pool for every runtime on this machine; ``base_url`` is passed per call."""

    def __init__(self, *, timeout: float) -> None:
        self._http = httpx.Client(timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def is_ready(self, base_url: str) -> bool:
        """Whether ``/readyz`` answers 200; False for 503 and for a runtime that does not answer yet."""
        try:
            return self._http.get(f"{base_url}/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def status(self, base_url: str) -> dict[str, Any]:
        body = self._call("GET", base_url, "/status")
        if not isinstance(body, dict):
            raise RuntimeUnreachable(f"{base_url}/status answered {type(body).__name__}, not a JSON object")
        return body

    def orders(self, base_url: str, *, limit: int) -> list[dict[str, Any]]:
        body = self._call("GET", base_url, "/orders", params={"limit": limit})
        if isinstance(body, dict) and isinstance(body.get("orders"), list):
            body = body["orders"]
        if not isinstance(body, list):
            raise RuntimeUnreachable(f"{base_url}/orders answered {type(body).__name__}, not a JSON list")
        return body

    def set_paused(self, base_url: str, *, paused: bool) -> None:
        self._call("POST", base_url, "/pause" if paused else "/resume")

    def shutdown(self, base_url: str, *, cancel_orders: bool, flatten: bool) -> None:
        self._call("POST", base_url, "/shutdown", json={"cancelOrders": cancel_orders, "flatten": flatten})

    def _call(self, method: str, base_url: str, path: str, **kwargs: Any) -> Any:
        url = f"{base_url}{path}"
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise RuntimeUnreachable(f"{method} {url} failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise RuntimeUnreachable(f"{method} {url} answered {response.status_code}: {response.text[:200]}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise RuntimeUnreachable(f"{method} {url} did not answer JSON") from exc
