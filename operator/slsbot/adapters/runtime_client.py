"""HTTP calls to one bot runtime's control endpoints (the contract of ``slsbot runtime``'s server):

``GET /healthz`` (200 while the loop ticks; 503 with a reason when it does not), ``GET /readyz`` (200 once warmed up
and reconciled, or drained), ``GET /status``, ``GET /orders?limit=N``,
``POST /pause``, ``POST /resume``, ``POST /shutdown`` with ``{"cancelOrders": bool, "flatten": bool}``.

Every call but the probes (``/healthz``, ``/readyz``) carries ``Authorization: Bearer <token>``: the runtime's own token
(``control_tokens.ControlKey.token_for``), passed per call by the backends; a client built with
``token_for_url`` finds it from the runtime's URL instead (the admin API, which knows only the URL).

httpx errors are converted here into ``RuntimeUnreachable``, whose message names the runtime's URL and the cause
(never the token).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from slsbot.domain.errors import InvalidSpecError, RuntimeUnreachable
from slsbot.domain.runtime_performance import AllocationSetting, PerformancePeriod, RuntimePerformance


@dataclass(frozen=True, slots=True)
class Health:
    """One ``/healthz`` probe: whether anything answered, whether it said healthy, and why not."""

    answered: bool
    healthy: bool
    reason: str


class RuntimeHttpClient:
    """One connection pool for every runtime on this machine; ``base_url`` is passed per call."""

    def __init__(self, *, timeout: float, token_for_url: Callable[[str], str | None] | None = None) -> None:
        self._http = httpx.Client(timeout=timeout, trust_env=False)
        self._token_for_url = token_for_url

    def close(self) -> None:
        self._http.close()

    def health(self, base_url: str) -> Health:
        """What ``/healthz`` says: healthy (200), unhealthy with the runtime's reason (503), or no answer at all."""
        try:
            response = self._http.get(f"{base_url}/healthz")
        except httpx.HTTPError as exc:
            return Health(answered=False, healthy=False, reason=f"no answer from /healthz ({type(exc).__name__})")
        if response.status_code == 200:
            return Health(answered=True, healthy=True, reason="ok")
        try:
            body = response.json()
            reason = str(body.get("reason")) if isinstance(body, dict) and body.get("reason") else ""
        except ValueError:
            reason = ""
        said = f"/healthz answered {response.status_code}" + (f": {reason}" if reason else "")
        return Health(answered=True, healthy=False, reason=said)

    def is_ready(self, base_url: str) -> bool:
        """Whether ``/readyz`` answers 200; False for 503 and for a runtime that does not answer yet."""
        try:
            return self._http.get(f"{base_url}/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def status(self, base_url: str, *, token: str | None = None) -> dict[str, Any]:
        body = self._call("GET", base_url, "/status", token=token)
        if not isinstance(body, dict):
            raise RuntimeUnreachable(f"{base_url}/status answered {type(body).__name__}, not a JSON object")
        return body

    def orders(self, base_url: str, *, limit: int, token: str | None = None) -> list[dict[str, Any]]:
        body = self._call("GET", base_url, "/orders", token=token, params={"limit": limit})
        if isinstance(body, dict) and isinstance(body.get("orders"), list):
            body = body["orders"]
        if not isinstance(body, list):
            raise RuntimeUnreachable(f"{base_url}/orders answered {type(body).__name__}, not a JSON list")
        return body

    def set_paused(self, base_url: str, *, paused: bool, token: str | None = None) -> None:
        self._call("POST", base_url, "/pause" if paused else "/resume", token=token)

    def shutdown(self, base_url: str, *, cancel_orders: bool, flatten: bool, token: str | None = None) -> None:
        body = {"cancelOrders": cancel_orders, "flatten": flatten}
        self._call("POST", base_url, "/shutdown", token=token, json=body)

    # --- THROWAWAY STAND-IN, DELETE AT MERGE: P4's branch (allocation) adds set_allocation and performance with
    # these signatures and answers; take P4's methods. They exist here only so the A/B controller runs before P4.

    def set_allocation(self, base_url: str, *, percent: float | None, token: str | None = None) -> AllocationSetting:
        try:
            body = self._call("POST", base_url, "/allocation", token=token, json={"percent": percent})
        except RuntimeUnreachable as exc:
            if " answered 400:" in str(exc):
                raise InvalidSpecError(str(exc)) from exc
            raise
        if not isinstance(body, dict) or body.get("source") not in ("spec", "controller"):
            raise RuntimeUnreachable(f"{base_url}/allocation answered {body!r:.200}, not an allocation")
        return AllocationSetting(percent=float(body["allocationPercent"]), source=body["source"])

    def performance(self, base_url: str, *, since: int, token: str | None = None) -> RuntimePerformance:
        body = self._call("GET", base_url, "/performance", token=token, params={"since": since})
        try:
            return RuntimePerformance(
                allocation_percent=float(body["allocationPercent"]),
                last_candle_ts=None if body.get("lastCandleTs") is None else int(body["lastCandleTs"]),
                periods=tuple(
                    PerformancePeriod(int(ts), float(equity), float(capital), None if ret is None else float(ret))
                    for ts, equity, capital, ret in body["periods"]
                ),
                closed_trades=int(body["closedTrades"]),
                drawdown_percent=float(body["drawdownPercent"]),
                breaker_level=int(body["breakerLevel"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RuntimeUnreachable(
                f"{base_url}/performance answered {body!r:.200}, not a performance report"
            ) from exc

    # --- end of the stand-in

    def _call(self, method: str, base_url: str, path: str, *, token: str | None, **kwargs: Any) -> Any:
        url = f"{base_url}{path}"
        if token is None and self._token_for_url is not None:
            token = self._token_for_url(base_url)
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        try:
            response = self._http.request(method, url, headers=headers, **kwargs)
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
