"""The audit hash chain as pure functions: a chain built record by record verifies; changing a field, removing a
record, reordering, or dropping a hash breaks it at the first record touched, and the verdict says why."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

from slsbot.domain.audit_chain import (
    GENESIS,
    ZERO_HASH,
    AuditFields,
    ChainAnchor,
    ChainedRecord,
    canonical_encoding,
    record_hash,
    verify_chain,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def chain(count: int, anchor: ChainAnchor = GENESIS) -> list[ChainedRecord]:
    records, head = [], anchor
    for offset in range(count):
        fields = AuditFields(
            id=head.last_id + 1,
            at=T0 + timedelta(seconds=offset),
            actor="operator:3fa1b2c4",
            action="POST /api/v1/strategies/{name}/pause",
            target=f"Strategy default/s{offset}",
            result="200",
        )
        digest = record_hash(fields, head.hash)
        records.append(ChainedRecord(fields, head.hash, digest))
        head = ChainAnchor(fields.id, digest)
    return records


def test_the_hash_is_sha256_of_a_stable_canonical_encoding() -> None:
    fields = AuditFields(id=7, at=T0, actor="admin:ab", action="POST /x", target=None, result="200 ok \u00e9")
    encoded = canonical_encoding(fields, ZERO_HASH)
    assert (
        encoded
        == (
            '["slsbot-audit-v1",7,"2026-03-01T12:00:00.000000Z","admin:ab","POST /x",null,"200 ok \u00e9",'
            f'"{ZERO_HASH}"]'
        ).encode()
    )
    assert record_hash(fields, ZERO_HASH) == hashlib.sha256(encoded).hexdigest()
    # The same instant in another zone is the same record.
    shifted = dataclasses.replace(fields, at=T0.astimezone(datetime.now().astimezone().tzinfo))
    assert record_hash(shifted, ZERO_HASH) == record_hash(fields, ZERO_HASH)
    assert record_hash(fields, "1" * 64) != record_hash(fields, ZERO_HASH)


def test_an_untouched_chain_verifies_and_reports_its_head() -> None:
    records = chain(5)
    verdict = verify_chain(records)
    assert verdict.ok and verdict.checked == 5
    assert verdict.head == ChainAnchor(5, records[-1].hash)
    assert verify_chain([]).head == GENESIS


def test_a_changed_field_is_named() -> None:
    records = chain(5)
    records[2] = dataclasses.replace(records[2], fields=dataclasses.replace(records[2].fields, result="403"))
    verdict = verify_chain(records)
    assert not verdict.ok
    assert str(verdict.broken) == "audit record 3: its fields do not match its hash (changed after it was written)"
    assert verdict.head.last_id == 2


def test_a_changed_field_with_its_hash_recomputed_breaks_the_next_link() -> None:
    records = chain(5)
    forged_fields = dataclasses.replace(records[2].fields, actor="admin:ffffffff")
    records[2] = ChainedRecord(forged_fields, records[2].prev_hash, record_hash(forged_fields, records[2].prev_hash))
    broken = verify_chain(records).broken
    assert broken is not None and broken.record_id == 4
    assert broken.reason == "its prev_hash is not the hash of record 3 (a record was moved or replaced)"


def test_a_removed_record_is_named() -> None:
    records = chain(5)
    del records[1]
    assert str(verify_chain(records).broken) == "audit record 3: record 2 is missing before it (removed)"
    del records[1]
    assert str(verify_chain(records).broken) == "audit record 4: records 2 to 3 are missing before it (removed)"
    assert verify_chain(chain(5)[1:]).broken.record_id == 2  # the first one gone: the anchor says id 1 comes first


def test_reordered_records_are_named() -> None:
    records = chain(5)
    records[1], records[2] = records[2], records[1]
    assert str(verify_chain(records).broken) == "audit record 3: record 2 is missing before it (removed)"
    # The ids kept in place and the rest swapped: the moved record's link does not fit.
    records = chain(5)
    swapped = [records[0], dataclasses.replace(records[2], fields=dataclasses.replace(records[2].fields, id=2))]
    broken = verify_chain(swapped).broken
    assert broken is not None and broken.record_id == 2 and "prev_hash" in broken.reason


def test_a_record_without_a_hash_breaks_the_chain() -> None:
    records = chain(3)
    records[1] = dataclasses.replace(records[1], hash=None)
    assert str(verify_chain(records).broken) == "audit record 2: it carries no hash (written outside the chain)"


def test_a_chain_that_starts_at_an_anchor_verifies_from_it_only() -> None:
    full = chain(6)
    anchor = ChainAnchor(3, full[2].hash)
    assert verify_chain(full[3:], anchor).ok
    assert not verify_chain(full[3:]).ok  # from genesis, record 4 is not the first
    broken = verify_chain(full[3:], ChainAnchor(3, ZERO_HASH)).broken
    assert broken is not None and broken.reason == (
        "its prev_hash is not the hash of the chain's anchor (a record was moved or replaced)"
    )
