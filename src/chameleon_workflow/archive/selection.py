"""What an archive run takes: which UOWs, and every row they own, in segment order.

A UOW qualifies when its status is one nothing moves on from (``ARCHIVABLE``) and its
row last changed before the cut-off (of one instance, when asked). It is held back
while a child of it does not qualify (the child's row names it), while any of its rows
is in the unkeyed format (the key ledger's seal counts those), or while a history or
attribute row of it has no checkpoint position yet. Children are taken before their
parents, so a batch never deletes a UOW a later batch's rows still name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, Table, and_, cast, select

from chameleon_workflow.checkpoints.leaves import LEAVES, LedgerTable, leaf_data, selection
from chameleon_workflow.models import InteractionLog, UnitsOfWork, UnitsOfWorkHistory, UOWAttribute
from chameleon_workflow.schema import ARCHIVABLE_TABLES
from chameleon_workflow.states import UOWStatus

UOWS: Table = UnitsOfWork.__table__  # type: ignore[assignment]
HISTORY: Table = UnitsOfWorkHistory.__table__  # type: ignore[assignment]
ATTRIBUTES: Table = UOWAttribute.__table__  # type: ignore[assignment]
LOGS: Table = InteractionLog.__table__  # type: ignore[assignment]
#: Statuses a UOW never leaves (COMPLETED only for ARCHIVED): it may be archived.
ARCHIVABLE: frozenset[UOWStatus] = frozenset(
    {UOWStatus.COMPLETED, UOWStatus.ARCHIVED, UOWStatus.FAILED_SECURITY_BREACH}
)
UOW_LEDGER = LedgerTable("units_of_work", ("uow_id",))
#: Ids per IN (...) list.
CHUNK = 500


@dataclass(frozen=True, slots=True)
class Scope:
    """What a run archives: UOWs last changed before ``before``, of one instance or all."""

    before: datetime
    instance_id: uuid.UUID | None = None
    #: Only these UOWs (None: any), e.g. the UOWs of a segment restored to redact a value.
    uows: frozenset[uuid.UUID] | None = None


@dataclass(slots=True)
class Batch:
    """The rows of some UOWs, ready to write: UOW rows, then ledger rows by position."""

    uows: list[str] = field(default_factory=list)
    uow_rows: list[bytes] = field(default_factory=list)
    #: (position, table, row id, stored leaf hash, line, row) in checkpoint order.
    ledger: list[tuple[int, str, str, str, bytes, Any]] = field(default_factory=list)


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """Yield ``values`` a slice at a time."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def qualifies(scope: Scope) -> Any:
    """Return the condition a UOW row in scope meets."""
    condition = and_(UOWS.c.status.in_(sorted(ARCHIVABLE)), UOWS.c.updated_at < scope.before)
    if scope.instance_id is not None:
        condition = and_(condition, UOWS.c.instance_id == scope.instance_id)
    if scope.uows is not None:
        condition = and_(condition, UOWS.c.uow_id.in_(sorted(scope.uows)))
    return condition


def candidates(connection: Connection, scope: Scope) -> list[str]:
    """Return the ids of the UOWs to archive, children before parents."""
    parent_of: dict[str, str | None] = {
        str(u): None if p is None else str(p)
        for u, p in connection.execute(
            select(UOWS.c.uow_id, UOWS.c.parent_id).where(qualifies(scope))
        )
    }
    live_children = select(UOWS.c.parent_id).where(UOWS.c.parent_id.is_not(None), ~qualifies(scope))
    held = {str(p) for (p,) in connection.execute(live_children.distinct())}
    legacy_history = select(HISTORY.c.uow_id).where(HISTORY.c.link_version < 2)
    legacy_attributes = select(ATTRIBUTES.c.uow_id).where(ATTRIBUTES.c.value_digest.is_(None))
    for query in (legacy_history, legacy_attributes):
        held |= {str(u) for (u,) in connection.execute(query.distinct())}
    if connection.dialect.name == "sqlite":
        # SQLite numbers a new row after the largest id present: were the newest attribute
        # row deleted, its id would be handed out again and collide with its archived leaf.
        newest = select(ATTRIBUTES.c.uow_id).order_by(ATTRIBUTES.c.attribute_id.desc()).limit(1)
        held |= {str(u) for (u,) in connection.execute(newest)}
    held &= set(parent_of)
    _hold_ancestors(held, parent_of)
    chosen = {u: p for u, p in parent_of.items() if u not in held}
    return sorted(chosen, key=lambda u: (-_depth(u, chosen), u))


