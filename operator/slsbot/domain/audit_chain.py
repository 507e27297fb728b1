"""The audit trail's hash chain: pure functions over plain records, no I/O.

Each audit record carries ``prev_hash`` (the hash of the record before it, or of the chain's anchor) and ``hash``:
the SHA-256 of a canonical encoding of the record's own fields (its id, time, actor, action, target, result) and
``prev_hash``. Changing a field, removing a record or moving records around breaks the chain at the first record
touched, and ``verify_chain`` names it and says why.

The chain starts at an anchor: ``GENESIS`` (id 0, a hash of zeros) for a trail never pruned; after retention
removed the oldest records, the id and hash of the last record removed, so what is left still verifies. What
the chain cannot show on its own is the loss of its newest records (nothing comes after them): ``verify_chain``
returns the head (the last id and hash) to be written down elsewhere, e.g. with each export to a log system.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

HASH_LENGTH = 64  # hex digits of a SHA-256
ZERO_HASH = "0" * HASH_LENGTH


@dataclass(frozen=True, slots=True)
class AuditFields:
    """What a record's hash covers, besides the hash before it."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    result: str


@dataclass(frozen=True, slots=True)
class ChainedRecord:
    """A stored record: its fields and the two hashes stored with it (None when it was never chained)."""

    fields: AuditFields
    prev_hash: str | None
    hash: str | None


@dataclass(frozen=True, slots=True)
class ChainAnchor:
    """Where the chain starts: the id and hash of the last record retention removed (``GENESIS`` when none was)."""

    last_id: int
    hash: str


GENESIS = ChainAnchor(last_id=0, hash=ZERO_HASH)


@dataclass(frozen=True, slots=True)
class ChainBreak:
    record_id: int
    reason: str

    def __str__(self) -> str:
        return f"audit record {self.record_id}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """``checked``: records read; ``head``: the id and hash the chain ends at (the anchor when it is empty);
    ``broken``: the first record that breaks it, or None."""

    checked: int
    head: ChainAnchor
    broken: ChainBreak | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def canonical_encoding(fields: AuditFields, prev_hash: str) -> bytes:
    """One JSON array, keys in a fixed order, the time as UTC ISO 8601 with microseconds: the same bytes for the
    same record on every machine and Python version."""
    at = fields.at.astimezone(UTC) if fields.at.tzinfo is not None else fields.at.replace(tzinfo=UTC)
    payload = [
        "slsbot-audit-v1",
        fields.id,
        at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        fields.actor,
        fields.action,
        fields.target,
        fields.result,
        prev_hash,
    ]
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def record_hash(fields: AuditFields, prev_hash: str) -> str:
    return hashlib.sha256(canonical_encoding(fields, prev_hash)).hexdigest()


def next_id(head: ChainAnchor) -> int:
    """The id the next record takes: ids are consecutive, so a missing one shows."""
    return head.last_id + 1


def verify_chain(records: Iterable[ChainedRecord], anchor: ChainAnchor = GENESIS) -> ChainVerdict:
    """Check ``records`` (in id order, as stored) from ``anchor``: consecutive ids, each ``prev_hash`` the hash
    of the one before, each ``hash`` that of its own fields. Stops at the first break."""
    head = anchor
    checked = 0
    for record in records:
        checked += 1
        record_id = record.fields.id
        if record.hash is None or record.prev_hash is None:
            return ChainVerdict(checked, head, ChainBreak(record_id, "it carries no hash (written outside the chain)"))
        if record_id != next_id(head):
            if record_id > next_id(head):
                missing = (
                    f"record {next_id(head)} is missing"
                    if record_id == next_id(head) + 1
                    else f"records {next_id(head)} to {record_id - 1} are missing"
                )
                return ChainVerdict(checked, head, ChainBreak(record_id, f"{missing} before it (removed)"))
            return ChainVerdict(
                checked, head, ChainBreak(record_id, f"it comes after record {head.last_id} (ids out of order)")
            )
        if record.prev_hash != head.hash:
            before = "the chain's anchor" if head.last_id == anchor.last_id else f"record {head.last_id}"
            return ChainVerdict(
                checked,
                head,
                ChainBreak(record_id, f"its prev_hash is not the hash of {before} (a record was moved or replaced)"),
            )
        if record_hash(record.fields, record.prev_hash) != record.hash:
            return ChainVerdict(
                checked, head, ChainBreak(record_id, "its fields do not match its hash (changed after it was written)")
            )
        head = ChainAnchor(last_id=record_id, hash=record.hash)
    return ChainVerdict(checked, head)
