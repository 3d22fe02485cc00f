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
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_dumps
from sqlalchemy.orm import Session

from chameleon_workflow.errors import ConfigurationError, InvalidValueError
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.log_links import LOG_LINK_FIELDS, log_body
from chameleon_workflow.telemetry.entry import IdLike, TelemetryEntry
from chameleon_workflow.telemetry.streams import Stream, Streams, lost_streams, open_entry

_COLUMNS = (
    "log_id, instance_id, uow_id, actor_id, role_id, interaction_id, "
    '"timestamp", log_type, event_details, error_metadata, stream_id, stream_seq, key_id, '
    "chain_hash"
)
PG_COPY = f"COPY interaction_logs ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
PG_TYPES = ["uuid"] * 6 + ["timestamptz", "text", "jsonb", "jsonb", "uuid", "int8", "text", "text"]
SQLITE_INSERT = f"INSERT INTO interaction_logs ({_COLUMNS}) VALUES ({', '.join('?' * 14)})"
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


@dataclass(slots=True)
class LinkedRows:
    """Rows in driver form, linked into a stream from ``first_seq``, and the last link."""

    rows: list[tuple[Any, ...]]
    next_seq: int
    last_link: str | None


_UNLINKABLE = "a value JSON cannot hold exactly (such as an integer beyond 2**53)"


def _rows(
    entries: Iterable[TelemetryEntry],
    stream: Stream,
    first_seq: int,
    previous: str | None,
    text: bool,
) -> LinkedRows:
    """Convert entries to driver tuples (text for SQLite, native for COPY), linking each."""
    as_text, bad = _id_converter(True)
    native = _id_converter(False)[0]
    keys, key_id = stream.keys, stream.keys.current_id
    fixed = {"stream_id": str(stream.stream_id), "key_id": key_id}
    rows = []
    seq = first_seq
    for e in entries:
        ids = _ids_of(e)
        text_ids = [as_text(i) for i in ids]
        meta = _note_bad_ids(e) if bad else e.error_metadata
        log_id, moment = uuid.uuid4(), _timestamp(e)
        head = (str(log_id), *text_ids, format_timestamp(moment), e.log_type)
        values = dict(zip(LOG_LINK_FIELDS, head, strict=False))
        values.update(fixed, stream_seq=seq)
        details, metadata, body = _linked(values, previous, e.event_details, meta)
        link = keys.mac(key_id, body)
        if link is None:
            raise ConfigurationError(f"the current ledger key {key_id} is not held")
        if text:
            row = (*head, _text(details), _text(metadata), fixed["stream_id"], seq, key_id, link)
        else:
            native_ids = (native(i) for i in ids)
            row = (log_id, *native_ids, moment, e.log_type, details, metadata)
            row += (stream.stream_id, seq, key_id, link)
        rows.append(row)
        previous = link
        seq += 1
    return LinkedRows(rows, seq, previous)


_ids_of = attrgetter("instance_id", "uow_id", "actor_id", "role_id", "interaction_id")


def _linked(
    values: dict[str, Any], previous: str | None, details: Any, metadata: Any
) -> tuple[bytes | None, bytes | None, bytes]:
    """Render the JSON columns into ``values``; return them and what the link covers.

    A value JSON cannot hold exactly (an integer beyond 2**53) cannot be put in canonical
    form, so the row keeps a marker with its ``repr`` instead: every row stays linkable.
    """
    stored = render_json(details), render_json(metadata)
    values["event_details"], values["error_metadata"] = (_decoded(d) for d in stored)
    try:
        return (*stored, log_body(previous, values))
    except InvalidValueError:
        stored = (
            render_json({"__unlinkable__": _UNLINKABLE, "repr": _safe_repr(details)}),
            render_json({"__unlinkable__": _UNLINKABLE, "repr": _safe_repr(metadata)}),
        )
        values["event_details"], values["error_metadata"] = (_decoded(d) for d in stored)
        return (*stored, log_body(previous, values))


def _decoded(data: bytes | None) -> Any:
    return None if data is None else orjson.loads(data)


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode()


def _timestamp(entry: TelemetryEntry) -> datetime:
    assert entry.timestamp is not None  # set by __post_init__
    return entry.timestamp


def link_rows(
    entries: Iterable[TelemetryEntry],
    stream: Stream,
    first_seq: int,
    previous: str | None,
    dialect: str,
) -> LinkedRows:
    """Convert and link entries for ``dialect`` (SQLite: text; PostgreSQL: binary COPY)."""
    return _rows(entries, stream, first_seq, previous, text=dialect == "sqlite")


def _passthrough(data: Any) -> Any:
    return data


def copy_postgres(raw: psycopg.Connection[Any], rows: Sequence[tuple[Any, ...]]) -> None:
    """Send rows with binary COPY on an open psycopg connection (inside its transaction)."""
    with raw.cursor() as cursor:
        # JSON is serialized already; this cursor's adapters only prefix jsonb's version byte.
        set_json_dumps(_passthrough, context=cursor)
        with cursor.copy(PG_COPY) as copy:
            copy.set_types(PG_TYPES)
            for row in rows:
                copy.write_row(row)


def insert_sqlite(raw: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
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
    linked = link_rows(entries, stream, seq, previous, dialect)
    write(raw, linked.rows)
    streams.stage(stream, linked.next_seq, linked.last_link)
