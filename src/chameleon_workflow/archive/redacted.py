"""Archived rows a redaction rewrote before the archive: named in the manifest, sealed leaves kept.

A row whose value was redacted no longer hashes to the leaf it was sealed as. An archive
run takes it only when the admin ledger's ``VALUE_REDACTED`` records lead from that
sealed leaf to the row's leaf now (``Redactions.leads_to``). The manifest's ``redacted``
list (absent when empty) names each such row: its checkpoint ``position``, ``table``,
``row_id``, the ``sealed_leaf`` and the ``leaf`` of the redacted form the segment holds.
The manifest's ``merkle_root`` is over the sealed leaves, in checkpoint order, so it is
the root of the very leaves the checkpoints signed.

Checking a segment, a row that does not hash to its sealed leaf is accepted only when
the manifest names its position with exactly the row's leaf and the database's redaction
records lead from the sealed leaf to it; it is then counted by its sealed leaf, and noted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chameleon_workflow.archive.segment import ArchiveError
from chameleon_workflow.checkpoints.merkle import append_leaf, frontier_root, leaf_hash
from chameleon_workflow.log_links import LOG_LINK_FIELDS, log_digest
from chameleon_workflow.redactions import Redactions


def sealed_leaves(
    ledger: Iterable[tuple[int, str, str, str, bytes, Any]], redactions: Redactions
) -> tuple[list[bytes], list[dict[str, Any]]]:
    """Return the sealed leaf of each batch row and the manifest's ``redacted`` entries.

    A row that neither hashes to its sealed leaf nor is a recorded redaction of it is an
    ArchiveError: nothing is archived.
    """
    sealed: list[bytes] = []
    named: list[dict[str, Any]] = []
    for position, table, row_id, stored, line, _ in ledger:
        actual = leaf_hash(line).hex()
        if actual != stored:
            if not redactions.leads_to(table, row_id, stored, actual):
                raise ArchiveError(
                    f"{table} row {row_id} (position {position}) no longer hashes to the leaf "
                    "it was sealed as: run `chameleon verify`; nothing was archived"
                )
            named.append(
                {
                    "position": position,
                    "table": table,
                    "row_id": row_id,
                    "sealed_leaf": stored,
                    "leaf": actual,
                }
            )
        sealed.append(bytes.fromhex(stored))
    return sealed, named


def root_of(leaves: Iterable[bytes]) -> str:
    """Return the RFC 9162 root over ``leaves`` (leaf hashes), in order."""
    frontier: list[bytes] = []
    for size, leaf in enumerate(leaves):
        append_leaf(frontier, size, leaf)
    return frontier_root(frontier).hex()


@dataclass(slots=True)
class Resolved:
    """A segment's rows by their sealed leaves, with what the redacted ones gave."""

    sealed: list[bytes] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def named_rows(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Return the manifest's ``redacted`` entries by position (malformed ones name nothing)."""
    entries = body.get("redacted")
    found: dict[int, dict[str, Any]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("position"), int):
            found[entry["position"]] = entry
    return found


def resolve(
    body: dict[str, Any],
    positions: Sequence[int],
    hashes: Sequence[bytes],
    redactions: Redactions,
) -> Resolved:
    """Return each row's sealed leaf: its own, or the recorded original of a redacted row."""
    named = named_rows(body)
    out = Resolved()
    unused = set(named) - set(positions)
    if unused:
        out.problems.append(
            f"the manifest names redacted rows at positions it does not cover: {sorted(unused)[:5]}"
        )
    for position, digest in zip(positions, hashes, strict=True):
        entry = named.get(position)
        if entry is None:
            out.sealed.append(digest)
            continue
        table, row_id = str(entry.get("table")), str(entry.get("row_id"))
        sealed, leaf = str(entry.get("sealed_leaf")), str(entry.get("leaf"))
        if digest.hex() != leaf:
            out.problems.append(
                f"archived row at position {position} is not the redacted form the manifest records"
            )
            out.sealed.append(digest)
        elif not redactions.leads_to(table, row_id, sealed, leaf):
            out.problems.append(
                f"the manifest records {table} row {row_id} (position {position}) as redacted; "
                "no redaction in the admin ledger leads to that form"
            )
            out.sealed.append(digest)
        else:
            record = redactions.row(table, row_id)
            event = "" if record is None else f" (admin event #{record.admin_sequence})"
            out.notes.append(f"{table} row {row_id}: a value was redacted{event}")
            out.sealed.append(_hex_bytes(sealed, digest))
    return out


def _hex_bytes(value: str, fallback: bytes) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        return fallback


def log_redacted(redactions: Redactions, row: dict[str, Any]) -> bool:
    """Tell whether a redaction recorded this archived log row exactly as it now is."""
    record = redactions.row("interaction_logs", str(row.get("log_id")))
    if record is None or record.redacted_link_body is None:
        return False
    try:
        values = {name: row.get(name) for name in LOG_LINK_FIELDS}
        return record.redacted_link_body == log_digest(values)
    except (TypeError, ValueError):
        return False
