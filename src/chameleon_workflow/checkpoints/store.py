"""Reads and writes of ``ledger_leaves`` and ``checkpoints``, and the one-sealer-at-a-time lock.

Both back ends share the SQLAlchemy Core statements here; the lock is the one thing each
does its own way: SQLite's write lock, taken at BEGIN IMMEDIATE, already admits one
writer; PostgreSQL takes a transaction-scoped advisory lock, so a second sealer waits
until the first has committed and then sees every position it assigned.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, Table, func, insert, select, text

from chameleon_workflow.checkpoints.heads import Checkpoint
from chameleon_workflow.checkpoints.records import CheckpointRecord, LedgerLeaf, LedgerNode
from chameleon_workflow.db import SQLITE_IMMEDIATE, translated_errors
from chameleon_workflow.errors import CheckpointError, NotFoundError
from chameleon_workflow.hashing import format_timestamp

LEAVES: Table = LedgerLeaf.__table__  # type: ignore[assignment]
CHECKPOINTS: Table = CheckpointRecord.__table__  # type: ignore[assignment]
NODES: Table = LedgerNode.__table__  # type: ignore[assignment]
#: The lowest level of subtree whose hash the sealer keeps (subtrees of 256 leaves and up):
#: a proof then reads at most a few hundred leaf hashes, whatever the size of the tree.
NODE_LEVEL = 8
#: A stored leaf: position, kind, row id, leaf hash (hex).
LeafRow = Row[int, str, str, str]
#: Positions read per query when walking the tree's leaves.
LEAF_PAGE = 5000
#: Key of the PostgreSQL advisory lock only sealers take ("chkp").
SEALER_LOCK = 0x63686B70


@contextmanager
def sealing(engine: Engine) -> Iterator[Connection]:
    """Yield a connection in a transaction that only one sealer at a time can hold."""
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.execution_options(**{SQLITE_IMMEDIATE: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEALER_LOCK})
            yield connection


def newest(connection: Connection) -> Row[Any] | None:
    """Return the newest checkpoint row (the largest tree), or None before the first seal."""
    query = select(CHECKPOINTS).order_by(CHECKPOINTS.c.tree_size.desc()).limit(1)
    return connection.execute(query).first()


def latest_checkpoint(connection: Connection) -> Checkpoint:
    """Return the newest signed checkpoint; NotFoundError before the first seal."""
    with translated_errors():
        row = newest(connection)
    if row is None:
        raise NotFoundError("no checkpoint yet: the ledger was never sealed")
    return as_checkpoint(row)


def as_checkpoint(row: Row[Any]) -> Checkpoint:
    """Turn a checkpoint row into the signed value it stores."""
    return Checkpoint(
        row.tree_size, row.root_hash, format_timestamp(row.created_at), row.key_id, row.signature
    )


def top_position(connection: Connection) -> int | None:
    """Return the highest position assigned so far, or None when there is none."""
    top: int | None = connection.execute(select(func.max(LEAVES.c.position))).scalar()
    return top


def position_of(connection: Connection, kind: str, row_id: str) -> int | None:
    """Return the position of one row, or None when it has none yet."""
    query = select(LEAVES.c.position).where(LEAVES.c.kind == kind, LEAVES.c.row_id == row_id)
    position: int | None = connection.execute(query).scalar()
    return position


def add_leaves(connection: Connection, leaves: Sequence[dict[str, Any]]) -> None:
    """Insert assigned positions (``position``, ``kind``, ``row_id``, ``leaf_hash``)."""
    if leaves:
        connection.execute(insert(LEAVES), list(leaves))


def add_nodes(connection: Connection, nodes: Sequence[tuple[int, int, bytes]]) -> None:
    """Insert the hashes of completed perfect subtrees ``(level, index, hash)``."""
    if nodes:
        rows = [{"level": lv, "node_index": i, "node_hash": h.hex()} for lv, i, h in nodes]
        connection.execute(insert(NODES), rows)


def node_hashes(connection: Connection, wanted: Sequence[tuple[int, int]]) -> dict[Any, bytes]:
    """Return the stored hashes of the subtrees ``(level, index)`` asked for that exist."""
    found: dict[Any, bytes] = {}
    for level in {lv for lv, _ in wanted}:
        indexes = [i for lv, i in wanted if lv == level]
        query = select(NODES.c.node_index, NODES.c.node_hash).where(
            NODES.c.level == level, NODES.c.node_index.in_(indexes)
        )
        for index, stored in connection.execute(query):
            try:
                found[(level, index)] = bytes.fromhex(stored)
            except ValueError:  # a forged entry: leave it out, the leaves give the hash
                continue
    return found


def leaf_hashes(connection: Connection, start: int, end: int) -> list[bytes]:
    """Return the stored leaf hashes of positions ``start .. end - 1``; a gap is an error."""
    query = (
        select(LEAVES.c.position, LEAVES.c.leaf_hash)
        .where(LEAVES.c.position >= start, LEAVES.c.position < end)
        .order_by(LEAVES.c.position)
    )
    rows = connection.execute(query).all()
    if [position for position, _ in rows] != list(range(start, end)):
        raise CheckpointError(f"positions {start} to {end - 1} are not all there: the tree was cut")
    try:
        return [bytes.fromhex(stored) for _, stored in rows]
    except ValueError:
        raise CheckpointError(
            f"a leaf hash among positions {start} to {end - 1} is not hex"
        ) from None


def add_checkpoint(
    connection: Connection, checkpoint: Checkpoint, moment: datetime, frontier: Sequence[bytes]
) -> None:
    """Store a signed head and the frontier the next seal grows from."""
    connection.execute(
        insert(CHECKPOINTS).values(
            tree_size=checkpoint.tree_size,
            root_hash=checkpoint.root_hash,
            created_at=moment,
            key_id=checkpoint.key_id,
            signature=checkpoint.signature,
            frontier=[node.hex() for node in frontier],
        )
    )


def leaf_pages(connection: Connection, end: int) -> Iterator[Sequence[LeafRow]]:
    """Yield the stored leaves of positions below ``end`` in order, a page of positions at a time.

    A page holds the rows whose positions fall in its range; a missing position is simply
    absent, for the caller to notice.
    """
    columns = (LEAVES.c.position, LEAVES.c.kind, LEAVES.c.row_id, LEAVES.c.leaf_hash)
    for start in range(0, end, LEAF_PAGE):
        stop = min(start + LEAF_PAGE, end)
        query = (
            select(*columns)
            .where(LEAVES.c.position >= start, LEAVES.c.position < stop)
            .order_by(LEAVES.c.position)
        )
        yield connection.execute(query).all()
