"""Where the browser tests find a Chromium, how they start it, and where they keep their screenshots.

Debian's ``chromium`` (``make browser`` installs it when run as root), or the path in ``SLSBOT_CHROMIUM``; Playwright's
own browser download is not used. Screenshots go to ``SLSBOT_TEST_ARTIFACTS`` (default ``test-artifacts/`` in the
repository, ignored by git; CI uploads it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
NO_CHROMIUM = (
    "no Chromium found (chromium, chromium-browser or google-chrome on PATH, or SLSBOT_CHROMIUM): "
    "run 'make browser' as root, or 'apt-get install chromium'"
)


def find_chromium() -> str | None:
    configured = os.environ.get("SLSBOT_CHROMIUM")
    if configured:
        return configured
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def artifacts_dir(name: str) -> Path:
    """A folder for one test's screenshots, emptied first."""
    root = Path(os.environ.get("SLSBOT_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder = root / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
