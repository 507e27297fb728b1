"""The local supervisor's database: SQLModel over one SQLite file.

Six entities, each with its model family as in full-stack-fastapi-template (``XBase`` shared fields,
``X(table=True)`` the row, ``XPublic`` what the admin API returns):

- ``StoredObject``: the desired state, one row per loaded object (its YAML document, a generation bumped when
  the spec changes, a Strategy's ``paused`` override and an A/B Experiment's controls (``paused``, ``abort``,
  ``promote``) set through the admin API, its status, and the deletion flags);
- ``RuntimeRecord``: the observed state of one strategy's runtime process (pid, port, restarts, heartbeat...);
- ``EventRecord``: Kubernetes-style events, repeated ones aggregated with a count;
- ``AuditRecord``: every authenticated mutating request to a real route of the admin API: who (a role and token
  id, never the token), what (the method and the route's template), on what, when, and the result; each field
  bounded; each record chained to the one before by its hash (``domain.audit_chain``), from the ``AuditAnchor``
  retention left (``prune_audit``);
- ``RefusedRequestCount``: requests the admin API refused before knowing who sent them (no or an unknown token,
  or a mutating request to no route), counted per method, route template and status, never stored one by one;
- ``IncidentRecord``: one incident (``domain.incidents.Incident``), its filterable fields as columns and the whole
  record as a JSON document.

Repository functions take the session first and everything else by keyword; no session is kept anywhere: the
caller opens one per unit of work (``with Session(engine) as session``). Every datetime is stored and returned in UTC.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, UniqueConstraint, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, col, create_engine, delete, select, update

from slsbot.api import Resource
from slsbot.domain.admin_data import EXPERIMENT_CONTROLS, KILL_SWITCH, resource_of
from slsbot.domain.audit_chain import (
    GENESIS,
    ZERO_HASH,
    AuditFields,
    ChainAnchor,
    ChainedRecord,
    ChainVerdict,
    next_id,
    record_hash,
    verify_chain,
)
from slsbot.domain.errors import ConflictError, NotFoundError, SlsbotError


class UTCDateTime(TypeDecorator):
    """SQLite keeps no time zone: store naive UTC, hand back aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("datetimes written to the store must carry a time zone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _utc_field(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


# --- desired state ------------------------------------------------------------------------------------------


class StoredObjectBase(SQLModel):
    kind: str = Field(index=True)
    namespace: str = Field(index=True)
    name: str = Field(index=True)
    generation: int = 1
    paused_override: bool | None = None
    # An Experiment's A/B controls set through the admin API ({"paused": .., "abort": .., "promote": ..}), or a
    # RiskPolicy's kill switch ({"killSwitch": ..}), layered over its YAML spec as ``paused_override`` is over a
    # Strategy's; None when none was set.
    controls_override: dict | None = Field(default=None, sa_type=JSON)
    deleting: bool = False
    drained: bool = False
    # "Kind/name" of the object (same namespace) a controller created this one for; None for objects from the
    # manifest folder. Owned objects are left alone by the folder's sync and deleted with their owner.
    owner: str | None = None


class StoredObject(StoredObjectBase, table=True):
    __tablename__ = "stored_object"
    __table_args__ = (UniqueConstraint("kind", "namespace", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    spec_hash: str
    # The spec hash of the manifest as last applied from the folder; differs from ``spec_hash`` after a controller
    # replaced the spec (an A/B promotion), and the folder's copy only wins again when the file itself changes.
    applied_hash: str | None = None
    document: dict = Field(sa_type=JSON)
    status: dict | None = Field(default=None, sa_type=JSON)
    created_at: datetime = _utc_field()
    updated_at: datetime = _utc_field()
    deleting_since: datetime | None = _utc_field(default=None)

    def as_resource(self) -> Resource[Any, Any]:
        """The API object with the stored generation and status, and the ``paused`` override applied."""
        return resource_of(
            self.kind,
            self.document,
            generation=self.generation,
            created_at=self.created_at,
            status=self.status,
            owner=self.owner,
            paused_override=self.paused_override,
            controls_override=self.controls_override,
        )


class StoredObjectPublic(StoredObjectBase):
    document: dict
    status: dict | None
    created_at: datetime
    updated_at: datetime


# --- observed state -----------------------------------------------------------------------------------------


class RuntimeRecordBase(SQLModel):
    namespace: str = Field(index=True)
    name: str = Field(index=True)
    pid: int | None = None  # None when no process runs
    port: int | None = None
    config_hash: str | None = None
    restarts: int = 0
    consecutive_failures: int = 0
    exit_code: int | None = None
    exited_at: datetime | None = _utc_field(default=None)  # set when a crash was seen, cleared on start
    started_at: datetime | None = _utc_field(default=None)
    last_heartbeat: datetime | None = _utc_field(default=None)
    last_error: str | None = Field(default=None, max_length=1024)  # how the last run ended, e.g. "exit code 2: ..."


class RuntimeRecord(RuntimeRecordBase, table=True):
    __tablename__ = "runtime_record"
    __table_args__ = (UniqueConstraint("namespace", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    config_path: str | None = None
    log_path: str | None = None
    stopping: bool = False
    stop_requested_at: datetime | None = _utc_field(default=None)
    ready_since_start: bool = False
    answered_since_start: bool = False  # /healthz answered healthy at least once since the last start
    unresponsive_since: datetime | None = _utc_field(default=None)  # healthy before, silent or unhealthy since
    last_status: dict | None = Field(default=None, sa_type=JSON)
    updated_at: datetime | None = _utc_field(default=None)


class RuntimeRecordPublic(RuntimeRecordBase):
    last_status: dict | None


# --- events and audit ---------------------------------------------------------------------------------------


class EventBase(SQLModel):
    kind: str
    namespace: str = Field(index=True)
    name: str = Field(index=True)
    type: str  # Normal or Warning
    reason: str
    message: str
    count: int = 1
    first_seen: datetime = _utc_field()
    last_seen: datetime = _utc_field(index=True)


class EventRecord(EventBase, table=True):
    __tablename__ = "event_record"

    id: int | None = Field(default=None, primary_key=True)


class EventPublic(EventBase):
    id: int


# The audit trail's fields are bounded, whoever calls ``record_audit``: a request cannot grow the database by more
# than one row of at most this many characters, however long its path, its names or its error message.
AUDIT_FIELD_LIMITS = {"actor": 64, "action": 160, "target": 300, "result": 500}
#: The route of a refused request that matched none (its raw path is never stored).
NO_ROUTE = "(no route)"


def bounded(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class AuditBase(SQLModel):
    at: datetime = _utc_field(index=True)
    actor: str  # e.g. "operator:3fa1b2c4": the role and a token id, never the token
    action: str  # e.g. "POST /api/v1/strategies/{name}/pause": the method and the route's template
    target: str | None = None  # e.g. "Strategy default/btc-trend"
    result: str  # e.g. "200" or "403 operator:... may not do this: it needs the operator role"


class AuditRecord(AuditBase, table=True):
    __tablename__ = "audit_record"

    id: int | None = Field(default=None, primary_key=True)
    # The hash chain (domain.audit_chain): the hash of the record before (or of the anchor), and this one's.
    prev_hash: str | None = Field(default=None, max_length=64)
    hash: str | None = Field(default=None, max_length=64)


class AuditAnchor(SQLModel, table=True):
    """Where the audit chain starts once retention removed its oldest records: the id and hash of the last record
    removed (one row, id 1). No row: the chain starts at ``domain.audit_chain.GENESIS``."""

    __tablename__ = "audit_anchor"

    id: int | None = Field(default=None, primary_key=True)
    last_id: int
    hash: str = Field(max_length=64)
    pruned: int = 0  # records removed by retention, in all
    updated_at: datetime = _utc_field()


class AuditPublic(AuditBase):
    id: int
    prev_hash: str | None = None  # the hash chain (``slsbot audit verify`` checks it)
    hash: str | None = None


class RefusedRequestBase(SQLModel):
    method: str  # POST, GET, ... or OTHER
    route: str  # the route's template, e.g. "/api/v1/strategies/{name}/pause", or NO_ROUTE
    status: int  # 401, 404, 405
    count: int = 0
    first_seen: datetime = _utc_field()
    last_seen: datetime = _utc_field()


class RefusedRequestCount(RefusedRequestBase, table=True):
    __tablename__ = "refused_request_count"
    __table_args__ = (UniqueConstraint("method", "route", "status"),)

    id: int | None = Field(default=None, primary_key=True)


class RefusedRequestPublic(RefusedRequestBase):
    pass


class AuditChainBroken(SlsbotError):
    """The audit trail's hash chain is broken (a record was changed, removed or moved): nothing that would hide the
    break (pruning) is done. Run ``slsbot audit verify`` to see the first broken record."""


# --- incidents ----------------------------------------------------------------------------------------------


class IncidentRecord(SQLModel, table=True):
    __tablename__ = "incident_record"

    id: str = Field(primary_key=True, max_length=64)
    namespace: str = Field(index=True)
    severity: int = Field(index=True)
    state: str = Field(index=True)  # open, acknowledged, resolved
    cause: str = Field(index=True)
    opened_at: datetime = _utc_field(index=True)
    document: dict = Field(sa_type=JSON)  # the Incident, as its wire form


# --- engine -------------------------------------------------------------------------------------------------


def create_store_engine(path: Path) -> Engine:
    """An engine on ``path`` (created with its folder and tables when missing), WAL mode, shared by threads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    SQLModel.metadata.create_all(engine)
    _add_missing_columns(engine)
    with Session(engine) as session:  # records written before the chain existed (or by an older slsbot) join it
        _begin_immediate(session)
        _chain_unchained_audit(session)
        session.commit()
    return engine


def open_existing_store(path: Path) -> Engine:
    """An engine on the store at ``path`` as it is: nothing created, nothing migrated (for ``slsbot audit``, which
    only reads). Raises ``StoreNotFound`` when there is no store there, or one without the audit chain."""
    if not path.is_file():
        raise StoreNotFound(f"no store at {path}: give the state folder of a supervisor (--state-dir)")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
    with engine.connect() as connection:
        columns = {row[1] for row in connection.exec_driver_sql("PRAGMA table_info(audit_record)")}
    if "hash" not in columns:
        engine.dispose()
        raise StoreNotFound(
            f"{path} has no audit chain: it was written by an slsbot from before the chain; start slsbot up on this "
            "state folder once to chain its records"
        )
    return engine


class StoreNotFound(SlsbotError):
    """No store where one was expected, or one this slsbot cannot read yet; the message says what to do."""


# Columns added after the first release of a table: (table, column, SQL type). Additive only, so a state
# folder written by an older slsbot keeps working; create_all never alters an existing table.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("stored_object", "deleting_since", "DATETIME"),
    ("runtime_record", "last_error", "VARCHAR"),
    ("runtime_record", "answered_since_start", "BOOLEAN NOT NULL DEFAULT 0"),
    ("runtime_record", "unresponsive_since", "DATETIME"),
    ("stored_object", "owner", "VARCHAR"),
    ("stored_object", "applied_hash", "VARCHAR"),
    ("stored_object", "controls_override", "JSON"),
    ("audit_record", "prev_hash", "VARCHAR(64)"),
    ("audit_record", "hash", "VARCHAR(64)"),
)


def _add_missing_columns(engine: Engine) -> None:
    with engine.begin() as connection:
        for table, column, sql_type in _ADDED_COLUMNS:
            present = {row[1] for row in connection.exec_driver_sql(f"PRAGMA table_info({table})")}
            if column not in present:
                connection.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")


def spec_hash(resource: Resource[Any, Any]) -> str:
    """What bumps the generation: the spec, as in Kubernetes (metadata and status do not)."""
    payload = json.dumps(resource.spec.to_wire(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# --- desired state repository -------------------------------------------------------------------------------


def sync_desired_objects(
    session: Session, *, resources: Sequence[Resource[Any, Any]], now: datetime
) -> dict[str, list[str]]:
    """Make the stored desired state the loaded ``resources``: insert new objects, bump the generation of
    changed ones, and remove vanished ones (strategies are only marked ``deleting``, so their runtime is
    drained and stopped first). Objects a controller owns (``owner``) are not the folder's: they stay while their
    owner does and go with it. A spec a controller replaced (an A/B promotion) stays until the file's own spec
    changes. Returns the keys ("Kind ns/name") per outcome. Commits."""
    outcome: dict[str, list[str]] = {"created": [], "changed": [], "unchanged": [], "deleting": [], "removed": []}
    seen: set[tuple[str, str, str]] = set()
    for resource in resources:
        key = (resource.kind, resource.namespace, resource.name)
        seen.add(key)
        label = f"{resource.kind} {resource.namespace}/{resource.name}"
        document, digest = _desired_document(resource)
        row = get_stored_object(session, kind=resource.kind, namespace=resource.namespace, name=resource.name)
        if row is None:
            session.add(_new_row(resource, document, digest, now, applied_hash=digest))
            outcome["created"].append(label)
            continue
        replaced_by_controller = row.applied_hash is not None and row.applied_hash != row.spec_hash
        if replaced_by_controller and row.applied_hash == digest and not row.deleting:
            outcome["unchanged"].append(label)  # the file did not change since: the controller's spec stands
            continue
        changed = row.spec_hash != digest
        if changed:
            row.generation += 1
        if changed or row.document != document or row.deleting or row.owner is not None or row.applied_hash != digest:
            row.spec_hash = digest
            row.applied_hash = digest
            row.document = document
            row.owner = None  # a file that names the object makes it the folder's
            row.deleting = False
            row.drained = False
            row.deleting_since = None
            row.updated_at = now
            session.add(row)
        outcome["changed" if changed else "unchanged"].append(label)
    rows = session.exec(select(StoredObject)).all()
    alive = _alive_with_owners(rows, seen)
    for row in rows:
        if (row.kind, row.namespace, row.name) not in alive:
            _remove(session, row, now, outcome)
    session.commit()
    return outcome


def _alive_with_owners(rows: Sequence[StoredObject], roots: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """``roots`` and every object owned, directly or through others, by one of them (and not being deleted)."""
    alive = set(roots)
    grew = True
    while grew:
        grew = False
        for row in rows:
            key = (row.kind, row.namespace, row.name)
            if key not in alive and row.owner is not None and not row.deleting and _owner_key(row) in alive:
                alive.add(key)
                grew = True
    return alive


def _desired_document(resource: Resource[Any, Any]) -> tuple[dict[str, Any], str]:
    """What the store keeps of a desired object (its document without status) and its spec hash."""
    document = resource.to_wire()
    document.pop("status", None)
    return document, spec_hash(resource)


def _new_row(
    resource: Resource[Any, Any],
    document: dict[str, Any],
    digest: str,
    now: datetime,
    *,
    applied_hash: str | None = None,
    owner: str | None = None,
) -> StoredObject:
    return StoredObject(
        kind=resource.kind,
        namespace=resource.namespace,
        name=resource.name,
        generation=1,
        spec_hash=digest,
        applied_hash=applied_hash,
        document=document,
        owner=owner,
        created_at=now,
        updated_at=now,
    )


def _owner_key(row: StoredObject) -> tuple[str, str, str]:
    kind, _, name = (row.owner or "").partition("/")
    return (kind, row.namespace, name)


def _remove(session: Session, row: StoredObject, now: datetime, outcome: dict[str, list[str]] | None = None) -> None:
    """Strategies are marked ``deleting`` (their runtime drains first); anything else goes at once."""
    label = f"{row.kind} {row.namespace}/{row.name}"
    if row.kind == "Strategy":
        if not row.deleting:
            row.deleting = True
            row.deleting_since = now
            row.updated_at = now
            session.add(row)
        if outcome is not None:
            outcome["deleting"].append(label)
    else:
        session.delete(row)
        if outcome is not None:
            outcome["removed"].append(label)


def apply_owned_object(session: Session, *, resource: Resource[Any, Any], owner: str, now: datetime) -> None:
    """Create ``resource`` owned by ``owner`` ("Kind/name", same namespace), or replace its spec when ``owner``
    owns it already. Raises ConflictError when an object of that name exists and is not ``owner``'s. Commits."""
    document, digest = _desired_document(resource)
    row = get_stored_object(session, kind=resource.kind, namespace=resource.namespace, name=resource.name)
    if row is None:
        session.add(_new_row(resource, document, digest, now, owner=owner))
    else:
        if row.owner != owner:
            raise ConflictError(
                f"{resource.kind} {resource.namespace}/{resource.name} exists and is not owned by {owner}; "
                "rename it or delete it"
            )
        if row.spec_hash != digest or row.deleting:
            if row.spec_hash != digest:
                row.generation += 1
            row.spec_hash = digest
            row.document = document
            row.deleting = False
            row.drained = False
            row.deleting_since = None
            row.updated_at = now
            session.add(row)
    session.commit()


def replace_object_spec(session: Session, *, resource: Resource[Any, Any], now: datetime) -> None:
    """Write ``resource.spec`` over the stored object's (its generation moves on); the folder's copy only wins
    again when its file changes (``applied_hash``). Raises NotFoundError when it is not stored. Commits."""
    row = get_stored_object(session, kind=resource.kind, namespace=resource.namespace, name=resource.name)
    if row is None or row.deleting:
        raise NotFoundError(f"{resource.kind} {resource.namespace}/{resource.name} is not there to change")
    digest = spec_hash(resource)
    if row.spec_hash == digest:
        return
    if row.applied_hash is None and row.owner is None:
        row.applied_hash = row.spec_hash  # stored before applied_hash existed: it came from the folder
    row.document = {**row.document, "spec": resource.spec.to_wire()}
    row.spec_hash = digest
    row.generation += 1
    row.updated_at = now
    session.add(row)
    session.commit()


def delete_object(session: Session, *, kind: str, namespace: str, name: str, now: datetime) -> None:
    """Delete an object and what it owns (a Strategy is marked ``deleting`` and drained first). Commits."""
    row = get_stored_object(session, kind=kind, namespace=namespace, name=name)
    if row is None:
        return
    _remove_owned(session, kind=kind, namespace=namespace, name=name, now=now)
    _remove(session, row, now)
    session.commit()


def _remove_owned(session: Session, *, kind: str, namespace: str, name: str, now: datetime) -> None:
    owned = session.exec(
        select(StoredObject).where(StoredObject.namespace == namespace, StoredObject.owner == f"{kind}/{name}")
    ).all()
    for child in owned:
        _remove_owned(session, kind=child.kind, namespace=namespace, name=child.name, now=now)
        _remove(session, child, now)


def get_stored_object(session: Session, *, kind: str, namespace: str, name: str) -> StoredObject | None:
    query = select(StoredObject).where(
        StoredObject.kind == kind, StoredObject.namespace == namespace, StoredObject.name == name
    )
    return session.exec(query).first()


def list_stored_objects(
    session: Session, *, kind: str | None = None, namespace: str | None = None, name: str | None = None
) -> list[StoredObject]:
    query = select(StoredObject)
    if kind is not None:
        query = query.where(StoredObject.kind == kind)
    if namespace is not None:
        query = query.where(StoredObject.namespace == namespace)
    if name is not None:
        query = query.where(StoredObject.name == name)
    return list(session.exec(query.order_by(col(StoredObject.namespace), col(StoredObject.name))).all())


def set_paused_override(session: Session, *, namespace: str, name: str, paused: bool, now: datetime) -> StoredObject:
    """Layer ``paused`` over the Strategy's YAML spec; it survives restarts of the supervisor. Commits."""
    row = get_stored_object(session, kind="Strategy", namespace=namespace, name=name)
    if row is None or row.deleting:
        raise NotFoundError(f"Strategy {namespace}/{name} does not exist")
    row.paused_override = paused
    row.updated_at = now
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def set_experiment_control(
    session: Session, *, namespace: str, name: str, control: str, value: bool, now: datetime
) -> StoredObject:
    """Layer ``spec.<control> = value`` over the Experiment's YAML spec; it survives restarts of the supervisor.
    The generation moves on (the spec in force changed), so the controller's next look is at once. Commits."""
    if control not in EXPERIMENT_CONTROLS:
        raise ValueError(f"{control!r} is not one of {', '.join(EXPERIMENT_CONTROLS)}")
    return _override_spec_field(
        session, kind="Experiment", namespace=namespace, name=name, field=control, value=value, now=now
    )


def set_kill_switch_override(session: Session, *, namespace: str, name: str, on: bool, now: datetime) -> StoredObject:
    """Layer ``spec.killSwitch = on`` over the RiskPolicy's YAML spec; it survives restarts of the supervisor and
    changes of the file. The generation moves on (the spec in force changed), so the next pass acts on it. Commits."""
    return _override_spec_field(
        session, kind="RiskPolicy", namespace=namespace, name=name, field=KILL_SWITCH, value=on, now=now
    )


def _override_spec_field(
    session: Session, *, kind: str, namespace: str, name: str, field: str, value: bool, now: datetime
) -> StoredObject:
    """Layer ``spec.<field> = value`` over the stored object's YAML spec (``controls_override``), moving its
    generation on when that changes what is in force. Commits."""
    row = get_stored_object(session, kind=kind, namespace=namespace, name=name)
    if row is None:
        raise NotFoundError(f"{kind} {namespace}/{name} does not exist")
    controls = dict(row.controls_override or {})
    if controls.get(field) == value:
        return row
    row.controls_override = {**controls, field: value}
    row.generation += 1
    row.updated_at = now
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def save_object_status(session: Session, *, kind: str, namespace: str, name: str, status: dict, now: datetime) -> bool:
    """Store ``status`` when it differs from the stored one. Returns whether it changed. Commits."""
    row = get_stored_object(session, kind=kind, namespace=namespace, name=name)
    if row is None or row.status == status:
        return False
    row.status = status
    row.updated_at = now
    session.add(row)
    session.commit()
    return True


def write_object_status(session: Session, *, kind: str, namespace: str, name: str, status: dict, now: datetime) -> bool:
    """Store ``status`` as it is, in one UPDATE (no read first: for a caller that knows it changed). Returns whether
    the object exists. Commits."""
    result = session.execute(
        update(StoredObject)
        .where(col(StoredObject.kind) == kind, col(StoredObject.namespace) == namespace, col(StoredObject.name) == name)
        .values(status=status, updated_at=now)
    )
    session.commit()
    return bool(result.rowcount)


def mark_drained(session: Session, *, namespace: str, name: str) -> None:
    row = get_stored_object(session, kind="Strategy", namespace=namespace, name=name)
    if row is not None and not row.drained:
        row.drained = True
        session.add(row)
        session.commit()


def forget_object(session: Session, *, kind: str, namespace: str, name: str) -> None:
    """Remove an object whose deletion finished, with its runtime record. Its state files stay on disk."""
    session.exec(
        delete(StoredObject).where(
            col(StoredObject.kind) == kind, col(StoredObject.namespace) == namespace, col(StoredObject.name) == name
        )
    )
    if kind == "Strategy":
        session.exec(
            delete(RuntimeRecord).where(col(RuntimeRecord.namespace) == namespace, col(RuntimeRecord.name) == name)
        )
    session.commit()


# --- observed state repository ------------------------------------------------------------------------------


def get_runtime_record(session: Session, *, namespace: str, name: str) -> RuntimeRecord | None:
    query = select(RuntimeRecord).where(RuntimeRecord.namespace == namespace, RuntimeRecord.name == name)
    return session.exec(query).first()


def list_runtime_records(session: Session) -> list[RuntimeRecord]:
    return list(session.exec(select(RuntimeRecord)).all())


def save_runtime_record(session: Session, *, record: RuntimeRecord, now: datetime) -> RuntimeRecord:
    """Insert or update ``record`` (matched on namespace and name). Commits; returns the stored row.

    A record read from the store before (it has its ``id``) is written with one UPDATE, without reading it again."""
    values = record.model_dump(exclude={"id"})
    values["updated_at"] = now
    if record.id is not None:
        result = session.execute(update(RuntimeRecord).where(col(RuntimeRecord.id) == record.id).values(**values))
        session.commit()
        if result.rowcount:
            record.updated_at = now
            return record
    row = get_runtime_record(session, namespace=record.namespace, name=record.name)
    if row is None:
        row = RuntimeRecord(**values)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


# --- events and audit repository ----------------------------------------------------------------------------


def record_event(
    session: Session,
    *,
    kind: str,
    namespace: str,
    name: str,
    type: str,
    reason: str,
    message: str,
    now: datetime,
) -> EventRecord:
    """Append an event; one equal to the object's latest event only bumps its count. Commits."""
    latest = session.exec(
        select(EventRecord)
        .where(EventRecord.kind == kind, EventRecord.namespace == namespace, EventRecord.name == name)
        .order_by(col(EventRecord.id).desc())
    ).first()
    if latest is not None and (latest.type, latest.reason, latest.message) == (type, reason, message):
        latest.count += 1
        latest.last_seen = now
        row = latest
    else:
        row = EventRecord(
            kind=kind,
            namespace=namespace,
            name=name,
            type=type,
            reason=reason,
            message=message,
            first_seen=now,
            last_seen=now,
        )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def list_events(
    session: Session, *, namespace: str | None = None, name: str | None = None, limit: int = 100
) -> list[EventRecord]:
    """Newest first."""
    query = select(EventRecord)
    if namespace is not None:
        query = query.where(EventRecord.namespace == namespace)
    if name is not None:
        query = query.where(EventRecord.name == name)
    query = query.order_by(col(EventRecord.last_seen).desc(), col(EventRecord.id).desc()).limit(limit)
    return list(session.exec(query).all())


def _begin_immediate(session: Session) -> None:
    """Take SQLite's write lock now rather than at the first write (``BEGIN IMMEDIATE``), so that what this
    transaction reads (the chain's head) cannot change before it writes: two writers queue (``busy_timeout``)
    instead of both appending after the same record. A transaction already open on the session is kept."""
    connection = session.connection()
    if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _audit_anchor(session: Session) -> ChainAnchor:
    row = session.get(AuditAnchor, 1)
    return GENESIS if row is None else ChainAnchor(last_id=row.last_id, hash=row.hash)


def _audit_fields(row: AuditRecord) -> AuditFields:
    assert row.id is not None
    return AuditFields(id=row.id, at=row.at, actor=row.actor, action=row.action, target=row.target, result=row.result)


def _chain_head(session: Session) -> ChainAnchor:
    last = session.exec(select(AuditRecord).order_by(col(AuditRecord.id).desc())).first()
    if last is not None and last.hash is None:  # an older slsbot wrote after the migration: chain its records
        _chain_unchained_audit(session)
        last = session.exec(select(AuditRecord).order_by(col(AuditRecord.id).desc())).first()
    if last is None or last.hash is None:
        return _audit_anchor(session)
    assert last.id is not None
    return ChainAnchor(last_id=last.id, hash=last.hash)


def _chain_unchained_audit(session: Session) -> int:
    """Chain the records that carry no hash (written before the chain existed, or by an older slsbot), in id order,
    after the last chained one. They get the next ids, so the chain's ids stay consecutive. Does not commit."""
    unchained = list(
        session.exec(select(AuditRecord).where(col(AuditRecord.hash).is_(None)).order_by(col(AuditRecord.id))).all()
    )
    if not unchained:
        return 0
    chained = session.exec(
        select(AuditRecord).where(col(AuditRecord.hash).is_not(None)).order_by(col(AuditRecord.id).desc())
    ).first()
    head = _audit_anchor(session) if chained is None else ChainAnchor(chained.id or 0, chained.hash or ZERO_HASH)
    if any(row.id != next_id(head) + offset for offset, row in enumerate(unchained)):
        # ids must follow the head: renumber (delete and insert again) rather than leave a gap
        for row in unchained:
            session.delete(row)
        session.flush()
        unchained = [
            AuditRecord(at=r.at, actor=r.actor, action=r.action, target=r.target, result=r.result) for r in unchained
        ]
    for row in unchained:
        row.id = next_id(head)
        row.prev_hash = head.hash
        row.hash = record_hash(_audit_fields(row), head.hash)
        session.add(row)
        head = ChainAnchor(last_id=row.id, hash=row.hash)
    session.flush()
    return len(unchained)


def record_audit(
    session: Session, *, actor: str, action: str, target: str | None, result: str, now: datetime
) -> AuditRecord:
    """Append an audit entry, each field cut to ``AUDIT_FIELD_LIMITS``, chained to the one before
    (``domain.audit_chain``) under SQLite's write lock, so concurrent writers (threads or processes) make one chain.
    Commits."""
    limits = AUDIT_FIELD_LIMITS
    _begin_immediate(session)
    head = _chain_head(session)
    row = AuditRecord(
        id=next_id(head),
        at=now,
        actor=bounded(actor, limits["actor"]),
        action=bounded(action, limits["action"]),
        target=None if target is None else bounded(target, limits["target"]),
        result=bounded(result, limits["result"]),
        prev_hash=head.hash,
    )
    row.hash = record_hash(_audit_fields(row), head.hash)
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def list_audit(session: Session, *, limit: int = 100) -> list[AuditRecord]:
    """Newest first."""
    query = select(AuditRecord).order_by(col(AuditRecord.id).desc()).limit(limit)
    return list(session.exec(query).all())


def iter_audit(session: Session, *, since: datetime | None = None, batch: int = 1000) -> Iterator[AuditRecord]:
    """Every audit record (written at or after ``since``), oldest first, read ``batch`` at a time."""
    after = 0
    while True:
        query = select(AuditRecord).where(col(AuditRecord.id) > after)
        if since is not None:
            query = query.where(col(AuditRecord.at) >= since)
        rows = list(session.exec(query.order_by(col(AuditRecord.id)).limit(batch)).all())
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].id or 0


def verify_audit(session: Session) -> ChainVerdict:
    """Check the stored audit chain from its anchor (``domain.audit_chain.verify_chain``)."""
    records = (ChainedRecord(_audit_fields(row), row.prev_hash, row.hash) for row in iter_audit(session))
    return verify_chain(records, _audit_anchor(session))


def prune_audit(session: Session, *, before: datetime, now: datetime) -> int:
    """Retention: remove the oldest audit records, those written before ``before`` up to the first one that was not,
    and make the last one removed the chain's anchor, so what is left still verifies. The records removed are
    verified first: a broken chain is not pruned (that would hide the break), and ``AuditChainBroken`` names it.
    Returns how many were removed. Commits."""
    _begin_immediate(session)
    anchor = _audit_anchor(session)
    keep_from = session.exec(
        select(AuditRecord).where(col(AuditRecord.at) >= before).order_by(col(AuditRecord.id))
    ).first()
    condition = col(AuditRecord.id) < keep_from.id if keep_from is not None else col(AuditRecord.id) > 0
    doomed = list(session.exec(select(AuditRecord).where(condition).order_by(col(AuditRecord.id))).all())
    if not doomed:
        session.rollback()
        return 0
    verdict = verify_chain((ChainedRecord(_audit_fields(r), r.prev_hash, r.hash) for r in doomed), anchor)
    if verdict.broken is not None:
        session.rollback()
        raise AuditChainBroken(f"not pruning the audit trail: {verdict.broken}")
    row = session.get(AuditAnchor, 1) or AuditAnchor(id=1, last_id=0, hash=ZERO_HASH, updated_at=now)
    row.last_id, row.hash = verdict.head.last_id, verdict.head.hash
    row.pruned += len(doomed)
    row.updated_at = now
    session.add(row)
    session.exec(delete(AuditRecord).where(col(AuditRecord.id) <= verdict.head.last_id))
    session.commit()
    return len(doomed)


def count_refused_request(session: Session, *, method: str, route: str, status: int, now: datetime) -> None:
    """Add one to the count of (method, route, status): one atomic upsert, so concurrent requests never lose a
    count nor make a second row. ``route`` is a template or ``NO_ROUTE``, never a raw path. Commits."""
    values = {
        "method": bounded(method, 16),
        "route": bounded(route, AUDIT_FIELD_LIMITS["action"]),
        "status": status,
        "count": 1,
        "first_seen": now,
        "last_seen": now,
    }
    table = RefusedRequestCount.__table__
    statement = sqlite_insert(table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["method", "route", "status"],
        set_={"count": table.c.count + 1, "last_seen": statement.excluded.last_seen},
    )
    session.exec(statement)
    session.commit()


def list_refused_requests(session: Session) -> list[RefusedRequestCount]:
    """Most frequent first."""
    query = select(RefusedRequestCount).order_by(
        col(RefusedRequestCount.count).desc(), col(RefusedRequestCount.route), col(RefusedRequestCount.status)
    )
    return list(session.exec(query).all())


# --- incidents repository -----------------------------------------------------------------------------------


def save_incident_document(
    session: Session,
    *,
    incident_id: str,
    namespace: str,
    severity: int,
    state: str,
    cause: str,
    opened_at: datetime,
    document: dict,
) -> None:
    """Insert or replace one incident. Commits."""
    row = session.get(IncidentRecord, incident_id)
    if row is None:
        row = IncidentRecord(
            id=incident_id,
            namespace=namespace,
            severity=severity,
            cause=cause,
            opened_at=opened_at,
            state=state,
            document=document,
        )
    else:
        row.state = state
        row.document = document
    session.add(row)
    session.commit()


def list_incident_documents(
    session: Session,
    *,
    states: Sequence[str] | None = None,
    severity: int | None = None,
    namespace: str | None = None,
    limit: int = 500,
) -> list[dict]:
    """Newest first."""
    query = select(IncidentRecord)
    if states is not None:
        query = query.where(col(IncidentRecord.state).in_(list(states)))
    if severity is not None:
        query = query.where(IncidentRecord.severity == severity)
    if namespace is not None:
        query = query.where(IncidentRecord.namespace == namespace)
    query = query.order_by(col(IncidentRecord.opened_at).desc(), col(IncidentRecord.id)).limit(limit)
    return [row.document for row in session.exec(query).all()]


def get_incident_document(session: Session, *, incident_id: str) -> dict | None:
    row = session.get(IncidentRecord, incident_id)
    return None if row is None else row.document
