"""Watching the folder of YAML: a change is read once it settled, a broken file keeps its objects, a deleted file
deletes them; the plan is applied by the supervisor loop's store between passes, and objects that are not Ready
after a (re)load are named. Real files and a real SQLite store; the supervisor pass is the real one."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from slsbot.adapters.manifest_folder import load_manifest_folder
from slsbot.adapters.manifest_watch import FolderSyncedStore, ManifestWatcher
from slsbot.adapters.store import create_store_engine, get_stored_object, sync_desired_objects
from slsbot.adapters.supervisor_store import SqlSupervisorStore
from slsbot.domain.plan import ObservedRuntime
from slsbot.domain.runtime_spec import build_runtime_config
from slsbot.services.reconcile import Catalog
from slsbot.services.supervisor import SupervisorOptions, supervise_once

NOW = datetime(2026, 1, 2, tzinfo=UTC)
ACCOUNT = "apiVersion: slsbot.io/v1alpha1\nkind: TradingAccount\nmetadata: {name: paper}\nspec: {exchange: binance}\n"
STRATEGY = """\
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: %(name)s}
spec:
  accountRef: {name: %(account)s}
  symbols: [%(symbol)s]
  ensemble: {members: [{name: sma, strategy: %(component)s}]}
"""


def strategy(name: str, symbol: str = "BTC/USDT", account: str = "paper", component: str = "sma_cross") -> str:
    return STRATEGY % {"name": name, "symbol": symbol, "account": account, "component": component}


class IdleBackend:
    """Strategies with a problem never reach the backend; the others get a runtime that is never ready."""

    def render_config(self, resolved: Any) -> Any:
        return build_runtime_config(resolved, state_path="/state/x.db", port=9000)

    def observe(self, namespace: str, name: str) -> ObservedRuntime:
        return ObservedRuntime()

    def execute(self, namespace: str, name: str, action: Any) -> None:
        pass


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "10-account.yaml").write_text(ACCOUNT)
    (folder / "30-btc.yaml").write_text(strategy("btc"))
    return folder


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_store_engine(tmp_path / "state" / "supervisor.db")
    yield engine
    engine.dispose()


def started(folder: Path, engine) -> tuple[ManifestWatcher, FolderSyncedStore]:
    """What `slsbot up` does: load, sync, then watch."""
    loaded = load_manifest_folder(folder)
    with Session(engine) as session:
        sync_desired_objects(session, resources=loaded.resources, now=NOW)
    watcher = ManifestWatcher(folder, loaded)
    return watcher, FolderSyncedStore(SqlSupervisorStore(engine), engine=engine, watcher=watcher, report_within=60)


def settled(watcher: ManifestWatcher) -> Any:
    """A change is taken on the second poll that sees it unchanged: the first only notes it."""
    assert watcher.poll() is None
    return watcher.poll()


def stored(engine, kind: str, name: str) -> Any:
    with Session(engine) as session:
        return get_stored_object(session, kind=kind, namespace="default", name=name)


def test_nothing_changed_is_no_plan_even_when_a_file_is_rewritten_as_it_was(folder: Path, engine) -> None:
    watcher, _ = started(folder, engine)
    (folder / "30-btc.yaml").write_text(strategy("btc"))
    assert watcher.poll() is None and watcher.poll() is None and watcher.take() is None


def test_an_edit_and_an_addition_apply_and_bump_only_the_changed_spec(folder: Path, engine, caplog) -> None:
    watcher, store = started(folder, engine)
    (folder / "30-btc.yaml").write_text(strategy("btc", symbol="ETH/USDT"))
    (folder / "31-sol.yaml").write_text(strategy("sol", symbol="SOL/USDT"))
    (folder / "10-account.yaml").write_text("# a comment only\n" + ACCOUNT)
    assert watcher.poll() is None  # written a moment ago: maybe not finished
    plan = watcher.poll()
    assert [r.name for r in plan.resources] == ["paper", "btc", "sol"]
    assert stored(engine, "Strategy", "btc").generation == 1  # nothing applied outside the loop's thread
    with caplog.at_level(logging.INFO, logger="slsbot.manifests"):
        store.desired_objects()
    assert stored(engine, "Strategy", "btc").generation == 2
    assert stored(engine, "Strategy", "sol").generation == 1
    assert stored(engine, "TradingAccount", "paper").generation == 1
    assert "folder changed; applied: 1 changed, 1 created" in caplog.text


def test_a_broken_file_is_reported_and_its_objects_keep_their_last_good_spec(folder: Path, engine, caplog) -> None:
    watcher, store = started(folder, engine)
    before = stored(engine, "Strategy", "btc")
    (folder / "30-btc.yaml").write_text(strategy("btc", symbol="btc-usdt"))
    (folder / "31-sol.yaml").write_text(strategy("sol", symbol="SOL/USDT"))
    assert settled(watcher) is not None
    with caplog.at_level(logging.INFO, logger="slsbot.manifests"):
        objects = store.desired_objects()
    assert {o.resource.name for o in objects} == {"paper", "btc", "sol"}
    after = stored(engine, "Strategy", "btc")
    assert (after.generation, after.document, after.deleting) == (before.generation, before.document, False)
    bad = folder / "30-btc.yaml"
    assert f"refused: {bad}, document 1 (Strategy btc): spec.symbols[0]: String should match pattern" in caplog.text
    assert "applied: 1 created; refused: 30-btc.yaml (its objects keep their last good spec)" in caplog.text
    assert "btc-usdt" not in caplog.text  # the value itself is not echoed


def test_a_deleted_file_deletes_its_objects_and_a_strategy_drains(folder: Path, engine, caplog) -> None:
    watcher, store = started(folder, engine)
    (folder / "30-btc.yaml").unlink()
    assert settled(watcher) is not None
    with caplog.at_level(logging.INFO, logger="slsbot.manifests"):
        store.desired_objects()
    assert stored(engine, "Strategy", "btc").deleting is True  # the loop drains and stops it, then forgets it
    assert "applied: 1 deleting" in caplog.text


def test_an_emptied_or_missing_folder_changes_nothing(folder: Path, engine, caplog) -> None:
    watcher, store = started(folder, engine)
    for path in folder.iterdir():
        path.unlink()
    with caplog.at_level(logging.WARNING, logger="slsbot.manifests"):
        assert settled(watcher) is None
    assert "no *.yaml or *.yml files in it; the running objects are kept as they are" in caplog.text
    (folder / "10-account.yaml").write_text("# nothing here any more\n")
    with caplog.at_level(logging.WARNING, logger="slsbot.manifests"):
        assert settled(watcher) is None
    assert "its YAML files hold no slsbot objects; the running objects are kept as they are" in caplog.text
    (folder / "10-account.yaml").unlink()
    folder.rmdir()
    assert settled(watcher) is None
    assert watcher.take() is None
    assert {o.resource.name for o in store.desired_objects()} == {"paper", "btc"}


def test_objects_that_are_not_ready_are_named_once_the_pass_reconciled_them(folder: Path, engine, caplog) -> None:
    watcher, store = started(folder, engine)
    (folder / "31-eth.yaml").write_text(strategy("eth", account="paper-binanc"))
    (folder / "32-sol.yaml").write_text(strategy("sol", component="sma_crosss"))
    assert settled(watcher) is not None
    options = SupervisorOptions(catalog=Catalog(known_exchanges={"binance"}, known_components={"sma_cross"}))
    with caplog.at_level(logging.INFO, logger="slsbot.manifests"):
        supervise_once(store=store, backend=IdleBackend(), now=NOW, options=options)  # applies, then reconciles
        assert "not ready" not in caplog.text  # not before the pass has reconciled them
        supervise_once(store=store, backend=IdleBackend(), now=NOW, options=options)
        supervise_once(store=store, backend=IdleBackend(), now=NOW, options=options)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Strategy default/eth is not ready (WaitingForDependency): spec.accountRef.name: TradingAccount "
        "'paper-binanc' does not exist",
        "Strategy default/sol is not ready (InvalidSpec): spec.ensemble.members[sma].strategy: 'sma_crosss' is not "
        "a known component; use one of sma_cross",
    ]  # btc is starting (Progressing): no warning; and each is named once, not on every pass
