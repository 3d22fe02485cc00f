"""The content hash of an imported workflow definition, over the rows the engine runs from.

A definition lives in five append-only tables (the workflow row, its roles, interactions,
components and guardians with their configuration). ``definition_hash`` is SHA-256 over
the canonical JSON of the columns listed in ``HASHED_COLUMNS`` (every column those tables
had when the hash was introduced; a column added later needs a new hash version), ids as
text, times as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, enumerations as their names, each table's
rows sorted by id:

    {"local_workflows": [{…}], "local_roles": [{…}, …], "local_interactions": […],
     "local_components": […], "local_guardians": […]}

The importer stores it on the workflow row; the engine recomputes it when it loads a
definition and refuses one that no longer matches; verification recomputes it for every
definition; each routing decision names the hash of the definition that made it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy import inspect as inspect_model

from chameleon_workflow.hashing import canonical_json, format_timestamp, sha256_hex
from chameleon_workflow.models import Base

_COMMON = ("instance_id", "local_workflow_id")
#: The tables a definition is made of, parent first (each append-only), and what is hashed.
HASHED_COLUMNS: dict[str, tuple[str, ...]] = {
    "local_workflows": (
        "local_workflow_id", "instance_id", "name", "version", "description", "definition",
        "created_at",
    ),
    "local_roles": ("role_id", *_COMMON, "name", "role_type", "description"),
    "local_interactions": ("interaction_id", *_COMMON, "name", "description"),
    "local_components": (
        "component_id", *_COMMON, "role_id", "interaction_id", "direction", "name",
    ),
    "local_guardians": (
        "guardian_id", *_COMMON, "component_id", "name", "guardian_type", "config",
    ),
}  # fmt: skip
DEFINITION_TABLES: tuple[str, ...] = tuple(HASHED_COLUMNS)

Row = Mapping[str, Any]


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _table(rows: Iterable[Row], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    plain = [{name: _plain(row[name]) for name in columns} for row in rows]
    return sorted(plain, key=lambda row: str(row[columns[0]]))  # by primary key


def definition_hash(rows: Mapping[str, Iterable[Row]]) -> str:
    """Return the hash of a definition given every row of it, by table (columns by name)."""
    document = {table: _table(rows.get(table, ()), cols) for table, cols in HASHED_COLUMNS.items()}
    return sha256_hex(canonical_json(document))


def object_row(obj: Any) -> dict[str, Any]:
    """Return a model object's columns by column name (what a Core read of its row gives)."""
    return {
        attr.columns[0].name: getattr(obj, attr.key)
        for attr in inspect_model(type(obj)).column_attrs
    }


def objects_hash(objects: Iterable[Any]) -> str:
    """Return the hash of a definition given as its model objects (any order)."""
    rows: dict[str, list[Row]] = {}
    for obj in objects:
        rows.setdefault(obj.__tablename__, []).append(object_row(obj))
    return definition_hash(rows)


def stored_definitions(
    conn: Connection, instance_id: uuid.UUID | None = None
) -> Iterable[tuple[Row, str]]:
    """Yield each stored workflow row with the hash its stored rows compute to now."""
    tables = [Base.metadata.tables[name] for name in DEFINITION_TABLES]
    workflows = tables[0]
    columns = [
        workflows.c[name] for name in (*HASHED_COLUMNS["local_workflows"], "definition_hash")
    ]
    query = select(*columns).order_by(workflows.c.local_workflow_id)
    if instance_id is not None:
        query = query.where(workflows.c.instance_id == instance_id)
    for found in conn.execute(query).mappings():
        workflow = dict(found)
        rows = {t.name: _rows_of(conn, t, workflow["local_workflow_id"]) for t in tables[1:]}
        rows["local_workflows"] = [workflow]
        yield workflow, definition_hash(rows)


def _rows_of(conn: Connection, table: Table, workflow_id: uuid.UUID) -> list[Row]:
    columns = [table.c[name] for name in HASHED_COLUMNS[table.name]]
    query = select(*columns).where(table.c.local_workflow_id == workflow_id)
    return [dict(row) for row in conn.execute(query).mappings()]
