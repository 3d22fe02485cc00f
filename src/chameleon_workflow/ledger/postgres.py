"""The ledger's SQL for PostgreSQL, run on the raw psycopg 3 connection: statements, then use.

Ids travel as UUIDs or as text cast in the statement, JSON as text cast to jsonb. A save
is one statement: a data-modifying CTE whose compare-and-set UPDATE feeds the history
INSERT (any failed statement aborts the transaction, so no SAVEPOINT is needed). Once a
UOW's attributes passed a drift check, the UPDATE can also be guarded: it matches only
while the stored content_hash and a SHA-256 fingerprint the server computes over the
latest attribute rows are those that passed, so the save needs no read.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from chameleon_workflow.chain import KeyedRecord
from chameleon_workflow.ledger.backend import (
    ATTRIBUTE_COLUMNS,
    HISTORY_COLUMNS,
    UOW_COLUMNS,
    Cas,
    Guard,
    driver,
    history_params,
    json_text,
    lost,
)

#: SHA-256 over a UOW's latest attribute rows as the server renders them. Equal
#: fingerprints mean the very rows a drift check accepted (ORDER BY key: one text).
_FINGERPRINT = """(SELECT sha256(convert_to(coalesce(string_agg(
    jsonb_build_array(f.key, f.version, f.value, f.is_deleted)::text, ',' ORDER BY f.key), ''),
    'UTF8'))
FROM uow_attributes f WHERE f.uow_id = {uow} AND NOT EXISTS (
    SELECT 1 FROM uow_attributes g
    WHERE g.uow_id = f.uow_id AND g.key = f.key AND g.version > f.version))"""
#: Version, content_hash and the latest attribute versions, the fingerprint alongside.
#: Values come as jsonb text, decoded with orjson: faster than psycopg's json loader, and
#: the text is what the drift-check memo keys on.
SNAPSHOT = f"""
SELECT u.version, u.content_hash, a.key, a.version, a.value::text, a.is_deleted,
    {_FINGERPRINT.format(uow="%s")}
FROM units_of_work u
LEFT JOIN uow_attributes a ON a.uow_id = u.uow_id AND NOT EXISTS (
    SELECT 1 FROM uow_attributes n
    WHERE n.uow_id = a.uow_id AND n.key = a.key AND n.version > a.version)
WHERE u.uow_id = %s
"""
_UPDATE = """UPDATE units_of_work SET
    status = %s, current_interaction_id = %s::uuid, content_hash = %s, last_heartbeat_at = %s,
    held_by_actor_id = %s::uuid, retry_count = %s, updated_at = %s, version = %s,
    history_sequence = %s, chain_head = %s
