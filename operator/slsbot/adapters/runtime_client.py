"""HTTP calls to one bot runtime's control endpoints (the contract of ``slsbot runtime``'s server):

``GET /healthz`` (200 while the loop ticks; 503 with a reason when it does not), ``GET /readyz`` (200 once warmed up
and reconciled, or drained), ``GET /status``, ``GET /orders?limit=N``,
``POST /pause``, ``POST /resume``, ``POST /shutdown`` with ``{"cancelOrders": bool, "flatten": bool}``,
``POST /allocation`` with ``{"percent": 0..100 or null}`` and ``GET /performance?since=<ms>`` (the A/B controller's),
``POST /trading-mode`` with ``{"mode": "normal"|"safe"|"halted", "flatten": bool, "reason": str}`` (the healing
ladder's).
``POST /headroom`` with an account or global headroom (``domain.account_risk.Headroom.body``).

Every call but the probes (``/healthz``, ``/readyz``) carries ``Authorization: Bearer <token>``: the runtime's own token
(``control_tokens.ControlKey.token_for``), passed per call by the backends; a client built with
``token_for_url`` finds it from the runtime's URL instead (the admin API, which knows only the URL). While the
control key rotates, a call carries the tokens to try in order (``ControlKeys.tokens_for``: the new key's, then the
previous key's): a 401 to the first is retried once with the next, for a runtime that has not read its new token
yet. A 401 means the runtime did nothing, so the retry cannot do a thing twice.

httpx errors are converted here into ``RuntimeUnreachable``, whose message names the runtime's URL and the cause
(never the token). A 400 to ``POST /allocation`` is ``InvalidSpecError``: the runtime refused the value, naming the
field, and changed nothing; asking again will not help.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from slsbot.api.health import TradingMode
from slsbot.domain.errors import InvalidSpecError, RuntimeUnreachable, SlsbotError
from slsbot.domain.runtime_performance import AllocationSetting, PerformancePeriod, RuntimePerformance

#: How long ``POST /trading-mode`` may take: the runtime persists the mode before it answers, and a halt cancels its
#: open orders (and flattens) first.
TRADING_MODE_TIMEOUT_S = 20.0
#: How long ``POST /allocation`` may take: the runtime's loop writes it to its state file first, and gives up (503,
#: nothing changed) when it cannot take it within 10 s.
ALLOCATION_TIMEOUT_S = 20.0
#: ``POST /headroom`` as ``/allocation``, plus the kill switch's flatten (a real exchange is asked up to 30 s).
HEADROOM_TIMEOUT_S = 50.0


#: The token(s) of one call: one, or several to try in order (a rotation's new token, then the previous one).
Tokens = str | Sequence[str] | None


@dataclass(frozen=True, slots=True)
class Health:
    """One ``/healthz`` probe: whether anything answered, whether it said healthy, and why not."""

    answered: bool
    healthy: bool
    reason: str


class RuntimeHttpClient:
    """One connection pool for every runtime on this machine; ``base_url`` is passed per call."""

    def __init__(self, *, timeout: float, token_for_url: Callable[[str], Tokens] | None = None) -> None:
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

    def status(self, base_url: str, *, token: Tokens = None) -> dict[str, Any]:
        body = self._call("GET", base_url, "/status", token=token)
        if not isinstance(body, dict):
            raise RuntimeUnreachable(f"{base_url}/status answered {type(body).__name__}, not a JSON object")
        return body

    def orders(self, base_url: str, *, limit: int, token: Tokens = None) -> list[dict[str, Any]]:
        body = self._call("GET", base_url, "/orders", token=token, params={"limit": limit})
        if isinstance(body, dict) and isinstance(body.get("orders"), list):
            body = body["orders"]
        if not isinstance(body, list):
            raise RuntimeUnreachable(f"{base_url}/orders answered {type(body).__name__}, not a JSON list")
        return body

    def activity(self, base_url: str, *, limit: int, token: Tokens = None) -> dict[str, Any]:
        """``GET /activity``: the runtime's equity curve, newest trades and risk decisions, and its breaker."""
        body = self._call("GET", base_url, "/activity", token=token, params={"limit": limit})
        if not isinstance(body, dict):
            raise RuntimeUnreachable(f"{base_url}/activity answered {type(body).__name__}, not a JSON object")
        return body

    def set_paused(self, base_url: str, *, paused: bool, token: Tokens = None) -> None:
        self._call("POST", base_url, "/pause" if paused else "/resume", token=token)

    def shutdown(self, base_url: str, *, cancel_orders: bool, flatten: bool, token: Tokens = None) -> None:
        body = {"cancelOrders": cancel_orders, "flatten": flatten}
        self._call("POST", base_url, "/shutdown", token=token, json=body)

    def set_allocation(self, base_url: str, *, percent: float | None, token: Tokens = None) -> AllocationSetting:
        """Trade with ``percent`` (0..100) of the account's capital from the runtime's next candle on; ``None`` goes
        back to the Strategy's ``allocationPercent``. Returns once the runtime has written it to its state file.
        InvalidSpecError for a value it refuses; RuntimeUnreachable when it cannot be asked or cannot apply it."""
        body = self._call(
            "POST",
            base_url,
            "/allocation",
            token=token,
            json={"percent": percent},
            timeout=max(self._http.timeout.read or 0.0, ALLOCATION_TIMEOUT_S),
            refused=InvalidSpecError,
        )
        where = f"{base_url}/allocation"
        if not isinstance(body, dict) or body.get("source") not in ("spec", "controller"):
            raise RuntimeUnreachable(f"{where} answered {body!r:.200}, not an allocation")
        return AllocationSetting(percent=_number(body.get("allocationPercent"), where), source=body["source"])

    def set_trading_mode(
        self, base_url: str, *, mode: TradingMode, flatten: bool, reason: str, token: Tokens = None
    ) -> TradingMode:
        """What the runtime may do from now on: ``normal``, ``safe`` (no new entries, orders reduce-only) or
        ``halted`` (orders cancelled, positions flattened when ``flatten``, no orders at all). Returns the mode the
        runtime answered, once it has persisted it. InvalidSpecError when it refuses the body (it changed nothing);
        RuntimeUnreachable when it cannot be asked, or answers another mode."""
        body = self._call(
            "POST",
            base_url,
            "/trading-mode",
            token=token,
            json={"mode": str(mode), "flatten": flatten, "reason": reason[:500]},
            timeout=max(self._http.timeout.read or 0.0, TRADING_MODE_TIMEOUT_S),
            refused=InvalidSpecError,
        )
        where = f"{base_url}/trading-mode"
        answered = body.get("trading_mode") if isinstance(body, dict) else None
        if answered != str(mode):
            raise RuntimeUnreachable(f"{where} answered {body!r:.200}, not trading mode {mode}")
        return mode

    def push_headroom(self, base_url: str, *, body: dict[str, Any], token: Tokens = None) -> dict[str, Any]:
        """Enforce an account or global headroom (``POST /headroom``); returns once the runtime wrote it to its state
        file (and, with the kill switch, cancelled and flattened), with the headroom as it shows it. InvalidSpecError
        for a body it refuses (naming the field); RuntimeUnreachable when it cannot be asked or cannot apply it."""
        answer = self._call(
            "POST",
            base_url,
            "/headroom",
            token=token,
            json=body,
            timeout=max(self._http.timeout.read or 0.0, HEADROOM_TIMEOUT_S),
            refused=InvalidSpecError,
        )
        if not isinstance(answer, dict) or "expired" not in answer:
            raise RuntimeUnreachable(f"{base_url}/headroom answered {answer!r:.200}, not a headroom")
        return answer

    def performance(self, base_url: str, *, since: int, token: Tokens = None) -> RuntimePerformance:
        """The runtime's periods after ``since`` (ms UTC), its round trips closed since then and its risk figures."""
        body = self._call("GET", base_url, "/performance", token=token, params={"since": since})
        where = f"{base_url}/performance"
        if not isinstance(body, dict) or not isinstance(body.get("periods"), list):
            raise RuntimeUnreachable(f"{where} answered {body!r:.200}, not a performance report")
        periods = []
        for row in body["periods"]:
            if not (isinstance(row, list) and len(row) == 4 and isinstance(row[0], int)):
                raise RuntimeUnreachable(f"{where} answered a period {row!r:.200}, not [ts, equity, capital, return]")
            ret = None if row[3] is None else _number(row[3], where)
            periods.append(PerformancePeriod(row[0], _number(row[1], where), _number(row[2], where), ret))
        last = body.get("lastCandleTs")
        if last is not None and not isinstance(last, int):
            raise RuntimeUnreachable(f"{where} answered lastCandleTs {last!r:.50}, not a time in ms")
        return RuntimePerformance(
            allocation_percent=_number(body.get("allocationPercent"), where),
            last_candle_ts=last,
            periods=tuple(periods),
            closed_trades=int(_number(body.get("closedTrades"), where)),
            drawdown_percent=_number(body.get("drawdownPercent"), where),
            breaker_level=int(_number(body.get("breakerLevel"), where)),
        )

    def _call(
        self,
        method: str,
        base_url: str,
        path: str,
        *,
        token: Tokens,
        refused: type[SlsbotError] = RuntimeUnreachable,
        **kwargs: Any,
    ) -> Any:
        """``refused``: what a 400 (the runtime refused the request, naming the field) raises."""
        url = f"{base_url}{path}"
        if token is None and self._token_for_url is not None:
            token = self._token_for_url(base_url)
        tokens: tuple[str | None, ...] = (token,) if token is None or isinstance(token, str) else tuple(token)
        for attempt, bearer in enumerate(tokens or (None,), start=1):
            headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
            try:
                response = self._http.request(method, url, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                raise RuntimeUnreachable(f"{method} {url} failed: {type(exc).__name__}: {exc}") from exc
            if response.status_code != 401 or attempt >= len(tokens):
                break  # a 401 (nothing done) to the new token: the runtime may not have read it yet
        if response.status_code == 400:
            raise refused(f"{method} {url} refused: {_error_text(response)}")
        if response.status_code >= 400:
            raise RuntimeUnreachable(f"{method} {url} answered {response.status_code}: {response.text[:200]}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise RuntimeUnreachable(f"{method} {url} did not answer JSON") from exc


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuntimeUnreachable(f"{where} answered {value!r:.50} where a number belongs")
    return float(value)


def _error_text(response: httpx.Response) -> str:
    """The runtime's ``{"error": ...}`` (it names the field), or the start of whatever else it sent."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("error"))[:500] if isinstance(body, dict) and body.get("error") else response.text[:200]
