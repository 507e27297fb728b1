"""Shared fixtures: paths to the repository's committed data and examples; the secret scan of the integration tests
(tests/secret_scan.py: its ``secret_scan`` fixture registers, observes and allows)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.* (tests is not a package)

from tests.secret_scan import SecretScanPlugin, secret_scan  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SecretScanPlugin(), "slsbot-secret-scan")


__all__ = ["secret_scan"]  # the fixture, for every test


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def market_data_dir() -> Path:
    return REPO / "data" / "market"
