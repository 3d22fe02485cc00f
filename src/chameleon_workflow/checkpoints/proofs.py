"""Inclusion and consistency proofs, built from the database for a given checkpoint.

An inclusion proof carries the row's leaf data as the database holds it *now* and the
audit path from the stored leaf hashes; checked against the signed root, it shows the
row is, byte for byte, the row that was sealed at that position. A consistency proof
shows a smaller checkpoint's tree is a prefix of a larger one's. Both are built from the
subtree hashes the sealer kept in ``ledger_nodes`` and from leaf hashes for the rest: a
few hundred rows per proof, whatever the size of the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from chameleon_workflow.checkpoints import store
from chameleon_workflow.checkpoints.heads import Checkpoint
from chameleon_workflow.checkpoints.leaves import BY_KIND, leaf_data, rows_by_id
from chameleon_workflow.checkpoints.merkle import (
    Range,
    blocks,
    consistency_ranges,
    frontier_root,
    inclusion_ranges,
    leaf_hash,
    root_of,
    verify_inclusion,
)
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import InvalidValueError, NotFoundError

#: The ``format`` field of an inclusion proof document.
PROOF_FORMAT = "chameleon-inclusion-proof/v1"


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Proof that one row, as stored now, is the leaf at ``leaf_index`` of a checkpoint."""

    checkpoint: Checkpoint
    table: str
    row_id: str
    leaf_index: int
    leaf_data: bytes
    audit_path: tuple[bytes, ...]

    def valid(self) -> bool:
        """Tell whether the path leads from this leaf data to the checkpoint's root."""
        digest, head = leaf_hash(self.leaf_data), self.checkpoint
        return verify_inclusion(self.leaf_index, head.tree_size, digest, self.audit_path, head.root)

    def to_json(self) -> dict[str, Any]:
        """Return the proof document ``chameleon prove`` prints."""
        return {
            "format": PROOF_FORMAT,
            "checkpoint": self.checkpoint.to_json(),
            "table": self.table,
            "row_id": self.row_id,
            "leaf_index": self.leaf_index,
            "leaf_data": self.leaf_data.decode("utf-8"),
            "audit_path": [node.hex() for node in self.audit_path],
        }


def stored_range_hashes(connection: Connection, ranges: Sequence[Range]) -> list[bytes]:
    """Return the hash of each proof range, from stored subtree hashes and leaf hashes.

    Subtrees of ``store.NODE_LEVEL`` and up come from ``ledger_nodes``; smaller ones (and
    any the cache lacks) from the leaf hashes they cover.
    """
    parts_of = [blocks(start, end) for start, end in ranges]
    big = [part for parts in parts_of for part in parts if part[0] >= store.NODE_LEVEL]
    stored = store.node_hashes(connection, big)
    return [
        frontier_root([stored.get(part) or _from_leaves(connection, *part) for part in parts])
        for parts in parts_of
    ]


def _from_leaves(connection: Connection, level: int, index: int) -> bytes:
    first = index << level
    return root_of(store.leaf_hashes(connection, first, first + (1 << level)))[0]


def prove_inclusion(
    connection: Connection, checkpoint: Checkpoint, table: str, row_id: str
) -> InclusionProof:
    """Build the inclusion proof of one ledger row against ``checkpoint``."""
    ledger = BY_KIND.get(table)
    if ledger is None:
        raise InvalidValueError(f"{table!r} is not a ledger table ({', '.join(BY_KIND)})")
    with translated_errors():
        row = rows_by_id(connection, ledger, [row_id]).get(row_id)
        if row is None:
            raise NotFoundError(f"no {table} row with id {row_id}")
        position = store.position_of(connection, table, row_id)
        if position is None or position >= checkpoint.tree_size:
            sealed = "not sealed yet" if position is None else f"sealed at position {position}"
            raise NotFoundError(
                f"{table} row {row_id} is {sealed}: the checkpoint covers positions "
                f"0 to {checkpoint.tree_size - 1}; prove it against a newer checkpoint"
            )
        ranges = inclusion_ranges(position, checkpoint.tree_size)
        path = tuple(stored_range_hashes(connection, ranges))
    return InclusionProof(checkpoint, table, row_id, position, leaf_data(table, row), path)


def prove_consistency(connection: Connection, old: int, new: int) -> list[bytes]:
    """Return the stored-hash proof that the tree of ``old`` leaves is a prefix of ``new``."""
    if old == new:
        return []
    with translated_errors():
        return stored_range_hashes(connection, consistency_ranges(old, new))
