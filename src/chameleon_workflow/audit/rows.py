"""Reading ledger rows for verification in a form a tampered row cannot break.

PostgreSQL's column types guarantee well-formed ids, times and JSON. SQLite stores text
and checks nothing, so there ids, times and JSON are read as the stored text (ids and
times are linked as exactly that text) and JSON is decoded here: a value that is not
JSON becomes ``UNREADABLE``, which no link covers, so the row is reported, never a crash.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import JSON, String, Table, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from chameleon_workflow.columns import GUID, UTCDateTime
from chameleon_workflow.hashing import format_timestamp


class Unreadable:
    """Stands for a stored value that cannot be read back (never equal to a real value)."""

    def __repr__(self) -> str:
        """Name the marker."""
        return "<unreadable>"


UNREADABLE = Unreadable()


def selection(table: Table, names: tuple[str, ...], dialect: str) -> list[ColumnElement[Any]]:
    """Return the columns to read: as stored text on SQLite, typed on PostgreSQL."""
    columns: list[ColumnElement[Any]] = [table.c[name] for name in names]
    if dialect != "sqlite":
        return columns
    return [
        type_coerce(c, String()).label(c.name)
        if isinstance(c.type, GUID | UTCDateTime | JSON)
        else c
        for c in (table.c[name] for name in names)
    ]


def canonical(value: Any) -> Any:
    """Return a typed value as the text its link covers (ids and times); others as they are."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    return value


def decoded_json(value: Any, dialect: str) -> Any:
    """Return a JSON column's value: decoded from SQLite's text, as read on PostgreSQL."""
    if dialect != "sqlite" or not isinstance(value, str):
        return value  # PostgreSQL decoded it; SQLite hands a bare number back as a number
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return UNREADABLE
