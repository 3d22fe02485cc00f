"""Verification against a checkpoint kept outside the database.

Every leaf the checkpoint covers is recomputed from the row as it is stored now and
compared with the hash stored when it was sealed; the stored hashes must still give the
signed root; the signature must be the given public key's; and the database's newest
checkpoint must extend the given one (an RFC 9162 consistency proof). One pass over the
positions does it all, a page at a time.
"""

from __future__ import annotations

import enum
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection

from chameleon_workflow.checkpoints import store
from chameleon_workflow.checkpoints.heads import Checkpoint
from chameleon_workflow.checkpoints.keys import key_id
from chameleon_workflow.checkpoints.leaves import BY_KIND, leaf_data, rows_by_id
from chameleon_workflow.checkpoints.merkle import (
    RangeHasher,
    append_leaf,
    consistency_ranges,
    frontier_root,
    leaf_hash,
    verify_consistency,
)
from chameleon_workflow.db import translated_errors
from chameleon_workflow.redactions import Redactions, load_redactions


class CheckpointFindingKind(enum.StrEnum):
    """Kinds of problems verification against a checkpoint reports."""

    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    KEY_MISMATCH = "KEY_MISMATCH"
    LEAF_MISSING = "LEAF_MISSING"
    LEAF_CHANGED = "LEAF_CHANGED"
    CHECKPOINT_MISMATCH = "CHECKPOINT_MISMATCH"
    NOT_EXTENDING = "NOT_EXTENDING"


@dataclass(frozen=True, slots=True)
class CheckpointFinding:
    """One problem: what, at which position of which table's row (when it is about one), how."""

    kind: CheckpointFindingKind
    position: int | None
    table: str
    row_id: str
    detail: str

    def __str__(self) -> str:
        """Render as one line for logs and the CLI."""
        where = "" if self.position is None else f" at position {self.position}"
        row = f" {self.table} {self.row_id}" if self.row_id else ""
        return f"{self.kind}{where}{row}: {self.detail}"


@dataclass(frozen=True, slots=True)
class CheckpointReport:
    """The result of verifying the database against one checkpoint."""

    tree_size: int
    leaves_checked: int
    newest_size: int | None
    findings: tuple[CheckpointFinding, ...]
    elapsed_s: float
    #: Covered leaves whose rows were archived, per segment: their bytes are in the segment
    #: (``verify --archive`` checks them there), not in the database.
    archived: tuple[tuple[str, int], ...] = ()

    @property
    def ok(self) -> bool:
        """Tell whether nothing was found."""
        return not self.findings

    def rows_per_second(self) -> float:
        """Return covered rows recomputed per second."""
        return self.leaves_checked / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(slots=True)
class _Walk:
    """What one pass over the positions gathers."""

    size: int
    consistency: RangeHasher
    checked: int = 0
    fed: int = 0  # covered stored hashes fed to the frontier, in order and without a gap
    next_position: int = 0
    frontier: list[bytes] = field(default_factory=list)
    intact: bool = True  # no position missing so far: the stored hashes still form a tree
    findings: list[CheckpointFinding] = field(default_factory=list)
    archived_rows: Mapping[tuple[str, str], str] = field(default_factory=dict)
    archived: dict[str, int] = field(default_factory=dict)
    #: Rows a redaction rewrote: their sealed leaf is the recorded original one.
    redactions: Redactions = field(default_factory=Redactions)

    def add(
        self, kind: CheckpointFindingKind, position: int | None, detail: str, *row: str
    ) -> None:
        table, row_id = row if row else ("", "")
        self.findings.append(CheckpointFinding(kind, position, table, row_id, detail))


def verify_checkpoint(
    connection: Connection,
    checkpoint: Checkpoint,
    public_key: Ed25519PublicKey,
    archived: Mapping[tuple[str, str], str] | None = None,
) -> CheckpointReport:
    """Verify the database against ``checkpoint``; report every finding, never raise on one.

    ``archived`` names the rows an archive recorded taking, ``(table, row id) -> segment``:
    such a row missing from its table is counted against its segment, not reported.
    """
    started = time.perf_counter()
    with translated_errors():
        latest = store.newest(connection)
        newest = None if latest is None else store.as_checkpoint(latest)
        end = max(checkpoint.tree_size, newest.tree_size if newest else 0)
        walk = _Walk(checkpoint.tree_size, RangeHasher(_proof_ranges(checkpoint, newest)))
        walk.archived_rows = archived or {}
        walk.redactions = load_redactions(connection)
        _check_signature(walk, checkpoint, public_key, "the checkpoint")
        for page in store.leaf_pages(connection, end):
            _check_page(connection, walk, page)
        _mark_gap(walk, end)
        _check_root(walk, checkpoint)
        _check_extension(walk, checkpoint, newest, public_key)
    elapsed = time.perf_counter() - started
    size = None if newest is None else newest.tree_size
    return CheckpointReport(
        checkpoint.tree_size,
        walk.checked,
        size,
        tuple(walk.findings),
        elapsed,
        tuple(sorted(walk.archived.items())),
    )


def _proof_ranges(checkpoint: Checkpoint, newest: Checkpoint | None) -> list[tuple[int, int]]:
    """Return the ranges of the consistency proof from the given checkpoint to the newest."""
    if newest is None or not 0 < checkpoint.tree_size < newest.tree_size:
        return []
    return consistency_ranges(checkpoint.tree_size, newest.tree_size)


