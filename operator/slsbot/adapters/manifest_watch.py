"""Keep the supervisor's desired state equal to its folder of YAML while it runs, as ``kubectl apply -f DIR`` would.

``ManifestWatcher`` polls the folder (every file's bytes, every ``interval`` seconds: portable, and exact where
modification times are coarse). When they changed and then stayed the same for one more poll (an editor that writes
a file in pieces is not read half-way), it re-reads the files that changed and plans what is in force with
``domain.manifests.plan_folder``: a refused file keeps its objects' last good state, a deleted file's objects are
deleted. The plan waits for the supervisor's thread.

``FolderSyncedStore`` is the supervisor loop's store with that plan applied between two passes, in the loop's own
thread, with the same ``sync_desired_objects`` as at start-up: so a reload never races a pass (a Strategy that a
pass is forgetting cannot be re-added under it); the Secrets the folder declares (``DeclaredSecrets``) are replaced
at the same moment, so an account and the Secret it names change together. After a load or a reload, once the
supervisor has reconciled every object it changed, it logs one warning per object that is not Ready, with its
status' message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from slsbot.adapters.declared_secrets import DeclaredSecrets
from slsbot.adapters.manifest_folder import digest_of, read_folder_bytes, read_manifest_file
from slsbot.adapters.sops import DEFAULT_SOPS, SopsCli
from slsbot.adapters.store import sync_desired_objects
from slsbot.adapters.supervisor_store import DesiredObject, SqlSupervisorStore
from slsbot.api.base import ObjectStatus
from slsbot.domain.errors import InvalidSpecError
from slsbot.domain.manifests import FolderPlan, ManifestFile, plan_folder
from slsbot.domain.readiness import not_ready_warning, reconciled

log = logging.getLogger("slsbot.manifests")


class ManifestWatcher:
    """Polls ``folder``; ``take()`` hands the newest plan to the supervisor's thread (``put_back`` when it could
    not be applied). ``current`` is what was loaded at start-up."""

    def __init__(
        self, folder: Path, current: FolderPlan, *, interval: float = 1.0, sops: SopsCli = DEFAULT_SOPS
    ) -> None:
        self._folder = folder
        self._sops = sops
        self._interval = interval
        self._current = dict(current.applied)
        self._seen: dict[Path, str] | str = {path: applied.digest for path, applied in current.applied.items()}
        self._last_poll: dict[Path, str] | str | None = None
        self._pending: FolderPlan | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def poll(self) -> FolderPlan | None:
        """One look at the folder. Returns the new plan (also kept for ``take``) when the folder changed and has
        settled; None otherwise."""
        try:
            contents = read_folder_bytes(self._folder)
            digests: dict[Path, str] | str = {path: digest_of(content) for path, content in contents.items()}
        except InvalidSpecError as exc:  # the folder is gone or holds no YAML: not a reason to delete everything
            contents, digests = {}, str(exc)
        settled = digests == self._last_poll
        self._last_poll = digests
        if digests == self._seen or not settled:
            return None
        self._seen = digests
        if isinstance(digests, str):
            log.warning("%s; the running objects are kept as they are", digests)
            return None
        files = [self._file(path, content, digests[path]) for path, content in contents.items()]
        plan = plan_folder(files, self._current)
        if not plan.resources:  # as at start-up: an empty folder is more likely a mistake than a wish
            log.warning(
                "%s: its YAML files hold no slsbot objects; the running objects are kept as they are", self._folder
            )
            return None
        self._current = dict(plan.applied)
        with self._lock:
            self._pending = plan
        return plan

    def _file(self, path: Path, content: bytes | OSError, digest: str) -> ManifestFile:
        unchanged = self._current.get(path)
        if unchanged is not None and unchanged.digest == digest:
            return ManifestFile(path, digest, resources=unchanged.resources, secrets=unchanged.secrets)
        return read_manifest_file(path, content, sops=self._sops)

    def take(self) -> FolderPlan | None:
        with self._lock:
            plan, self._pending = self._pending, None
        return plan

    def put_back(self, plan: FolderPlan) -> None:
        """Offer ``plan`` again at the next pass, unless a newer one is waiting."""
        with self._lock:
            if self._pending is None:
                self._pending = plan

    def start(self, stop: threading.Event) -> threading.Thread:
        def watch() -> None:
            while not stop.wait(self._interval):
                try:
                    self.poll()
                except Exception:  # the watcher's edge: a surprise is logged, the next poll tries again
                    log.exception("watching %s failed; retrying", self._folder)

        self._thread = threading.Thread(target=watch, name="manifest-watch", daemon=True)
        self._thread.start()
        return self._thread


def describe_sync(outcome: dict[str, list[str]]) -> str:
    """``{"created": [a], "changed": [b, c], ...}`` -> ``2 changed, 1 created`` (``nothing changed`` if so)."""
    parts = [f"{len(outcome[what])} {what}" for what in ("changed", "created", "deleting", "removed") if outcome[what]]
    return ", ".join(parts) or "nothing changed"


class FolderSyncedStore:
    """``SqlSupervisorStore`` with the watcher's plans applied at the start of a pass (see the module docstring)."""

    def __init__(
        self,
        store: SqlSupervisorStore,
        *,
        engine: Engine,
        watcher: ManifestWatcher | None,
        secrets: DeclaredSecrets | None = None,
        report_within: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._engine = engine
        self._watcher = watcher
        self._secrets = secrets
        self._report_within = report_within
        self._clock = clock
        self._report_by: float | None = None

    def report_when_reconciled(self) -> None:
        """Warn about objects that are not Ready once the supervisor has reconciled them (at most after
        ``report_within`` seconds, with what their status says then)."""
        self._report_by = time.monotonic() + self._report_within

    def desired_objects(self) -> list[DesiredObject]:
        plan = self._watcher.take() if self._watcher is not None else None
        if plan is not None:
            self._apply(plan)
        objects = self._store.desired_objects()
        if self._report_by is not None:
            self._report(objects)
        return objects

    def _apply(self, plan: FolderPlan) -> None:
        try:
            with Session(self._engine) as session:
                outcome = sync_desired_objects(session, resources=plan.resources, now=self._clock())
        except Exception:  # the store failed (disk full, locked): keep the plan for the next pass
            log.exception("applying the changed YAML failed; retrying at the next pass")
            if self._watcher is not None:
                self._watcher.put_back(plan)
            return
        if self._secrets is not None:
            self._secrets.replace(plan.secrets)
        for line in plan.problems:
            log.warning("refused: %s", line)
        summary = f"applied: {describe_sync(outcome)}"
        if plan.refused:
            names = ", ".join(path.name for path in sorted(plan.refused))
            summary += f"; refused: {names} (its objects keep their last good spec)"
        log.info("folder changed; %s", summary)
        self.report_when_reconciled()

    def _report(self, objects: Sequence[DesiredObject]) -> None:
        live = [o.resource for o in objects if not o.deleting]
        if not all(reconciled(r) for r in live) and time.monotonic() < (self._report_by or 0):
            return
        self._report_by = None
        for resource in live:
            warning = not_ready_warning(resource)
            if warning is not None:
                log.warning("%s", warning)

    # --- the rest of SupervisorStore, unchanged ---------------------------------------------------------------

    def record_status(self, *, kind: str, namespace: str, name: str, status: ObjectStatus) -> bool:
        return self._store.record_status(kind=kind, namespace=namespace, name=name, status=status)

    def record_events(self, *, kind: str, namespace: str, name: str, events: Sequence[Any]) -> None:
        self._store.record_events(kind=kind, namespace=namespace, name=name, events=events)

    def mark_drained(self, *, namespace: str, name: str) -> None:
        self._store.mark_drained(namespace=namespace, name=name)

    def forget(self, *, kind: str, namespace: str, name: str) -> None:
        self._store.forget(kind=kind, namespace=namespace, name=name)
