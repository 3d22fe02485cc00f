"""The persistence hot path in each back end's own SQL, run on the raw driver connection.

SQLAlchemy builds, compiles and processes every statement in Python; on the three
statements of a save that costs several times what the database itself spends. These
writers speak straight to sqlite3 / psycopg inside the session's transaction. The
schema they target is the one in ``models`` (tests read every column back through the
ORM to keep the two in step).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection

from chameleon_workflow.chain import LedgerRecord
from chameleon_workflow.errors import ConcurrencyError
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.ledger import sql_text as q

#: (key, version, raw value, is_deleted) of the latest version of each attribute.
AttributeRow = tuple[str, int, Any, Any]
#: (uow_id, expected version, new column values) of a compare-and-set.
Cas = tuple[uuid.UUID, int, dict[str, Any]]
#: (content_hash, attribute fingerprint) a guarded write expects to find stored.
Guard = tuple[str, bytes]

#: The record's fields in history column order (the chain hash is appended last).
_record_values = attrgetter(*q.HISTORY_COLUMNS[:-1])


class LedgerSQL(Protocol):
    """What the persistence service needs from a back end."""

    history_sql: str

    def history_params(self, record: LedgerRecord, chain: str, now: datetime) -> list[Any]:
        """Return the history INSERT's parameters for a record and its link."""

    def snapshot(self, conn: Connection, uow_id: uuid.UUID) -> list[tuple[Any, ...]]:
        """Return (version, content_hash, key, key_version, raw value, is_deleted) rows.

        A back end that offers guarded writes appends the attribute fingerprint to each row.
        """

    def decode(self, value: Any) -> Any:
        """Turn a raw attribute value from ``snapshot`` into its JSON value."""

    def append(
        self,
        conn: Connection,
        cas: Cas,
        record: LedgerRecord,
        chain: str,
        attribute_rows: list[dict[str, Any]],
    ) -> None:
        """Compare-and-set the UOW row, append the history row and attribute versions."""

    def touch(self, conn: Connection, cas: Cas) -> None:
        """Compare-and-set the UOW row's holder/retry/heartbeat without history."""

    def guarded_append(
        self, conn: Connection, cas: Cas, guard: Guard, record: LedgerRecord, chain: str
    ) -> bool:
        """Append as ``append`` does only if the row and attributes match ``guard``."""

    def guarded_touch(self, conn: Connection, cas: Cas, guard: Guard) -> bool:
        """Touch as ``touch`` does only if the row and attributes match ``guard``."""

    def insert_attributes(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert attribute versions."""

    def insert_history(
        self, conn: Connection, record: LedgerRecord, chain: str, now: datetime
    ) -> None:
        """Insert a history row with no compare-and-set (a UOW's first row)."""


def _lost(uow_id: object) -> ConcurrencyError:
    return ConcurrencyError(f"UOW {uow_id} was changed by another writer; reload it and retry")


def _json_text(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _same(value: Any) -> Any:
    return value


class _Base:
    """Shared shaping of values; subclasses say how each type travels to the driver."""

    placeholder = "?"
    #: SQL casts per column (PostgreSQL: text parameters typed by the statement).
    casts: dict[str, str] = {}  # noqa: RUF012 - class-level constant, never mutated

    def __init__(self) -> None:
        p, casts = self.placeholder, self.casts
        self.snapshot_sql = q.SNAPSHOT.format(p=p, value=self.value_column, extra=self.extra_column)
        self.update_sql = q.cas_sql(q.UPDATE_COLUMNS, p, casts)
        self.touch_sql = q.cas_sql(q.TOUCH_COLUMNS, p, casts)
        self.history_sql = (
            f"INSERT INTO uow_history ({', '.join(q.HISTORY_COLUMNS)}) "
            f"VALUES ({q.values_sql(q.HISTORY_COLUMNS, p, casts)})"
        )
        self.attribute_sql = (
            f"INSERT INTO uow_attributes ({', '.join(q.ATTRIBUTE_COLUMNS)}) "
            f"VALUES ({q.values_sql(q.ATTRIBUTE_COLUMNS, p, casts)})"
        )
        self._update_shapes = [self._shape(c) for c in q.UPDATE_COLUMNS]
        self._touch_shapes = [self._shape(c) for c in q.TOUCH_COLUMNS]

    value_column = "a.value"
    extra_column = ""

    def _shape(self, column: str) -> Callable[[Any], Any]:
        if column in q.UUID_COLUMNS:
            return self.as_uuid
        if column in q.TIME_COLUMNS:
            return self.as_time
        if column == "status":
            return str
        return _same

    def as_uuid(self, value: uuid.UUID | str | None) -> Any:
        """Shape a UUID for the driver."""
        return None if value is None else str(value)

    def as_time(self, value: datetime | None) -> Any:
        """Shape a timestamp for the driver."""
        return value

    def as_json(self, value: Any) -> Any:
        """Shape a JSON document for the driver (None is SQL NULL)."""
        return _json_text(value)

    def decode(self, value: Any) -> Any:
        """Turn a raw attribute value into its JSON value (text is JSON text)."""
        return orjson.loads(value) if isinstance(value, str) else value

    def _update_params(
        self, columns: Sequence[str], shapes: list[Callable[[Any], Any]], cas: Cas
    ) -> list[Any]:
        uow_id, version, values = cas
        out = [shape(values[c]) for c, shape in zip(columns, shapes, strict=True)]
        out += [uow_id if self.native_uuid else str(uow_id), version]
        return out

    native_uuid = False

    def history_params(self, record: LedgerRecord, chain: str, now: datetime) -> list[Any]:
        """Return the history INSERT's parameters for a record and its link."""
        # Ids are already canonical text in the record; both back ends take text (PostgreSQL
        # casts it in the statement), which skips a UUID parse per id.
        out = list(_record_values(record))
        out[12] = self.stamp(record, now)
        out[14] = self.as_json(out[14])
        out[15] = self.as_json(out[15])
        out.append(chain)
        return out

    def stamp(self, record: LedgerRecord, now: datetime) -> Any:
        """Return the transition time as the driver takes it."""
        return now

    def guarded_append(
        self, conn: Connection, cas: Cas, guard: Guard, record: LedgerRecord, chain: str
    ) -> bool:
        """Not offered where ``snapshot`` returns no fingerprint (so no guard exists)."""
        raise NotImplementedError

    def guarded_touch(self, conn: Connection, cas: Cas, guard: Guard) -> bool:
        """Not offered where ``snapshot`` returns no fingerprint (so no guard exists)."""
        raise NotImplementedError

    def insert_history(
        self, conn: Connection, record: LedgerRecord, chain: str, now: datetime
    ) -> None:
        """Insert a history row with no compare-and-set (a UOW's first row)."""
        _driver(conn).execute(self.history_sql, self.history_params(record, chain, now))

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

    def as_time(self, value: datetime | None) -> Any:
        """Store the canonical fixed-width UTC text."""
        return None if value is None else format_timestamp(value)

    def stamp(self, record: LedgerRecord, now: datetime) -> Any:
        """Reuse the record's canonical text: it is exactly what SQLite stores."""
        return record.transition_timestamp

    def snapshot(self, conn: Connection, uow_id: uuid.UUID) -> list[tuple[Any, ...]]:
        """Read the UOW's version, hash and latest attribute versions (values undecoded)."""
        return _driver(conn).execute(self.snapshot_sql, (str(uow_id),)).fetchall()  # type: ignore[no-any-return]

    def append(
        self,
        conn: Connection,
        cas: Cas,
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
        cas: Cas,
        record: LedgerRecord,
        chain: str,
        attribute_rows: list[dict[str, Any]],
    ) -> None:
        params = self._update_params(q.UPDATE_COLUMNS, self._update_shapes, cas)
        if raw.execute(self.update_sql, params).rowcount != 1:
            raise _lost(cas[0])
        raw.execute(self.history_sql, self.history_params(record, chain, cas[2]["updated_at"]))
        if attribute_rows:
            raw.executemany(self.attribute_sql, map(self._attribute_params, attribute_rows))

    def touch(self, conn: Connection, cas: Cas) -> None:
        """Compare-and-set the liveness columns."""
        params = self._update_params(q.TOUCH_COLUMNS, self._touch_shapes, cas)
        if _driver(conn).execute(self.touch_sql, params).rowcount != 1:
            raise _lost(cas[0])

    def insert_attributes(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert attribute versions with executemany."""
        _driver(conn).executemany(self.attribute_sql, map(self._attribute_params, rows))


_PG_CASTS = dict.fromkeys(q.UUID_COLUMNS, "::uuid") | dict.fromkeys(q.JSON_COLUMNS, "::jsonb")


class PostgresSQL(_Base):
    """psycopg 3: compare-and-set, drift guard and append in one statement."""

    placeholder = "%s"
    casts = _PG_CASTS
    native_uuid = True
    # Read jsonb as its text and decode with orjson: faster than psycopg's json loader, and
    # the text is what the drift-check memo keys on. The fingerprint rides along.
    value_column = "a.value::text"
    extra_column = ", " + q.PG_FINGERPRINT.format(uow="%s")  # once, not per attribute row

    def __init__(self) -> None:
        super().__init__()
        history_values = q.values_sql(q.HISTORY_COLUMNS, self.placeholder, self.casts)
        # One round trip: the history row is inserted only if the compare-and-set matched;
        # RETURNING says which happened.
        append = (
            "WITH moved AS ({update} RETURNING uow_id) "
            f"INSERT INTO uow_history ({', '.join(q.HISTORY_COLUMNS)}) "
            f"SELECT {history_values} FROM moved RETURNING sequence"
        )
        self.append_sql = append.format(update=self.update_sql)
        # The drift check inside the write: the row still holds the content_hash, and the
        # attributes still have the fingerprint, that a check in Python accepted.
        guard = (
            " AND content_hash = %s AND "
            + q.PG_FINGERPRINT.format(uow="units_of_work.uow_id")
            + " = %s"
        )
        self.guarded_append_sql = append.format(update=self.update_sql + guard)
        self.guarded_touch_sql = self.touch_sql + guard + " RETURNING version"

    def as_uuid(self, value: uuid.UUID | str | None) -> Any:
        """Pass UUID objects as they are (psycopg sends the native type), text as text."""
        return value

    def snapshot(self, conn: Connection, uow_id: uuid.UUID) -> list[tuple[Any, ...]]:
        """Read version, hash and latest attributes (values as JSON text), fingerprint last."""
        # No pipeline: in one, psycopg still waits for its own BEGIN (it syncs after it).
        return _driver(conn).execute(self.snapshot_sql, (uow_id, uow_id)).fetchall()  # type: ignore[no-any-return]

    def append(
        self,
        conn: Connection,
        cas: Cas,
        record: LedgerRecord,
        chain: str,
        attribute_rows: list[dict[str, Any]],
    ) -> None:
        """Compare-and-set plus history in one statement, then the attribute rows."""
        raw = _driver(conn)
        params = self._update_params(q.UPDATE_COLUMNS, self._update_shapes, cas)
        params += self.history_params(record, chain, cas[2]["updated_at"])
        if raw.execute(self.append_sql, params).fetchone() is None:
            raise _lost(cas[0])
        if attribute_rows:
            self.insert_attributes(conn, attribute_rows)

    def touch(self, conn: Connection, cas: Cas) -> None:
        """Compare-and-set the liveness columns."""
        params = self._update_params(q.TOUCH_COLUMNS, self._touch_shapes, cas)
        if _driver(conn).execute(self.touch_sql, params).rowcount != 1:
            raise _lost(cas[0])

    def guarded_append(
        self, conn: Connection, cas: Cas, guard: Guard, record: LedgerRecord, chain: str
    ) -> bool:
        """Compare-and-set, drift guard and history in one statement; False: nothing written."""
        params = self._update_params(q.UPDATE_COLUMNS, self._update_shapes, cas)
        params += guard
        params += self.history_params(record, chain, cas[2]["updated_at"])
        return _driver(conn).execute(self.guarded_append_sql, params).fetchone() is not None

    def guarded_touch(self, conn: Connection, cas: Cas, guard: Guard) -> bool:
        """Compare-and-set the liveness columns behind the drift guard; False: not written."""
        params = self._update_params(q.TOUCH_COLUMNS, self._touch_shapes, cas)
        params += guard
        return _driver(conn).execute(self.guarded_touch_sql, params).fetchone() is not None

    def insert_attributes(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert attribute versions with executemany (pipelined by psycopg)."""
        with _driver(conn).cursor() as cursor:
            cursor.executemany(self.attribute_sql, [self._attribute_params(r) for r in rows])


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
