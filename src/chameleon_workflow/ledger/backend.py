"""The interface the ledger's writer needs from a back end, and what both back ends share.

Each back end (``sqlite``, ``postgres``) runs its own SQL on the raw driver connection
inside the session's transaction: SQLAlchemy would build, compile and process every
statement in Python, which on the statements of a save costs several times what the
database itself spends. This module holds the shapes a write hands down (``Cas``,
``Guard``), the ``LedgerSQL`` protocol both back ends implement, and the few helpers
they share. The schema they target is the one in ``models`` (tests read every column
back through the ORM to keep the two in step).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, Engine

from chameleon_workflow.chain import HASHED_FIELDS, KEYED_COLUMNS, LINK_VERSION, KeyedRecord
from chameleon_workflow.errors import ConcurrencyError

#: (key, version, raw value, is_deleted) of the latest version of each attribute.
AttributeRow = tuple[str, int, Any, Any]
#: (uow_id, expected version, new column values) of a compare-and-set.
Cas = tuple[uuid.UUID, int, dict[str, Any]]
#: (content_hash, attribute fingerprint) a guarded write expects to find stored.
Guard = tuple[str, bytes]


class LedgerSQL(Protocol):
    """What the ledger's writer needs from a back end."""

    #: The history INSERT (the benchmarks replay it with ``history_params``).
    history_sql: str

    def history_params(self, record: KeyedRecord, chain: str, now: datetime) -> list[Any]:
        """Return the history INSERT's parameters for a record and its link."""

    def snapshot(self, conn: Connection, uow_id: uuid.UUID) -> list[tuple[Any, ...]]:
        """Return (version, content_hash, key, key_version, raw value, is_deleted) rows.

        A back end that offers guarded writes appends the attribute fingerprint to each row.
        """

    def append(
        self,
        conn: Connection,
        cas: Cas,
        record: KeyedRecord,
        chain: str,
        attribute_rows: list[dict[str, Any]],
    ) -> None:
        """Compare-and-set the UOW row, append the history row and attribute versions."""

    def touch(self, conn: Connection, cas: Cas) -> None:
        """Compare-and-set the UOW row's heartbeat (and version) without history."""

    def guarded_append(
        self, conn: Connection, cas: Cas, guard: Guard, record: KeyedRecord, chain: str
    ) -> bool:
        """Append as ``append`` does only if the row and attributes match ``guard``."""

    def guarded_touch(self, conn: Connection, cas: Cas, guard: Guard) -> bool:
        """Touch as ``touch`` does only if the row and attributes match ``guard``."""

    def insert_uow(self, conn: Connection, values: Sequence[Any]) -> None:
        """Insert a new UOW row: ``values`` in ``UOW_COLUMNS`` order, as ``uow_values`` gives."""

    def insert_history(
        self, conn: Connection, record: KeyedRecord, chain: str, now: datetime
    ) -> None:
        """Insert a history row with no compare-and-set (a UOW's first row)."""

    def insert_attributes(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert attribute versions."""

    def side_engine(self, engine: Engine, *, wait: bool) -> Engine:
        """Return the engine a side transaction (the breach writer) opens its session on."""

    def limit_lock_wait(self, conn: Connection) -> None:
        """Bound how long a side transaction waits for a lock the caller may hold."""


#: History columns in INSERT order: the format-1 fields, ``chain_hash``, ``link_version``,
#: then what format 2 adds (each back end's INSERT lists its columns in this order).
HISTORY_COLUMNS: tuple[str, ...] = (*HASHED_FIELDS, "chain_hash", *KEYED_COLUMNS)
_record_values = attrgetter(
    *(c for c in HISTORY_COLUMNS if c not in ("chain_hash", "link_version"))
)
_LINK_AT = HISTORY_COLUMNS.index("chain_hash")
#: The UOW row's columns in INSERT order (all of them).
UOW_COLUMNS: tuple[str, ...] = (
    "uow_id",
    "instance_id",
    "local_workflow_id",
    "parent_id",
    "current_interaction_id",
    "status",
    "content_hash",
    "last_heartbeat_at",
    "held_by_actor_id",
    "version",
    "history_sequence",
    "chain_head",
    "retry_count",
    "created_at",
    "updated_at",
)
_uow_values = attrgetter(*UOW_COLUMNS)
_STATUS_AT = UOW_COLUMNS.index("status")


def uow_values(uow: Any) -> list[Any]:
    """Return a new UOW's column values in ``UOW_COLUMNS`` order (ids, times as objects)."""
    values = list(_uow_values(uow))
    values[_STATUS_AT] = str(values[_STATUS_AT])  # the status enum's value
    return values


#: Attribute columns in INSERT order.
ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "uow_id",
    "instance_id",
    "key",
    "version",
    "value",
    "is_deleted",
    "actor_id",
    "reasoning",
    "created_at",
    "salt",
    "value_digest",
    "history_sequence",
)


def history_params(record: KeyedRecord, chain: str, stamp: Any) -> list[Any]:
    """Return the history INSERT's parameters, with ``stamp`` as the transition time."""
    # Ids are already canonical text in the record; both back ends take text (PostgreSQL
    # casts it in the statement), which skips a UUID parse per id.
    out = list(_record_values(record))
    out[12] = stamp
    out[14] = json_text(out[14])
    out[15] = json_text(out[15])
    out[_LINK_AT:_LINK_AT] = (chain, LINK_VERSION)
    return out


def json_text(value: Any) -> str | None:
    """Return a JSON document as text for the driver (None is SQL NULL)."""
    return None if value is None else orjson.dumps(value).decode()


def uuid_text(value: uuid.UUID | None) -> str | None:
    """Return a UUID as canonical text (None stays None)."""
    return None if value is None else str(value)


def driver(conn: Connection) -> Any:
    """Return the raw driver connection (sqlite3 / psycopg) under the session's connection."""
    return conn.connection.driver_connection


def lost(uow_id: uuid.UUID) -> ConcurrencyError:
    """Return the error of a compare-and-set that matched no row."""
    return ConcurrencyError(f"UOW {uow_id} was changed by another writer; reload it and retry")
