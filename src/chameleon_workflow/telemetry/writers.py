"""Bulk writers for ``interaction_logs``: binary COPY and ``executemany``.

Entries become linked rows in ``rows`` (``link_rows``, ``render_json``, re-exported here);
this module sends them with the driver's fastest bulk path inside the flush's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg.types.string import BytesBinaryDumper
from sqlalchemy.orm import Session

from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.telemetry.rows import LinkedRows, link_lazily, link_rows, render_json
from chameleon_workflow.telemetry.streams import Streams, lost_streams, open_entry

__all__ = [
    "PG_COPY",
    "PG_TYPES",
    "SQLITE_INSERT",
    "LinkedRows",
    "copy_postgres",
    "insert_sqlite",
    "link_lazily",
    "link_rows",
    "render_json",
    "write_entries",
]

_COLUMNS = (
    "log_id, instance_id, uow_id, actor_id, role_id, interaction_id, "
    '"timestamp", log_type, event_details, error_metadata, stream_id, stream_seq, key_id, '
    "chain_hash"
)
PG_COPY = f"COPY interaction_logs ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
PG_TYPES = ["uuid"] * 6 + ["timestamptz", "text", "jsonb", "jsonb", "uuid", "int8", "text", "text"]
SQLITE_INSERT = f"INSERT INTO interaction_logs ({_COLUMNS}) VALUES ({', '.join('?' * 14)})"


#: What ``copy_postgres`` tells psycopg: every uuid and jsonb value arrives in its binary
#: wire form already (``rows.link_lazily``), so psycopg's C bytea dumper sends it as it is.
#: Binary COPY carries no type oids: the server reads each field with its column's type.
_COPY_TYPES = ["bytea" if name in {"uuid", "jsonb"} else name for name in PG_TYPES]


def copy_postgres(raw: psycopg.Connection[Any], rows: Iterable[tuple[Any, ...]]) -> None:
    """Send rows with binary COPY on an open psycopg connection (inside its transaction).

    Rows come from ``link_rows``/``link_lazily``: UUIDs as their 16 bytes, JSON as jsonb's
    binary form (version byte 1, then the text), so no Python code converts them per value.
    """
    with raw.cursor() as cursor:
        # By oid, bytea maps to the DB-API ``Binary`` dumper (Python code per value); this
        # cursor takes psycopg's plain bytes dumper, which its C build replaces with C code.
        cursor.adapters.register_dumper(None, BytesBinaryDumper)
        with cursor.copy(PG_COPY) as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(row)


def insert_sqlite(raw: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert rows with ``executemany`` on an open sqlite3 connection (inside its transaction)."""
    raw.executemany(SQLITE_INSERT, rows)


def write_entries(session: Session, entries: Sequence[TelemetryEntry], streams: Streams) -> None:
    """Write entries into the database's stream, inside the session's transaction, no commit.

    A stream's first flush opens it: the STREAM_OPENED row is written first (so on SQLite
    the transaction holds the write lock before it reads), then a TELEMETRY_LOSS row for
    each stream this writer left unclosed before, then the entries. The stream moves on
    only when the buffer commits (``Streams.commit``).
    """
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    dialect = connection.dialect.name
    write = insert_sqlite if dialect == "sqlite" else copy_postgres
    stream = streams.for_session(session)
    seq, previous = stream.next_seq, stream.last_link
    if not stream.opened:
        opening = link_rows([open_entry(stream)], stream, seq, previous, dialect)
        write(raw, opening.rows)
        seq, previous = opening.next_seq, opening.last_link
        entries = [*lost_streams(session, streams), *entries]
    position = LinkedRows([], seq, previous)
    rows = link_lazily(entries, stream, position, dialect)
    # PostgreSQL ingests what was sent while the next rows are linked; SQLite works in this
    # thread, and measured faster inserting a finished list (less CPU per row).
    write(raw, list(rows) if dialect == "sqlite" else rows)
    streams.stage(stream, position.next_seq, position.last_link)
