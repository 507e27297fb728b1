"""What the tests of a real runtime's models under ``slsbot up`` share: the Strategy's conditions, and the runtime's own
HTTP answers (``/status``, ``/metrics``) read with the port and token ``slsbot up`` wrote beside its state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml


def condition(strategy: dict[str, Any], type_: str) -> dict[str, Any]:
    """The Strategy's condition of ``type_``; {} when it has none."""
    return next((c for c in strategy["conditions"] if c["type"] == type_), {})


def runtime_get(state_dir: Path, name: str, path: str) -> httpx.Response:
    """GET ``path`` of Strategy ``name``'s runtime (namespace default), with its control token."""
    folder = state_dir / "default" / name
    port = yaml.safe_load((folder / "runtime.yaml").read_text())["server"]["port"]
    token = (folder / "control.token").read_text().strip()
    response = httpx.get(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10, trust_env=False
    )
    response.raise_for_status()
    return response


def runtime_status(state_dir: Path, name: str) -> dict[str, Any]:
    return runtime_get(state_dir, name, "/status").json()
