"""Shared fixtures: paths to the repository's committed data and examples."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def market_data_dir() -> Path:
    return REPO / "data" / "market"
