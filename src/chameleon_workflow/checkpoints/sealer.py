"""The sealer: gives every unsealed ledger row the next position, then signs the new tree head.

Writers never touch a global counter: a transaction that appends a history row, an
attribute version or a log row writes only its own rows. The sealer, one at a time
(``store.sealing``), finds the rows that have no position yet, table by table in the
order of ``leaves.LEDGER_TABLES``, appends them to the tree after the last position,
and stores the signed head in the same transaction, with a CHECKPOINT_SEALED row in the
admin ledger. A row committed while it runs is not seen and is sealed by the next run.

Before growing the tree it checks what it grows from: the newest checkpoint's frontier
must fold to that checkpoint's root, its signature must be ours (when it was signed by
the same key), and the positions must end exactly where that checkpoint ends. Otherwise
it refuses (``CheckpointError``), so it never signs on top of a rewritten history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Row

from chameleon_workflow.admin_ledger import SYSTEM, record_admin_event
from chameleon_workflow.checkpoints import store
from chameleon_workflow.checkpoints.heads import Checkpoint, write_checkpoint
from chameleon_workflow.checkpoints.keys import Signer
from chameleon_workflow.checkpoints.leaves import LEDGER_TABLES, leaf_data, row_id, unsealed
from chameleon_workflow.checkpoints.merkle import (
    append_leaf_keeping,
    frontier_fits,
    frontier_root,
    leaf_hash,
)
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import CheckpointError
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.models import utcnow
from chameleon_workflow.states import AdminAction

#: Rows read and positions inserted per round trip.
SEAL_PAGE = 2000


@dataclass(frozen=True, slots=True)
class SealResult:
    """What one seal did: the newest checkpoint (None while the ledger is empty), rows added."""

    checkpoint: Checkpoint | None
    new_leaves: int
    elapsed_s: float


def seal(engine: Engine, signer: Signer, clock: Callable[[], datetime] = utcnow) -> SealResult:
    """Seal every ledger row written so far into the tree and sign its new head.

    When no row is new, nothing is written and the newest checkpoint is returned as is.
    """
    started = time.perf_counter()
    with translated_errors(), store.sealing(engine) as connection:
        latest = store.newest(connection)
        frontier, size = _grown_from(connection, latest, signer)
        first, news = size, 0
        for ledger in LEDGER_TABLES:
            for page in unsealed(connection, ledger, SEAL_PAGE):
                positions, nodes = [], []
                for row in page:
                    mapping = row._mapping
                    news += not _records_a_seal(ledger.name, mapping)
                    digest = leaf_hash(leaf_data(ledger.name, mapping))
                    nodes += append_leaf_keeping(frontier, size, digest, store.NODE_LEVEL)
                    positions.append(
                        {
                            "position": size,
                            "kind": ledger.name,
                            "row_id": row_id(ledger, mapping),
                            "leaf_hash": digest.hex(),
                        }
                    )
                    size += 1
                store.add_leaves(connection, positions)
                store.add_nodes(connection, nodes)
        if size == first:
            head = None if latest is None else store.as_checkpoint(latest)
            return SealResult(head, 0, time.perf_counter() - started)
        moment = clock()
        checkpoint = Checkpoint.signed(
            signer, size, frontier_root(frontier), format_timestamp(moment)
        )
        store.add_checkpoint(connection, checkpoint, moment, frontier)
        if news:
            _record(connection, checkpoint, signer)
    return SealResult(checkpoint, size - first, time.perf_counter() - started)


def _records_a_seal(table: str, row: Any) -> bool:
    return table == "admin_events" and row["action"] == AdminAction.CHECKPOINT_SEALED


def _record(connection: Connection, checkpoint: Checkpoint, signer: Signer) -> None:
    """Record the seal in the admin ledger (the next seal covers that row).

    A seal that covered nothing but the record of the seal before it is not recorded
    again, so an idle ledger settles after one more seal instead of growing forever.
    """
    record_admin_event(
        connection,
        AdminAction.CHECKPOINT_SEALED,
        principal=SYSTEM,
        subject_id=checkpoint.tree_size,
        details={
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
            "key_id": signer.key_id,
        },
    )


def seal_to_file(
    engine: Engine, signer: Signer, path: Path, clock: Callable[[], datetime] = utcnow
) -> SealResult:
    """Seal, then write the newest checkpoint's JSON file to ``path`` (when there is one)."""
    result = seal(engine, signer, clock)
    if result.checkpoint is not None:
        write_checkpoint(result.checkpoint, path)
    return result


def _grown_from(
    connection: Connection, latest: Row[Any] | None, signer: Signer
) -> tuple[list[bytes], int]:
    """Return the frontier and size to grow, after checking them against the newest head."""
    top = store.top_position(connection)
    if latest is None:
        if top is not None:
            raise CheckpointError(
                f"ledger_leaves holds positions up to {top} but there is no checkpoint: "
                "the checkpoint table was emptied behind the sealer's back"
            )
        return [], 0
    head = store.as_checkpoint(latest)
    frontier = _frontier(latest.frontier)
    if not frontier_fits(frontier, head.tree_size) or frontier_root(frontier) != head.root:
        raise CheckpointError(
            f"the newest checkpoint (size {head.tree_size}) does not hold together: its stored "
            "frontier does not give its root; run `chameleon verify --checkpoint`"
        )
    if head.key_id == signer.key_id and not head.signed_by(signer.public_key):
        raise CheckpointError(
            f"the newest checkpoint (size {head.tree_size}) carries a signature this key did "
            "not make; run `chameleon verify --checkpoint`"
        )
    if top != head.tree_size - 1:
        raise CheckpointError(
            f"positions end at {top} but the newest checkpoint covers {head.tree_size} leaves; "
            "run `chameleon verify --checkpoint`"
        )
    return frontier, head.tree_size


def _frontier(stored: Any) -> list[bytes]:
    try:
        return [bytes.fromhex(node) for node in stored]
    except (TypeError, ValueError):
        raise CheckpointError("the newest checkpoint's stored frontier is malformed") from None
