"""Raw-driver baselines of a save: the very SQL ``save_uow`` sends, with nothing around it.

A save's statements are taken from the ledger's own SQL modules, so the baseline cannot
drift from what the service runs. SQLite: BEGIN, the snapshot read of the drift check,
SAVEPOINT, the compare-and-set UPDATE, the history INSERT, RELEASE, COMMIT. PostgreSQL:
BEGIN, the guarded data-modifying statement (compare-and-set, drift guard and history
INSERT at once; its guard read once per UOW before the clock starts, as the service
remembers it), COMMIT. Parameters travel as the service sends them (ids as text,
timestamps as text on SQLite and datetimes on PostgreSQL, JSON as text); the link is a
stand-in, computed before the statement, so the baseline leaves hashing to ours.

The verification baseline reads what verification reads, with its own queries
(``audit.reader``: the same rows and columns, ids and timestamps as text, PostgreSQL's
chunked stream and text loaders), and hashes each history row once with SHA-256 (of its
``repr``); what it leaves out is the checking itself (canonical form, link MAC, sequence
and head checks, attributes and their digests, the orphan and key-ledger queries).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine

from chameleon_workflow.audit.reader import VerifyReader
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.ledger import postgres, sqlite
from chameleon_workflow.testing import Playground

#: What each raw baseline runs, printed with its figure.
RAW_SQL = {
    "sqlite": "BEGIN; snapshot SELECT; SAVEPOINT; UPDATE; INSERT; RELEASE; COMMIT",
    "postgresql": "BEGIN; guarded UPDATE+INSERT statement; COMMIT",
}
#: (verification: its page and history queries, the same rows and columns read the same
#: way, then SHA-256 of each history row's ``repr``; kept short so the table row fits.)
RAW_READ = "verifier's own queries, SHA-256 per row"


def raw_state(engine: Engine, uows: list[Any]) -> list[list[Any]]:
    """Return per UOW what the raw writer tracks: id, version, sequence, hash and guard."""
    state = [[u.uow_id, u.version, u.history_sequence, u.content_hash, None] for u in uows]
    if engine.dialect.name != "postgresql":
        return state
    connection = engine.raw_connection()
    try:
        raw: Any = connection.driver_connection
        for row in state:
            found = raw.execute(postgres.SNAPSHOT, (row[0], row[0])).fetchall()
            row[4] = (found[0][1], found[0][6])
        connection.commit()
    finally:
        connection.close()
    return state


def run_raw(engine: Engine, state: list[list[Any]], play: Playground, count: int) -> None:
    """Write ``count`` saves over the UOWs of ``state`` with the bare driver."""
    sqlite_db = engine.dialect.name == "sqlite"
    first, second = (str(i) for i in play.interactions)
    instance = str(play.instance_id)
    connection = engine.raw_connection()
    raw: Any = connection.driver_connection
    try:
        for i in range(count):
            row = state[i % len(state)]
            uow_id, version, sequence, state_hash, guard = row
            ident, seq = str(uow_id), sequence + 1
            now = datetime.now(UTC)
            stamp = format_timestamp(now)
            when: Any = stamp if sqlite_db else now
            before, after = (first, second) if sequence % 2 else (second, first)
            chain = format(i, "064x")
            meta = orjson.dumps({"step": i}).decode()
            moved = ["PENDING", after, state_hash, when, None, 0, when, version + 1, seq, chain]
            history = [str(uuid.uuid4()), instance, ident, seq, "TRANSITION", "PENDING"]
            history += ["PENDING", state_hash, state_hash, before, after, None, stamp, "move"]
            history += [meta, None, chain, 2, "bench", None, 0, None, None, None]
            if sqlite_db:
                raw.execute("BEGIN")
                raw.execute(sqlite.SNAPSHOT, (ident,)).fetchall()
                raw.execute("SAVEPOINT chameleon_write")
                raw.execute(sqlite.UPDATE, (*moved, ident, version))
                raw.execute(sqlite.INSERT_HISTORY, history)
                raw.execute("RELEASE chameleon_write")
            else:
                history[12] = now
                params = [*moved, uow_id, version, *guard, *history]
                if raw.execute(postgres.GUARDED_APPEND, params).fetchone() is None:
                    raise AssertionError(f"raw baseline lost its compare-and-set on {ident}")
            raw.commit()
            row[1], row[2] = version + 1, seq
    finally:
        connection.close()


def read_and_hash(engine: Engine, instance: uuid.UUID) -> float:
    """Time reading an instance's history as verification does, hashing each row once."""
    connection = engine.raw_connection()
    try:
        reader = VerifyReader(connection.driver_connection, engine.dialect.name, str(instance))
        sha256 = hashlib.sha256
        started = time.perf_counter()
        for page in reader.pages():
            for row in reader.history(page):
                sha256(repr(row).encode()).digest()
        return time.perf_counter() - started
    finally:
        connection.rollback()
        connection.close()
