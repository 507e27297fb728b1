"""A client of a running supervisor's admin API, for the commands that call it (``slsbot get``, ``slsbot
experiment``).

The API's answers are converted at this edge into ``slsbot.domain.errors``, each message saying what to do:
nothing listening is ``BackendUnavailable``, a refused token ``PermissionDenied``, an unknown strategy or experiment
``NotFoundError``, a finished experiment ``ConflictError``. The token is sent only in the Authorization header and
never appears in an error message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from slsbot.domain.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidSpecError,
    NotFoundError,
    PermissionDenied,
    RuntimeUnreachable,
    SlsbotError,
)


class AdminApiClient:
    def __init__(self, url: str, *, token: SecretStr, token_source: str, timeout: float = 10.0) -> None:
        """``token_source`` says where the token came from (a variable, a file), for the messages."""
        self.url = url.rstrip("/")
        self._token_source = token_source
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            timeout=timeout,
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def strategies(self, *, namespace: str | None = None) -> list[dict[str, Any]]:
        return self._get("/api/v1/strategies", params={"namespace": namespace} if namespace else None)

    def strategy(self, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        path = f"/api/v1/strategies/{quote(name, safe='')}"
        return self._get(path, params={"namespace": namespace} if namespace else None)

    def experiments(self, *, namespace: str | None = None) -> list[dict[str, Any]]:
        return self._get("/api/v1/experiments", params={"namespace": namespace} if namespace else None)

    def experiment(self, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        path = f"/api/v1/experiments/{quote(name, safe='')}"
        return self._get(path, params={"namespace": namespace} if namespace else None)

    def steer_experiment(self, name: str, action: str, *, namespace: str | None = None) -> dict[str, Any]:
        """``action``: promote, abort, pause or resume (an A/B rollout; needs the operator role)."""
        path = f"/api/v1/experiments/{quote(name, safe='')}/{quote(action, safe='')}"
        return self._request("POST", path, params={"namespace": namespace} if namespace else None)

    def _get(self, path: str, *, params: dict[str, str] | None) -> Any:
        return self._request("GET", path, params=params)

    def _request(self, method: str, path: str, *, params: dict[str, str] | None) -> Any:
        try:
            response = self._http.request(method, path, params=params)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"no admin API answers at {self.url} ({type(exc).__name__}); start the supervisor with "
                "'slsbot up -f DIR', or pass the URL of a running one with --url"
            ) from None
        if response.status_code == 200:
            return response.json()
        detail = _detail(response)
        if response.status_code == 401:
            raise PermissionDenied(
                f"the admin API at {self.url} refused the token from {self._token_source} ({detail}); "
                "use the token that slsbot up printed or wrote, or pass --token-file"
            )
        raise {
            400: InvalidSpecError,
            403: PermissionDenied,
            404: NotFoundError,
            409: ConflictError,
            503: RuntimeUnreachable,
        }.get(response.status_code, SlsbotError)(detail)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"]
    return f"HTTP {response.status_code}"
