"""Row shaping and bulk writers for ``interaction_logs``: binary COPY and ``executemany``.

Every entry becomes a row that cannot fail because of its content: details that are not
JSON become markers, ids that are not UUIDs become NULL (and are noted in the error
metadata), and NUL characters, which PostgreSQL's jsonb refuses, are replaced on both
back ends alike.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_dumps
from sqlalchemy.orm import Session

from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.telemetry.entry import IdLike, TelemetryEntry

_COLUMNS = (
    "log_id, instance_id, uow_id, actor_id, role_id, interaction_id, "
    '"timestamp", log_type, event_details, error_metadata'
)
_PG_COPY = f"COPY interaction_logs ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_PG_TYPES = ["uuid"] * 6 + ["timestamptz", "text", "jsonb", "jsonb"]
_SQLITE_INSERT = f"INSERT INTO interaction_logs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ID_FIELDS = ("instance_id", "uow_id", "actor_id", "role_id", "interaction_id")


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)[:1000]
    except Exception:  # noqa: BLE001 - a broken __repr__ must not fail a log row
        return f"<{type(value).__name__} with failing repr>"


def _json_default(value: Any) -> Any:
    return {"__unserializable__": type(value).__name__, "repr": _safe_repr(value)}


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def render_json(value: Any) -> bytes | None:
    """Serialize a details document for storage; anything not JSON becomes a marker."""
    if value is None:
        return None
    try:
        data = orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except (orjson.JSONEncodeError, TypeError, RecursionError):
        data = orjson.dumps({"__unserializable__": type(value).__name__, "repr": _safe_repr(value)})
    if b"\\u0000" in data:  # PostgreSQL jsonb refuses NUL; keep both back ends identical
        data = orjson.dumps(_strip_nul(orjson.loads(data)))
    return data


def _as_uuid(value: IdLike) -> uuid.UUID | None:
    if value is None or type(value) is uuid.UUID:
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _note_bad_ids(entry: TelemetryEntry) -> Any:
    """Return error metadata extended with ids that are not UUIDs (their columns stay NULL)."""
    bad = {
        name: _safe_repr(getattr(entry, name))
        for name in _ID_FIELDS
        if getattr(entry, name) is not None and _as_uuid(getattr(entry, name)) is None
    }
    meta = entry.error_metadata
    if not bad:
        return meta
    return (
        {**meta, "invalid_ids": bad}
        if isinstance(meta, dict)
        else {"original": meta, "invalid_ids": bad}
    )


def _id_converter(text: bool) -> tuple[Callable[[IdLike], Any], list[IdLike]]:
    """Return a converter to driver form (each distinct id object once) and its bad ids."""
    # Keyed by object identity: UUID hashing and equality are Python code and cost more than
    # converting. Entries keep their ids alive for the whole batch, so an id() is never reused.
    memo: dict[int, Any] = {id(None): None}
    bad: list[IdLike] = []

    def convert(value: IdLike) -> Any:
        try:
            return memo[id(value)]
        except KeyError:
            as_uuid = _as_uuid(value)
            if as_uuid is None:
                bad.append(value)
            result = None if as_uuid is None else str(as_uuid) if text else as_uuid
            memo[id(value)] = result
            return result

    return convert, bad


def _rows(entries: Iterable[TelemetryEntry], text: bool) -> list[tuple[Any, ...]]:
    """Convert entries to driver tuples: text UUIDs/time/JSON for SQLite, native for COPY."""
    convert, bad = _id_converter(text)
    rows = []
    for e in entries:
        ids = [
            convert(i) for i in (e.instance_id, e.uow_id, e.actor_id, e.role_id, e.interaction_id)
        ]
        meta = _note_bad_ids(e) if bad else e.error_metadata
        details, metadata = render_json(e.event_details), render_json(meta)
        moment = _timestamp(e)
        if text:
            details_text, metadata_text = (
                details and details.decode(),
                metadata and metadata.decode(),
            )
            log_id, when = str(uuid.uuid4()), format_timestamp(moment)
            rows.append((log_id, *ids, when, e.log_type, details_text, metadata_text))
        else:
            rows.append((uuid.uuid4(), *ids, moment, e.log_type, details, metadata))
    return rows


def _timestamp(entry: TelemetryEntry) -> datetime:
    assert entry.timestamp is not None  # set by __post_init__
    return entry.timestamp


def sqlite_rows(entries: Iterable[TelemetryEntry]) -> list[tuple[Any, ...]]:
    """Convert entries to the tuples SQLite stores (text UUIDs, canonical time, JSON text)."""
    return _rows(entries, text=True)


def postgres_rows(entries: Iterable[TelemetryEntry]) -> list[tuple[Any, ...]]:
    """Convert entries to the tuples binary COPY sends (UUIDs, aware datetimes, JSON bytes)."""
    return _rows(entries, text=False)


def _passthrough(data: Any) -> Any:
    return data


def copy_postgres(raw: psycopg.Connection[Any], rows: Sequence[tuple[Any, ...]]) -> None:
    """Send rows with binary COPY on an open psycopg connection (inside its transaction)."""
    with raw.cursor() as cursor:
        # JSON is serialized already; this cursor's adapters only prefix jsonb's version byte.
        set_json_dumps(_passthrough, context=cursor)
        with cursor.copy(_PG_COPY) as copy:
            copy.set_types(_PG_TYPES)
            for row in rows:
                copy.write_row(row)


def insert_sqlite(raw: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert rows with ``executemany`` on an open sqlite3 connection (inside its transaction)."""
    raw.executemany(_SQLITE_INSERT, rows)


def write_entries(session: Session, entries: Sequence[TelemetryEntry]) -> None:
    """Write entries through the session's connection, inside its transaction, without commit."""
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    if connection.dialect.name == "sqlite":
        insert_sqlite(raw, sqlite_rows(entries))
    else:
        copy_postgres(raw, postgres_rows(entries))