def _hold_ancestors(held: set[str], parent_of: dict[str, str | None]) -> None:
    pending = list(held)
    while pending:
        parent = parent_of.get(pending.pop())
        if parent is not None and parent in parent_of and parent not in held:
            held.add(parent)
            pending.append(parent)


def _depth(uow: str, parent_of: dict[str, str | None]) -> int:
    depth, current = 0, parent_of.get(uow)
    while current is not None and current in parent_of:
        depth, current = depth + 1, parent_of.get(current)
    return depth


def collect(connection: Connection, uows: Sequence[str]) -> tuple[Batch, set[str]]:
    """Read every row ``uows`` own; return the batch and the UOWs with an unsealed row."""
    dialect = connection.dialect.name
    ids = [uuid.UUID(u) for u in uows]
    batch = Batch(uows=list(uows))
    unsealed: set[str] = set()
    for chunk in chunks(ids):
        query = select(*selection(UOW_LEDGER, dialect)).where(UOWS.c.uow_id.in_(chunk))
        for row in connection.execute(query):
            batch.uow_rows.append(leaf_data(UOW_LEDGER.name, row._mapping))
        for table, key in ARCHIVABLE_TABLES.items():
            for row in connection.execute(_ledger_query(table, key, chunk, dialect)):
                mapping = dict(row._mapping)
                position, stored = mapping.pop("_position"), mapping.pop("_leaf_hash")
                uow = str(mapping["uow_id"])
                if position is None:
                    if table != "interaction_logs":  # an unsealed log row just stays live
                        unsealed.add(uow)
                    continue
                line = leaf_data(table, mapping)
                batch.ledger.append((position, table, str(mapping[key]), stored, line, mapping))
    batch.uow_rows.sort()
    batch.ledger.sort(key=lambda entry: entry[0])
    return batch, unsealed


def _ledger_query(table: str, key: str, ids: Sequence[uuid.UUID], dialect: str) -> Any:
    ledger = LedgerTable(table, (key,))
    columns = ledger.table.c
    joined = ledger.table.outerjoin(
        LEAVES, and_(LEAVES.c.kind == table, LEAVES.c.row_id == cast(columns[key], String))
    )
    query = (
        select(*selection(ledger, dialect), LEAVES.c.position.label("_position"))
        .add_columns(LEAVES.c.leaf_hash.label("_leaf_hash"))
        .select_from(joined)
        .where(columns.uow_id.in_(ids))
    )
    if table == "interaction_logs":
        query = query.where(columns.stream_id.is_not(None))  # legacy rows stay under their seal
    return query


def without(batch: Batch, dropped: set[str], parent_of: dict[str, str | None]) -> Batch:
    """Return the batch without ``dropped`` UOWs and their ancestors in it."""
    held = set(dropped)
    _hold_ancestors(held, parent_of)
    kept = Batch(uows=[u for u in batch.uows if u not in held])
    kept.uow_rows = [line for line in batch.uow_rows if not _names_any(line, held)]
    kept.ledger = [e for e in batch.ledger if str(e[5]["uow_id"]) not in held]
    return kept


def _names_any(line: bytes, uows: set[str]) -> bool:
    return any(f'"uow_id":"{u}"'.encode() in line for u in uows)


def parents(connection: Connection, uows: Sequence[str]) -> dict[str, str | None]:
    """Return each UOW's parent id."""
    found: dict[str, str | None] = {}
    for chunk in chunks([uuid.UUID(u) for u in uows]):
        query = select(UOWS.c.uow_id, UOWS.c.parent_id).where(UOWS.c.uow_id.in_(chunk))
        for u, p in connection.execute(query):
            found[str(u)] = None if p is None else str(p)
    return found
