"""Restoring a segment: verified first, then its rows back in one audited transaction.

The segment's manifest must be signed by the given key and be the one this database
recorded (a segment of another database, or one restored already, is refused), and the
segment must pass every check of ``verify.check_segment``. Its rows are then inserted
(UOW rows parents first, then history, attribute versions, log rows), each must read
back as the very leaf it was sealed as (or as the redacted form a recorded redaction
leads to from it), ``archive_restores`` records the segment (its
manifest no longer admits a DELETE) and an admin-ledger event says who restored it:
all in one transaction.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, Enum, Table, insert, select

from chameleon_workflow.admin_ledger import ADMIN, record_admin_event
from chameleon_workflow.archive.cuts import load_cuts
from chameleon_workflow.archive.manifest import expand, read_manifest
from chameleon_workflow.archive.records import ArchiveManifest, ArchiveRestore
from chameleon_workflow.archive.segment import (
    UOW_TABLE,
    ArchiveError,
    read_lines,
    row_of,
    segment_name,
    table_of,
)
from chameleon_workflow.archive.storage import SegmentStore
from chameleon_workflow.archive.verify import check_segment
from chameleon_workflow.checkpoints.leaves import BY_KIND, LEAVES, leaf_data, rows_by_id
from chameleon_workflow.checkpoints.merkle import leaf_hash
from chameleon_workflow.columns import GUID, UTCDateTime
from chameleon_workflow.db import SQLITE_IMMEDIATE, translated_errors
from chameleon_workflow.hashing import parse_timestamp
from chameleon_workflow.models import Base, utcnow
from chameleon_workflow.redactions import load_redactions
from chameleon_workflow.schema import ARCHIVABLE_TABLES
from chameleon_workflow.states import AdminAction

_SEGMENT_ID = re.compile(r"[0-9a-f]{32}")


def restore(
    engine: Engine,
    store: SegmentStore,
    segment_id: str,
    public: Ed25519PublicKey,
    *,
    principal: str = ADMIN,
    clock: Callable[[], datetime] = utcnow,
) -> dict[str, int]:
    """Bring a segment's rows back; return the rows restored per table."""
    if not _SEGMENT_ID.fullmatch(segment_id):
        raise ArchiveError(f"{segment_id!r} is not a segment id (32 hex digits)")
    manifest = read_manifest(store, segment_id)
    if not manifest.signed_by(public):
        raise ArchiveError(f"the manifest of segment {segment_id} is not signed by the signing key")
    with translated_errors(), engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.execution_options(**{SQLITE_IMMEDIATE: True})
        with connection.begin():
            _require_recorded(connection, segment_id, manifest.body)
            problems = check_segment(connection, store, manifest, public, None)
            if problems:
                raise ArchiveError(f"segment {segment_id} fails verification: {problems[0]}")
            counts = _insert(connection, store, segment_id)
            _check_leaves(connection, manifest.body)
            connection.execute(
                insert(ArchiveRestore).values(segment_id=segment_id, restored_at=clock())
            )
            record_admin_event(
                connection,
                AdminAction.LEDGER_RESTORED,
                principal=principal,
                subject_id=segment_id,
                details={"segment_id": segment_id, "counts": counts},
                now=clock(),
            )
    return counts


def _require_recorded(connection: Connection, segment_id: str, body: dict[str, Any]) -> None:
    query = select(ArchiveManifest.manifest).where(ArchiveManifest.segment_id == segment_id)
    recorded = connection.execute(query).scalar()
    if recorded is None or recorded != body:
        raise ArchiveError(
            f"segment {segment_id} was not archived from this database (no such manifest here)"
        )
    if segment_id not in load_cuts(connection).manifests:
        raise ArchiveError(f"segment {segment_id} was restored already")


def _insert(connection: Connection, store: SegmentStore, segment_id: str) -> dict[str, int]:
    by_table: dict[str, list[dict[str, Any]]] = {}
    for line in read_lines(store, segment_name(segment_id)):
        table = table_of(line)
        if table != UOW_TABLE and table not in ARCHIVABLE_TABLES:
            raise ArchiveError(f"segment {segment_id} holds rows of table {table}")
        by_table.setdefault(table, []).append(_stored(Base.metadata.tables[table], row_of(line)))
    uows = by_table.get(UOW_TABLE, [])
    ids = {row["uow_id"] for row in uows}
    ordered, placed = [], set()
    while uows:  # parents first: a child row names its parent
        ready = [r for r in uows if r["parent_id"] not in ids or r["parent_id"] in placed]
        if not ready:
            raise ArchiveError(f"segment {segment_id}: its UOWs' parents form a cycle")
        ordered += ready
        placed |= {r["uow_id"] for r in ready}
        uows = [r for r in uows if r["uow_id"] not in placed]
    by_table[UOW_TABLE] = ordered
    counts = {}
    for table in (UOW_TABLE, *ARCHIVABLE_TABLES):
        rows = by_table.get(table, [])
        for start in range(0, len(rows), 500):
            connection.execute(insert(Base.metadata.tables[table]), rows[start : start + 500])
        if rows:
            counts[table] = len(rows)
    return counts


def _stored(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """Turn a row's canonical JSON values back into the values its columns store."""
    values = {}
    for column in table.columns:
        value = row.get(column.name)
        if value is not None:
            if isinstance(column.type, GUID):
                value = uuid.UUID(value)
            elif isinstance(column.type, UTCDateTime):
                value = parse_timestamp(value)
            elif isinstance(column.type, Enum) and column.type.enum_class is not None:
                value = column.type.enum_class(value)
        values[column.name] = value
    return values


def _check_leaves(connection: Connection, body: dict[str, Any]) -> None:
    """Every restored row must read back as the leaf sealed at its position."""
    positions = list(expand(body.get("positions") or []))
    redactions = load_redactions(connection)
    for start in range(0, len(positions), 2000):
        page = positions[start : start + 2000]
        query = select(LEAVES.c.kind, LEAVES.c.row_id, LEAVES.c.leaf_hash).where(
            LEAVES.c.position.in_(page)
        )
        wanted: dict[str, dict[str, str]] = {}
        for kind, row_id, stored in connection.execute(query):
            wanted.setdefault(kind, {})[row_id] = stored
        for kind, leaves in wanted.items():
            rows = rows_by_id(connection, BY_KIND[kind], list(leaves))
            for row_id, stored in leaves.items():
                row = rows.get(row_id)
                actual = None if row is None else leaf_hash(leaf_data(kind, row)).hex()
                if actual != stored and not (
                    actual is not None and redactions.leads_to(kind, row_id, stored, actual)
                ):
                    raise ArchiveError(f"restored {kind} row {row_id} does not read back as sealed")
