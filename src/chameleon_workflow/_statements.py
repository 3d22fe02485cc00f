"""The persistence hot path in each back end's own SQL, run on the raw driver connection.

SQLAlchemy builds, compiles and processes every statement in Python; on the three
statements of a save that costs several times what the database itself spends. These
writers speak straight to sqlite3 / psycopg inside the session's transaction. The
schema they target is the one in ``models`` (tests read every column back through the
ORM to keep the two in step).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import orjson
from psycopg.types.json import Jsonb
from sqlalchemy import Connection

from .errors import ConcurrencyError
from .hashing import format_timestamp
from .ledger import LedgerRecord

_SNAPSHOT = """
SELECT u.version, u.content_hash, a.key, a.version, a.value, a.is_deleted
FROM units_of_work u
LEFT JOIN uow_attributes a ON a.uow_id = u.uow_id AND NOT EXISTS (
    SELECT 1 FROM uow_attributes n
    WHERE n.uow_id = a.uow_id AND n.key = a.key AND n.version > a.version)
WHERE u.uow_id = {p}
"""
_UPDATE_COLUMNS = (
    "status",
    "current_interaction_id",
    "content_hash",
    "last_heartbeat_at",
    "held_by_actor_id",
    "retry_count",
    "updated_at",
    "version",
    "history_sequence",
    "chain_head",
)
_TOUCH_COLUMNS = ("held_by_actor_id", "retry_count", "last_heartbeat_at", "updated_at", "version")
_HISTORY_COLUMNS = (
    "history_id",
    "instance_id",
    "uow_id",
    "sequence",
    "event_type",
    "previous_status",
    "new_status",
    "previous_state_hash",
    "new_state_hash",
    "previous_interaction_id",
    "new_interaction_id",
    "actor_id",
    "transition_timestamp",
    "reasoning",
    "transition_metadata",
    "changes",
    "chain_hash",
)
_ATTRIBUTE_COLUMNS = (
    "uow_id",
    "instance_id",
    "key",
    "version",
    "value",
    "is_deleted",
    "actor_id",
    "reasoning",
    "created_at",
)
_JSON_HISTORY = {"transition_metadata", "changes"}
_UUID_HISTORY = {
    "history_id",
    "instance_id",
    "uow_id",
    "previous_interaction_id",
    "new_interaction_id",
    "actor_id",
}


def _set(columns: Sequence[str], p: str) -> str:
    return ", ".join(f"{c} = {p}" for c in columns)


def _cas_sql(columns: Sequence[str], p: str) -> str:
    return f"UPDATE units_of_work SET {_set(columns, p)} WHERE uow_id = {p} AND version = {p}"


def _insert_sql(table: str, columns: Sequence[str], p: str) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([p] * len(columns))})"


class LedgerSQL(Protocol):
    """What the persistence service needs from a back end."""

    def snapshot(self, conn: Connection, uow_id: uuid.UUID) -> list[tuple[Any, ...]]:
        """Return (version, content_hash, key, key_version, value, is_deleted) rows."""

    def append(
        self,
        conn: Connection,
        cas: tuple[uuid.UUID, int, dict[str, Any]],
        record: LedgerRecord,
        chain: str,
        attribute_rows: list[dict[str, Any]],
    ) -> None:
        """Compare-and-set the UOW row, append the history row and attribute versions."""

    def touch(self, conn: Connection, cas: tuple[uuid.UUID, int, dict[str, Any]]) -> None:
        """Compare-and-set the UOW row's holder/retry/heartbeat without history."""

    def insert_attributes(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert attribute versions."""

    def insert_history(
        self, conn: Connection, record: LedgerRecord, chain: str, now: datetime
    ) -> None:
        """Insert a history row with no compare-and-set (a UOW's first row)."""


def _lost(uow_id: object) -> ConcurrencyError:
    return ConcurrencyError(f"UOW {uow_id} was changed by another writer; reload it and retry")


class _Base:
    """Shared shaping of values; subclasses say how each type travels to the driver."""

    placeholder = "?"

    def __init__(self) -> None:
        p = self.placeholder
        self.snapshot_sql = _SNAPSHOT.format(p=p)
        self.update_sql = _cas_sql(_UPDATE_COLUMNS, p)
        self.touch_sql = _cas_sql(_TOUCH_COLUMNS, p)
        self.history_sql = _insert_sql("uow_history", _HISTORY_COLUMNS, p)
        self.attribute_sql = _insert_sql("uow_attributes", _ATTRIBUTE_COLUMNS, p)

    def as_uuid(self, value: uuid.UUID | str | None) -> Any:
        """Shape a UUID for the driver."""
        raise NotImplementedError

    def as_time(self, value: datetime | None) -> Any:
        """Shape a timestamp for the driver."""
        raise NotImplementedError

    def as_json(self, value: Any) -> Any:
        """Shape a JSON document for the driver (None is SQL NULL)."""
        raise NotImplementedError

    def _update_params(
        self, columns: Sequence[str], cas: tuple[uuid.UUID, int, dict[str, Any]]
    ) -> list[Any]:
        uow_id, version, values = cas
        out: list[Any] = []
        for column in columns:
            value = values[column]
            if column in ("current_interaction_id", "held_by_actor_id"):
                value = self.as_uuid(value)
            elif column in ("last_heartbeat_at", "updated_at"):
                value = self.as_time(value)
            elif column == "status":
                value = str(value)
            out.append(value)
        out += [self.as_uuid(uow_id), version]
        return out

    def _history_params(self, record: LedgerRecord, chain: str, now: datetime) -> list[Any]:
        fields = record.hash_input()
        out: list[Any] = []
        for column in _HISTORY_COLUMNS[:-1]:
            value = fields[column]
            if column in _UUID_HISTORY:
                value = self.as_uuid(value)
            elif column in _JSON_HISTORY:
                value = self.as_json(value)
            elif column == "transition_timestamp":
                value = self.as_time(now)
            out.append(value)
        out.append(chain)
        return out

    def insert_history(
        self, conn: Connection, record: LedgerRecord, chain: str, now: datetime
    ) -> None:
        """Insert a history row with no compare-and-set (a UOW's first row)."""
        _driver(conn).execute(self.history_sql, self._history_params(record, chain, now))

    def _attribute_params(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return (
            self.as_uuid(row["uow_id"]),
            self.as_uuid(row["instance_id"]),
            row["key"],
            row["version"],
            self.as_json(row["value"]),
            bool(row["is_deleted"]),
            self.as_uuid(row["actor_id"]),
            row["reasoning"],
            self.as_time(row["created_at"]),
        )


class SQLiteSQL(_Base):
    """sqlite3: text UUIDs and timestamps, JSON as text, a SAVEPOINT around each write."""

    placeholder = "?"

    def as_uuid(self, value: uuid.UUID | str | None) -> Any:
        """Store the canonical hyphenated text."""
        return None if value is None else str(value)

    def as_time(self, value: datetime | None) -> Any:
        """Store the canonical fixed-width UTC text."""
        return None if value is None else format_timestamp(value)

    def as_json(self, value: Any) -> Any:
        """Store JSON text."""
        return None if value is None else orjson.dumps(value).decode()

    def snapshot(self, conn: Connection, uow_id: uuid.UUID) -> list[tuple[Any, ...]]:
        """Read the UOW's version, hash and latest attribute versions."""
        raw = _driver(conn)
        rows = raw.execute(self.snapshot_sql, (str(uow_id),)).fetchall()
        return [
            (v, h, k, kv, orjson.loads(val) if isinstance(val, str) else val, bool(d))
            for v, h, k, kv, val, d in rows
        ]

    def append(
        self,
        conn: Connection,
        cas: tuple[uuid.UUID, int, dict[str, Any]],
        record: LedgerRecord,
        chain: str,
        attribute_rows: list[dict[str, Any]],
    ) -> None:
        """Run the compare-and-set and the inserts inside one SAVEPOINT."""
        raw = _driver(conn)
        raw.execute("SAVEPOINT chameleon_write")
        try:
            self._write(raw, cas, record, chain, attribute_rows)
        except BaseException:
            raw.execute("ROLLBACK TO chameleon_write")
            raw.execute("RELEASE chameleon_write")
            raise
        raw.execute("RELEASE chameleon_write")

    def _write(
        self,
        raw: Any,
        cas: tuple[uuid.UUID, int, dict[str, Any]],
        record: LedgerRecord,
        chain: str,
        attribute_rows: list[dict[str, Any]],
    ) -> None:
        if raw.execute(self.update_sql, self._update_params(_UPDATE_COLUMNS, cas)).rowcount != 1:
            raise _lost(cas[0])
        raw.execute(self.history_sql, self._history_params(record, chain, cas[2]["updated_at"]))
        if attribute_rows:
            raw.executemany(self.attribute_sql, map(self._attribute_params, attribute_rows))

    def touch(self, conn: Connection, cas: tuple[uuid.UUID, int, dict[str, Any]]) -> None:
        """Compare-and-set the liveness columns."""
        raw = _driver(conn)
        if raw.execute(self.touch_sql, self._update_params(_TOUCH_COLUMNS, cas)).rowcount != 1:
            raise _lost(cas[0])

    def insert_attributes(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert attribute versions with executemany."""
        _driver(conn).executemany(self.attribute_sql, map(self._attribute_params, rows))


class PostgresSQL(_Base):
    """psycopg 3: native uuid/timestamptz/jsonb; compare-and-set and append in one statement."""

    placeholder = "%s"

    def __init__(self) -> None:
        super().__init__()
        p = self.placeholder
        history_values = ", ".join([p] * len(_HISTORY_COLUMNS))
        # One round trip: the history row is inserted only if the compare-and-set matched;
        # RETURNING says which happened.
        self.append_sql = (
            f"WITH moved AS ({self.update_sql} RETURNING uow_id) "
            f"INSERT INTO uow_history ({', '.join(_HISTORY_COLUMNS)}) "
            f"SELECT {history_values} FROM moved RETURNING sequence"
        )

    def as_uuid(self, value: uuid.UUID | str | None) -> Any:
        """Pass a UUID object (psycopg sends the native type)."""
        if value is None or isinstance(value, uuid.UUID):
            return value
        return uuid.UUID(value)

    def as_time(self, value: datetime | None) -> Any:
        """Pass the aware datetime."""
        return value

    def as_json(self, value: Any) -> Any:
        """Wrap as jsonb."""
        return None if value is None else Jsonb(value, dumps=_orjson_text)

    def snapshot(self, conn: Connection, uow_id: uuid.UUID) -> list[tuple[Any, ...]]:
        """Read the UOW's version, hash and latest attribute versions."""
        return list(_driver(conn).execute(self.snapshot_sql, (uow_id,)).fetchall())

    def append(
        self,
        conn: Connection,
        cas: tuple[uuid.UUID, int, dict[str, Any]],
        record: LedgerRecord,
        chain: str,
        attribute_rows: list[dict[str, Any]],
    ) -> None:
        """Compare-and-set plus history in one statement, then the attribute rows."""
        raw = _driver(conn)
        params = self._update_params(_UPDATE_COLUMNS, cas) + self._history_params(
            record, chain, cas[2]["updated_at"]
        )
        if raw.execute(self.append_sql, params).fetchone() is None:
            raise _lost(cas[0])
        if attribute_rows:
            self.insert_attributes(conn, attribute_rows)

    def touch(self, conn: Connection, cas: tuple[uuid.UUID, int, dict[str, Any]]) -> None:
        """Compare-and-set the liveness columns."""
        cursor = _driver(conn).execute(self.touch_sql, self._update_params(_TOUCH_COLUMNS, cas))
        if cursor.rowcount != 1:
            raise _lost(cas[0])

    def insert_attributes(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert attribute versions with executemany (pipelined by psycopg)."""
        with _driver(conn).cursor() as cursor:
            cursor.executemany(self.attribute_sql, [self._attribute_params(r) for r in rows])


def _orjson_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _driver(conn: Connection) -> Any:
    return conn.connection.driver_connection


_SQLITE = SQLiteSQL()
_POSTGRES = PostgresSQL()


def for_connection(conn: Connection) -> LedgerSQL:
    """Return the writer for the connection's back end."""
    return _SQLITE if conn.dialect.name == "sqlite" else _POSTGRES


def short_lock_wait(conn: Connection) -> None:
    """Bound how long a side transaction waits for a row lock (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
