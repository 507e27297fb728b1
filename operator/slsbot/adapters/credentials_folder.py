"""A runtime's credentials folder, laid out as a Kubernetes Secret volume: one file per credential, in a folder
only the supervisor's user can enter (mode 0700), each file readable by that user only (0600).

``slsbot up`` writes it under the runtime's own state folder just before the runtime starts and removes it once the
process is gone (``LocalProcessBackend``). Files are written with ``O_NOFOLLOW`` and created with their final mode,
so a value is never readable by anyone else, not even for a moment.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def write_credentials_folder(folder: Path, files: Mapping[str, bytes]) -> None:
    """Make ``folder`` hold exactly ``files`` (name -> value). Raises OSError when it cannot."""
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(folder, FOLDER_MODE)  # mkdir's mode is masked by the umask, and an existing folder keeps its own
    for stale in folder.iterdir():
        if stale.name not in files:
            stale.unlink()
    for name, value in files.items():
        path = folder / name
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a new file gets FILE_MODE from the start, whatever the old one had
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # exactly 0600, whatever the umask
            handle.write(value)


def remove_credentials_folder(folder: Path) -> None:
    """Remove ``folder`` and what it holds; nothing when it is not there."""
    shutil.rmtree(folder, ignore_errors=True)