WHERE uow_id = %s AND version = %s"""
#: The compare-and-set of a save that records no change: a heartbeat.
TOUCH = """UPDATE units_of_work SET last_heartbeat_at = %s, updated_at = %s, version = %s
WHERE uow_id = %s AND version = %s"""
_HISTORY_COLUMNS = ", ".join(HISTORY_COLUMNS)
_UUID = frozenset(
    {"history_id", "instance_id", "uow_id", "previous_interaction_id", "new_interaction_id"}
    | {"actor_id", "holder_id", "local_workflow_id", "parent_id"}
)
_JSON = frozenset({"transition_metadata", "changes"})


def _placeholder(column: str) -> str:
    if column in _UUID:
        return "%s::uuid"
    return "%s::jsonb" if column in _JSON else "%s"


_HISTORY_VALUES = ", ".join(_placeholder(c) for c in HISTORY_COLUMNS)
INSERT_HISTORY = f"INSERT INTO uow_history ({_HISTORY_COLUMNS}) VALUES ({_HISTORY_VALUES})"
#: The drift check inside the write: the row still holds the content_hash, and the
#: attributes still have the fingerprint, that a check in Python accepted.
_GUARD = f" AND content_hash = %s AND {_FINGERPRINT.format(uow='units_of_work.uow_id')} = %s"


def _append(update: str) -> str:
    # One round trip: the history row is inserted only if the compare-and-set matched, and
    # RETURNING says which happened.
    return (
        f"WITH moved AS ({update} RETURNING uow_id) "
        f"INSERT INTO uow_history ({_HISTORY_COLUMNS}) "
        f"SELECT {_HISTORY_VALUES} FROM moved RETURNING sequence"
    )


APPEND = _append(_UPDATE)
GUARDED_APPEND = _append(_UPDATE + _GUARD)
GUARDED_TOUCH = TOUCH + _GUARD + " RETURNING version"
INSERT_UOW = (
    f"INSERT INTO units_of_work ({', '.join(UOW_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(UOW_COLUMNS))})"
)
INSERT_ATTRIBUTE = (
    f"INSERT INTO uow_attributes ({', '.join(ATTRIBUTE_COLUMNS)}) VALUES "
    "(%s::uuid, %s::uuid, %s, %s, %s::jsonb, %s, %s::uuid, %s, %s, %s, %s, %s)"
)


class PostgresSQL:
    """Run the ledger's writes on psycopg 3: compare-and-set, drift guard and append at once."""

    history_sql = INSERT_HISTORY

    def history_params(self, record: KeyedRecord, chain: str, now: datetime) -> list[Any]:
        """Return the history INSERT's parameters, the transition time as a datetime."""
        return history_params(record, chain, now)

    def snapshot(self, conn: Connection, uow_id: uuid.UUID) -> list[tuple[Any, ...]]:
        """Read version, hash and latest attributes (values as JSON text), fingerprint last."""
        # No pipeline: in one, psycopg still waits for its own BEGIN (it syncs after it).
        return driver(conn).execute(SNAPSHOT, (uow_id, uow_id)).fetchall()  # type: ignore[no-any-return]

    def append(
        self,
        conn: Connection,
        cas: Cas,
        record: KeyedRecord,
        chain: str,
        attribute_rows: list[dict[str, Any]],
    ) -> None:
        """Compare-and-set plus history in one statement, then the attribute rows."""
        params = _update_params(cas)
        params += history_params(record, chain, cas[2]["updated_at"])
        if driver(conn).execute(APPEND, params).fetchone() is None:
            raise lost(cas[0])
        if attribute_rows:
            self.insert_attributes(conn, attribute_rows)

    def touch(self, conn: Connection, cas: Cas) -> None:
        """Compare-and-set the liveness columns."""
        if driver(conn).execute(TOUCH, _touch_params(cas)).rowcount != 1:
            raise lost(cas[0])

    def guarded_append(
        self, conn: Connection, cas: Cas, guard: Guard, record: KeyedRecord, chain: str
    ) -> bool:
        """Compare-and-set, drift guard and history in one statement; False: nothing written."""
        params = _update_params(cas)
        params += guard
        params += history_params(record, chain, cas[2]["updated_at"])
        return driver(conn).execute(GUARDED_APPEND, params).fetchone() is not None

    def guarded_touch(self, conn: Connection, cas: Cas, guard: Guard) -> bool:
        """Compare-and-set the liveness columns behind the drift guard; False: not written."""
        params = _touch_params(cas)
        params += guard
        return driver(conn).execute(GUARDED_TOUCH, params).fetchone() is not None

    def insert_uow(self, conn: Connection, values: Sequence[Any]) -> None:
        """Insert a new UOW row (psycopg sends the UUIDs and datetimes as they are)."""
        driver(conn).execute(INSERT_UOW, values)

    def insert_history(
        self, conn: Connection, record: KeyedRecord, chain: str, now: datetime
    ) -> None:
        """Insert a history row with no compare-and-set (a UOW's first row)."""
        driver(conn).execute(INSERT_HISTORY, history_params(record, chain, now))

    def insert_attributes(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert attribute versions with executemany (pipelined by psycopg)."""
        with driver(conn).cursor() as cursor:
            cursor.executemany(INSERT_ATTRIBUTE, [_attribute_params(r) for r in rows])

    def side_engine(self, engine: Engine, *, wait: bool) -> Engine:
        """Keep the engine: not waiting is the side transaction's FOR UPDATE NOWAIT."""
        return engine

    def limit_lock_wait(self, conn: Connection) -> None:
        """Give up on a row lock after two seconds rather than the server's default."""
        conn.exec_driver_sql("SET LOCAL lock_timeout = '2s'")


def _update_params(cas: Cas) -> list[Any]:
    # psycopg sends UUID and datetime objects as they are; text ids meet a cast.
    uow_id, version, values = cas
    return [
        str(values["status"]),
        values["current_interaction_id"],
        values["content_hash"],
        values["last_heartbeat_at"],
        values["held_by_actor_id"],
        values["retry_count"],
        values["updated_at"],
        values["version"],
        values["history_sequence"],
        values["chain_head"],
        uow_id,
        version,
    ]


def _touch_params(cas: Cas) -> list[Any]:
    uow_id, version, values = cas
    return [
        values["last_heartbeat_at"],
        values["updated_at"],
        values["version"],
        uow_id,
        version,
    ]


def _attribute_params(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["uow_id"],
        row["instance_id"],
        row["key"],
        row["version"],
        json_text(row["value"]),
        bool(row["is_deleted"]),
        row["actor_id"],
        row["reasoning"],
        row["created_at"],
        row["salt"],
        row["value_digest"],
        row["history_sequence"],
    )