def _check_signature(
    walk: _Walk, checkpoint: Checkpoint, public_key: Ed25519PublicKey, what: str
) -> None:
    expected = key_id(public_key)
    if checkpoint.key_id != expected:
        walk.add(
            CheckpointFindingKind.KEY_MISMATCH,
            None,
            f"{what} (size {checkpoint.tree_size}) names key {checkpoint.key_id}; "
            f"the public key given is {expected}",
        )
    elif not checkpoint.signed_by(public_key):
        walk.add(
            CheckpointFindingKind.SIGNATURE_INVALID,
            None,
            f"{what} (size {checkpoint.tree_size}) is not signed by key {expected}",
        )


def _check_page(connection: Connection, walk: _Walk, page: Sequence[store.LeafRow]) -> None:
    """Recompute the covered leaves of one page and feed every stored hash to the tree."""
    covered = [leaf for leaf in page if leaf.position < walk.size]
    wanted: dict[str, list[str]] = defaultdict(list)
    for leaf in covered:
        wanted[leaf.kind].append(leaf.row_id)
    rows = {
        kind: rows_by_id(connection, BY_KIND[kind], ids)
        for kind, ids in wanted.items()
        if kind in BY_KIND
    }
    for leaf in page:
        _mark_gap(walk, leaf.position)
        if walk.intact:
            stored = _hash_bytes(leaf.leaf_hash)
            walk.consistency.add(stored)
            if leaf.position < walk.size:
                append_leaf(walk.frontier, leaf.position, stored)
                walk.fed += 1
        if leaf.position < walk.size:
            _recompute(walk, leaf, rows.get(leaf.kind, {}).get(leaf.row_id))
        walk.next_position = leaf.position + 1


def _hash_bytes(stored: str) -> bytes:
    try:
        return bytes.fromhex(stored)
    except ValueError:  # a forged entry: it cannot give the signed root
        return stored.encode("utf-8", "replace")


def _recompute(walk: _Walk, leaf: store.LeafRow, row: Any) -> None:
    segment = walk.archived_rows.get((leaf.kind, leaf.row_id)) if row is None else None
    if segment is not None:
        walk.archived[segment] = walk.archived.get(segment, 0) + 1
        return
    walk.checked += 1
    if row is None:
        what = "was deleted" if leaf.kind in BY_KIND else "is in no ledger table"
        walk.add(CheckpointFindingKind.LEAF_MISSING, leaf.position, what, leaf.kind, leaf.row_id)
    elif (actual := leaf_hash(leaf_data(leaf.kind, row)).hex()) != leaf.leaf_hash and not (
        _redacted(walk, leaf, actual)
    ):
        walk.add(
            CheckpointFindingKind.LEAF_CHANGED,
            leaf.position,
            "changed since it was sealed",
            leaf.kind,
            leaf.row_id,
        )


def _redacted(walk: _Walk, leaf: store.LeafRow, actual: str) -> bool:
    """Tell whether a redaction recorded this sealed leaf and the row's redacted form."""
    return walk.redactions.leads_to(leaf.kind, leaf.row_id, leaf.leaf_hash, actual)


def _mark_gap(walk: _Walk, reached: int) -> None:
    """Report positions skipped between the last one seen and ``reached``."""
    if reached <= walk.next_position:
        return
    first, last = walk.next_position, reached - 1
    span = f"positions {first} to {last} have" if last > first else f"position {first} has"
    walk.intact = False
    if first < walk.size:
        walk.add(CheckpointFindingKind.LEAF_MISSING, first, f"{span} no leaf: the tree was cut")
    walk.next_position = reached


def _check_root(walk: _Walk, checkpoint: Checkpoint) -> None:
    if walk.fed != checkpoint.tree_size:
        walk.add(
            CheckpointFindingKind.CHECKPOINT_MISMATCH,
            None,
            f"the stored leaves no longer make a tree of {checkpoint.tree_size}",
        )
        return
    root = frontier_root(walk.frontier)
    if root != checkpoint.root:
        walk.add(
            CheckpointFindingKind.CHECKPOINT_MISMATCH,
            None,
            f"the stored leaves give root {root.hex()}, the checkpoint signed "
            f"{checkpoint.root_hash}: the sealed record was rewritten",
        )


def _check_extension(
    walk: _Walk,
    checkpoint: Checkpoint,
    newest: Checkpoint | None,
    public_key: Ed25519PublicKey,
) -> None:
    """Check the database's newest checkpoint is signed and extends the given one."""
    size = checkpoint.tree_size
    if newest is None:
        if size:
            walk.add(CheckpointFindingKind.NOT_EXTENDING, None, "the database holds no checkpoint")
        return
    _check_signature(walk, newest, public_key, "the database's newest checkpoint")
    if newest.tree_size < size:
        walk.add(
            CheckpointFindingKind.NOT_EXTENDING,
            None,
            f"the database's newest checkpoint covers {newest.tree_size} leaves, fewer than "
            f"{size}: the ledger was rewound",
        )
    elif not _extends(walk, checkpoint, newest):
        walk.add(
            CheckpointFindingKind.NOT_EXTENDING,
            None,
            f"the database's newest checkpoint (size {newest.tree_size}, root "
            f"{newest.root_hash}) does not extend this one: its history was forked or rewritten",
        )


def _extends(walk: _Walk, old: Checkpoint, new: Checkpoint) -> bool:
    if old.tree_size == new.tree_size:
        return old.root_hash == new.root_hash
    if old.tree_size == 0:  # every tree extends the empty one
        return True
    if not walk.intact or not walk.consistency.complete:
        return False
    proof = walk.consistency.hashes()
    return verify_consistency(old.tree_size, new.tree_size, old.root, new.root, proof)
