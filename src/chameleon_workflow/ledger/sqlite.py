"""The ledger's SQL for SQLite, run on the raw sqlite3 connection: statements, then their use.

Ids and timestamps travel as text (timestamps in the canonical fixed-width UTC form the
chain hashes), JSON as text. The writes of one call run inside a SAVEPOINT so that a
failed call leaves nothing behind in the caller's transaction. SQLite has no way to
guard a write on the attributes' content inside the statement, so every save reads and
checks them first (``snapshot`` returns no fingerprint, hence no guard is ever made),
unless a checked read in the same transaction left it a pass (``checks.checked_read``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from chameleon_workflow.chain import KeyedRecord
from chameleon_workflow.db import SQLITE_NO_WAIT
from chameleon_workflow.hashing import format_timestamp
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
    uuid_text,
)

#: The UOW row's version and content_hash with the latest version of each attribute.
SNAPSHOT = """
SELECT u.version, u.content_hash, a.key, a.version, a.value, a.is_deleted
FROM units_of_work u
LEFT JOIN uow_attributes a ON a.uow_id = u.uow_id AND NOT EXISTS (
    SELECT 1 FROM uow_attributes n
    WHERE n.uow_id = a.uow_id AND n.key = a.key AND n.version > a.version)
WHERE u.uow_id = ?
"""
#: The compare-and-set of a recorded change.
UPDATE = """
UPDATE units_of_work SET
    status = ?, current_interaction_id = ?, content_hash = ?, last_heartbeat_at = ?,
    held_by_actor_id = ?, retry_count = ?, updated_at = ?, version = ?,
    history_sequence = ?, chain_head = ?
WHERE uow_id = ? AND version = ?
"""
#: The compare-and-set of a save that records no change: a heartbeat.
TOUCH = """
UPDATE units_of_work SET last_heartbeat_at = ?, updated_at = ?, version = ?
WHERE uow_id = ? AND version = ?
"""
INSERT_HISTORY = (
    f"INSERT INTO uow_history ({', '.join(HISTORY_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(HISTORY_COLUMNS))})"
)
INSERT_UOW = (
    f"INSERT INTO units_of_work ({', '.join(UOW_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(UOW_COLUMNS))})"
)
_UOW_IDS = tuple(i for i, c in enumerate(UOW_COLUMNS) if c.endswith("_id"))
_UOW_STAMPS = tuple(i for i, c in enumerate(UOW_COLUMNS) if c.endswith("_at"))
INSERT_ATTRIBUTE = (
    f"INSERT INTO uow_attributes ({', '.join(ATTRIBUTE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(ATTRIBUTE_COLUMNS))})"
)


class SQLiteSQL:
    """Run the ledger's writes on sqlite3: text ids and timestamps, a SAVEPOINT per write."""

    history_sql = INSERT_HISTORY

    def history_params(self, record: KeyedRecord, chain: str, now: datetime) -> list[Any]:
        """Return the history INSERT's parameters (the record's text is what SQLite stores)."""
        return history_params(record, chain, record.transition_timestamp)

    def snapshot(self, conn: Connection, uow_id: uuid.UUID) -> list[tuple[Any, ...]]:
        """Read the UOW's version, hash and latest attribute versions (values undecoded)."""
        return driver(conn).execute(SNAPSHOT, (str(uow_id),)).fetchall()  # type: ignore[no-any-return]

    def append(
        self,
        conn: Connection,
        cas: Cas,
        record: KeyedRecord,
        chain: str,
        attribute_rows: list[dict[str, Any]],
    ) -> None:
        """Run the compare-and-set and the inserts inside one SAVEPOINT."""
        raw = driver(conn)
        raw.execute("SAVEPOINT chameleon_write")
        try:
            _append_rows(raw, cas, record, chain, attribute_rows)
        except BaseException:
            raw.execute("ROLLBACK TO chameleon_write")
            raw.execute("RELEASE chameleon_write")
            raise
        raw.execute("RELEASE chameleon_write")

    def touch(self, conn: Connection, cas: Cas) -> None:
        """Compare-and-set the liveness columns."""
        if driver(conn).execute(TOUCH, _touch_params(cas)).rowcount != 1:
            raise lost(cas[0])

    def guarded_append(
        self, conn: Connection, cas: Cas, guard: Guard, record: KeyedRecord, chain: str
    ) -> bool:
        """Refuse: SQLite snapshots carry no fingerprint, so no guard is ever made."""
        raise NotImplementedError

    def guarded_touch(self, conn: Connection, cas: Cas, guard: Guard) -> bool:
        """Refuse: SQLite snapshots carry no fingerprint, so no guard is ever made."""
        raise NotImplementedError

    def insert_uow(self, conn: Connection, values: Sequence[Any]) -> None:
        """Insert a new UOW row, ids and timestamps as the text SQLite stores."""
        params = list(values)
        for i in _UOW_IDS:
            params[i] = uuid_text(params[i])
        for i in _UOW_STAMPS:
            params[i] = _stamp(params[i])
        driver(conn).execute(INSERT_UOW, params)

    def insert_history(
        self, conn: Connection, record: KeyedRecord, chain: str, now: datetime
    ) -> None:
        """Insert a history row with no compare-and-set (a UOW's first row)."""
        params = history_params(record, chain, record.transition_timestamp)
        driver(conn).execute(INSERT_HISTORY, params)

    def insert_attributes(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert attribute versions with executemany."""
        driver(conn).executemany(INSERT_ATTRIBUTE, map(_attribute_params, rows))

    def side_engine(self, engine: Engine, *, wait: bool) -> Engine:
        """Without ``wait``, make BEGIN IMMEDIATE fail at once when the write lock is taken."""
        return engine if wait else engine.execution_options(**{SQLITE_NO_WAIT: True})

    def limit_lock_wait(self, conn: Connection) -> None:
        """Leave the wait to the connection's busy_timeout, which already bounds it."""


def _append_rows(
    raw: Any, cas: Cas, record: KeyedRecord, chain: str, attribute_rows: list[dict[str, Any]]
) -> None:
    if raw.execute(UPDATE, _update_params(cas)).rowcount != 1:
        raise lost(cas[0])
    raw.execute(INSERT_HISTORY, history_params(record, chain, record.transition_timestamp))
    if attribute_rows:
        raw.executemany(INSERT_ATTRIBUTE, map(_attribute_params, attribute_rows))


def _update_params(cas: Cas) -> tuple[Any, ...]:
    uow_id, version, values = cas
    return (
        str(values["status"]),
        uuid_text(values["current_interaction_id"]),
        values["content_hash"],
        _stamp(values["last_heartbeat_at"]),
        uuid_text(values["held_by_actor_id"]),
        values["retry_count"],
        _stamp(values["updated_at"]),
        values["version"],
        values["history_sequence"],
        values["chain_head"],
        str(uow_id),
        version,
    )


def _touch_params(cas: Cas) -> tuple[Any, ...]:
    uow_id, version, values = cas
    return (
        _stamp(values["last_heartbeat_at"]),
        _stamp(values["updated_at"]),
        values["version"],
        str(uow_id),
        version,
    )


def _attribute_params(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        uuid_text(row["uow_id"]),
        uuid_text(row["instance_id"]),
        row["key"],
        row["version"],
        json_text(row["value"]),
        bool(row["is_deleted"]),
        uuid_text(row["actor_id"]),
        row["reasoning"],
        _stamp(row["created_at"]),
        row["salt"],
        row["value_digest"],
        row["history_sequence"],
    )


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else format_timestamp(value)
