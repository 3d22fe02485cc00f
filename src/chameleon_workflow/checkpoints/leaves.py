"""Which rows are ledger rows, and the exact bytes each one contributes to the tree.

A leaf's data is the canonical JSON (``hashing.canonical_json``, RFC 8785) of
``{"row": {column: value, ...}, "table": name}`` with **every** column of the row as
the models declare it, read through SQLAlchemy Core: ids (UUIDs) as their lowercase
text, times as ``hashing.format_timestamp`` text, enumerations as their value, JSON
columns decoded, SQL NULL as ``null`` (except in a column of ``LATE_COLUMNS``, left out
while NULL). A column added to one of these tables is covered from the next seal on; if
rows of the table may already be sealed, the column joins ``LATE_COLUMNS``. The same row
gives the same bytes on SQLite and PostgreSQL (where SQLite already stores an id or a
time as that text, the text is read as stored).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    String,
    Table,
    cast,
    exists,
    select,
    type_coerce,
)

from chameleon_workflow.checkpoints.records import LedgerLeaf
from chameleon_workflow.columns import GUID, UTCDateTime
from chameleon_workflow.errors import CheckpointError
from chameleon_workflow.hashing import canonical_json, canonical_record, format_timestamp
from chameleon_workflow.models import Base

LEAVES: Table = LedgerLeaf.__table__  # type: ignore[assignment]
#: Columns a table gained after rows of it could be sealed: left out of a leaf while NULL,
#: so a row sealed before its table grew keeps the bytes it was sealed with.
LATE_COLUMNS: dict[str, frozenset[str]] = {
    "interaction_logs": frozenset({"stream_id", "stream_seq", "key_id", "chain_hash"}),
}
#: Rows fetched per query when looking rows up by id.
ID_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class LedgerTable:
    """A table whose rows are sealed, and the order its new rows take within one seal."""

    name: str
    order: tuple[str, ...]

    @property
    def table(self) -> Table:
        """Return the models' table (so every column it has today is read)."""
        return Base.metadata.tables[self.name]

    @property
    def key(self) -> Column[Any]:
        """Return the one-column primary key that names a row."""
        (column,) = self.table.primary_key.columns
        return column


#: Every ledger table, in the order a seal takes them. Definitions come first so the rows
#: that cite a workflow follow it in the tree. A new append-only table (an admin ledger)
#: joins with one line at the end: positions already given never move.
LEDGER_TABLES: tuple[LedgerTable, ...] = (
    LedgerTable("local_workflows", ("created_at", "local_workflow_id")),
    LedgerTable("local_roles", ("role_id",)),
    LedgerTable("local_interactions", ("interaction_id",)),
    LedgerTable("local_components", ("component_id",)),
    LedgerTable("local_guardians", ("guardian_id",)),
    LedgerTable("uow_history", ("transition_timestamp", "uow_id", "sequence")),
    LedgerTable("uow_attributes", ("attribute_id",)),
    LedgerTable("interaction_logs", ("timestamp", "log_id")),
    LedgerTable("ledger_keys", ("sequence",)),
    LedgerTable("admin_events", ("sequence",)),
)
BY_KIND: dict[str, LedgerTable] = {t.name: t for t in LEDGER_TABLES}


_AS_IS = frozenset({str, int, bool, float, dict, list, type(None)})
_CONVERT: dict[type, Callable[[Any], Any]] = {uuid.UUID: str, datetime: format_timestamp}
#: Values the fast canonical path writes without walking them (see canonical_record).
_FLAT = frozenset({str, bool, type(None)})


def plain(value: Any, where: str) -> Any:
    """Return a column value as the JSON value its leaf data holds."""
    kind = type(value)
    if kind in _AS_IS:
        return value
    convert = _CONVERT.get(kind)
    if convert is not None:
        return convert(value)
    if isinstance(value, enum.Enum):  # before str: the statuses are StrEnums
        return value.value
    for base, convert in _CONVERT.items():
        if isinstance(value, base):
            return convert(value)
    if isinstance(value, str | int | float | dict | list):
        return value
    raise CheckpointError(f"{where}: a {type(value).__name__} has no leaf form")


def leaf_data(table: str, row: Mapping[Any, Any]) -> bytes:
    """Return the canonical bytes a row of ``table`` contributes to the tree.

    The same bytes as ``canonical_json({"row": columns, "table": table})``: "row" sorts
    before "table", and the row itself takes the fast path for flat records.
    """
    late = LATE_COLUMNS.get(table, frozenset())
    columns = {
        name: plain(value, f"{table}.{name}")
        for name, value in row.items()
        if value is not None or name not in late
    }
    nested = tuple(name for name, value in columns.items() if type(value) not in _FLAT)
    body = canonical_record(columns, nested)
    return b'{"row":' + body + b',"table":' + canonical_json(table, "table") + b"}"


def selection(ledger: LedgerTable, dialect: str) -> list[Any]:
    """Return the columns to select, each named as its column.

    SQLite stores ids and times as the very text the leaf data holds, so they are read as
    text there rather than parsed into objects and formatted back.
    """
    table = ledger.table
    if dialect != "sqlite":
        return list(table.columns)
    return [
        type_coerce(c, String()).label(c.name) if isinstance(c.type, GUID | UTCDateTime) else c
        for c in table.columns
    ]


def row_id(ledger: LedgerTable, row: Mapping[Any, Any]) -> str:
    """Return the text ``ledger_leaves.row_id`` names a row by."""
    return str(row[ledger.key.name])


def unsealed(connection: Connection, ledger: LedgerTable, page: int) -> Iterator[list[Any]]:
    """Yield the rows of ``ledger`` that have no position yet, in sealing order, a page at a time.

    A row committed after this query began is not seen: the next seal takes it.
    """
    table = ledger.table
    sealed = exists().where(
        LEAVES.c.kind == ledger.name, LEAVES.c.row_id == cast(ledger.key, String)
    )
    columns = selection(ledger, connection.dialect.name)
    query = select(*columns).where(~sealed).order_by(*(table.c[name] for name in ledger.order))
    result = connection.execute(query, execution_options={"yield_per": page})
    yield from (list(chunk) for chunk in result.partitions())


def rows_by_id(connection: Connection, ledger: LedgerTable, ids: Sequence[str]) -> dict[str, Any]:
    """Return the rows of ``ledger`` whose ids are given, as id -> row mapping."""
    key = ledger.key
    numeric = isinstance(key.type, Integer)
    found: dict[str, Any] = {}
    columns = selection(ledger, connection.dialect.name)
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        wanted = [v for v in (_key_value(numeric, i) for i in chunk) if v is not None]
        if not wanted:
            continue
        for row in connection.execute(select(*columns).where(key.in_(wanted))):
            mapping = row._mapping
            found[row_id(ledger, mapping)] = mapping
    return found


def _key_value(numeric: bool, text: str) -> int | uuid.UUID | None:
    try:
        return int(text) if numeric else uuid.UUID(text)
    except ValueError:  # a forged position naming no possible row finds nothing
        return None
