"""Checking segments against the database that recorded them: every kind of damage named.

For each manifest the database recorded (and did not see restored): the manifest file
must be there and be the recorded one, signed by the given key; the segment file must
be there, decompress whole, have the recorded SHA-256, size and row counts; its ledger
rows must give the recorded Merkle root, and each must hash to the leaf stored at its
position in the checkpoint tree (so the archived rows are the very rows old checkpoints
signed); and every archived run of a log stream must chain, under the ledger key, from
the link before the cut to the link after it. A row a recorded redaction rewrote before
the archive counts by its sealed leaf and is noted, not found (``redacted``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, select

from chameleon_workflow.archive.cuts import load_cuts
from chameleon_workflow.archive.manifest import SignedManifest, expand, read_manifest
from chameleon_workflow.archive.redacted import log_redacted, resolve, root_of
from chameleon_workflow.archive.segment import (
    UOW_TABLE,
    SegmentError,
    SegmentFacts,
    read_lines,
    row_of,
    segment_name,
)
from chameleon_workflow.archive.storage import SegmentStore
from chameleon_workflow.checkpoints.leaves import LEAVES
from chameleon_workflow.checkpoints.merkle import leaf_hash
from chameleon_workflow.errors import InvalidValueError
from chameleon_workflow.keys import KeyProvider
from chameleon_workflow.log_links import log_link
from chameleon_workflow.redactions import Redactions, load_redactions

#: Positions looked up per query.
_PAGE = 2000


@dataclass(slots=True)
class ArchiveCheck:
    """What checking the archive found: per segment, rows checked and problems."""

    segments: int = 0
    rows: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    #: Not damage: archived rows a recorded redaction rewrote.
    notes: list[tuple[str, str]] = field(default_factory=list)
    elapsed_s: float = 0.0

    def rows_per_second(self) -> float:
        """Return archived rows checked per second."""
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else 0.0


def check_archive(
    connection: Connection, store: SegmentStore, public: Ed25519PublicKey, keys: KeyProvider
) -> ArchiveCheck:
    """Check every segment the database relies on; see the module docstring."""
    started = time.perf_counter()
    report = ArchiveCheck()
    redactions = load_redactions(connection)
    for segment_id, recorded in sorted(load_cuts(connection).manifests.items()):
        report.segments += 1
        checked = check_segment(connection, store, recorded, public, keys, report, redactions)
        for problem in checked:
            report.problems.append((segment_id, problem))
    report.elapsed_s = time.perf_counter() - started
    return report


def check_segment(
    connection: Connection,
    store: SegmentStore,
    recorded: SignedManifest,
    public: Ed25519PublicKey,
    keys: KeyProvider | None,
    report: ArchiveCheck | None = None,
    redactions: Redactions | None = None,
) -> list[str]:
    """Return every problem with one segment (empty when it is sound).

    ``redactions``: the admin ledger's redaction records (read here when not given).
    """
    problems: list[str] = []
    if not recorded.signed_by(public):
        problems.append("the recorded manifest is not signed by the given key")
    try:
        stored = read_manifest(store, recorded.segment_id)
    except (SegmentError, InvalidValueError) as exc:
        problems.append(str(exc))
    else:
        if stored != recorded:
            problems.append("the manifest file differs from the one the database recorded")
    body = recorded.body
    facts = SegmentFacts()
    hashes: list[bytes] = []
    logs: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        for line in read_lines(store, segment_name(recorded.segment_id), facts):
            if _is_uow(line):
                continue
            hashes.append(leaf_hash(line))
            row = row_of(line)
            if "stream_seq" in row and row.get("stream_id") is not None:
                logs[(str(row["stream_id"]), int(row["stream_seq"]))] = row
    except SegmentError as exc:
        return [*problems, str(exc)]
    positions = list(expand(body.get("positions") or []))
    if len(positions) != len(hashes):
        problems.append(
            f"the manifest names {len(positions)} positions, the segment holds {len(hashes)} rows"
        )
        return problems + _compare(body, facts, root_of(hashes))
    if redactions is None:
        redactions = load_redactions(connection)
    resolved = resolve(body, positions, hashes, redactions)
    problems += resolved.problems
    problems += _compare(body, facts, root_of(resolved.sealed))
    problems += _against_tree(connection, positions, resolved.sealed)
    if keys is not None:
        problems += _links(body, logs, keys, redactions)
    if report is not None:
        report.rows += len(hashes)
        report.notes += [(recorded.segment_id, note) for note in resolved.notes]
    return problems


def _is_uow(line: bytes) -> bool:
    return line.endswith(b',"table":"' + UOW_TABLE.encode() + b'"}')


def _compare(body: dict[str, Any], facts: SegmentFacts, sealed_root: str) -> list[str]:
    found = []
    recorded_file = body.get("file") or {}
    if facts.sha256 != recorded_file.get("sha256") or facts.size != recorded_file.get("bytes"):
        found.append(
            f"the segment file's SHA-256 is {facts.sha256} ({facts.size} bytes), the manifest "
            f"records {recorded_file.get('sha256')} ({recorded_file.get('bytes')} bytes)"
        )
    if facts.counts != body.get("counts"):
        found.append(f"the segment holds {facts.counts}, the manifest records {body.get('counts')}")
    if sealed_root != body.get("merkle_root"):
        found.append(
            f"the segment's rows give Merkle root {sealed_root}, the manifest records "
            f"{body.get('merkle_root')}"
        )
    return found


def _against_tree(
    connection: Connection, positions: Sequence[int], hashes: Sequence[bytes]
) -> list[str]:
    """Compare each archived row's (sealed) leaf hash with the one stored at its position."""
    changed = []
    for start in range(0, len(positions), _PAGE):
        page = positions[start : start + _PAGE]
        query = select(LEAVES.c.position, LEAVES.c.leaf_hash).where(LEAVES.c.position.in_(page))
        stored = dict(connection.execute(query).all())
        for offset, position in enumerate(page):
            if stored.get(position) != hashes[start + offset].hex():
                changed.append(position)
    if not changed:
        return []
    shown = ", ".join(str(p) for p in changed[:5]) + (" ..." if len(changed) > 5 else "")
    return [f"{len(changed)} archived rows differ from the leaves sealed at positions {shown}"]


def _links(
    body: dict[str, Any],
    logs: dict[tuple[str, int], dict[str, Any]],
    keys: KeyProvider,
    redactions: Redactions,
) -> list[str]:
    found = []
    for link in _runs(body):
        stream, previous = str(link["stream"]), link["before"]
        for seq in range(int(link["first"]), int(link["last"]) + 1):
            row = logs.get((stream, seq))
            if row is None:
                found.append(f"stream {stream}: row {seq} is not in the segment")
                break
            try:
                expected = log_link(keys, previous, row)
            except InvalidValueError:
                expected = ""
            mismatch = expected is not None and expected != row.get("chain_hash")
            if mismatch and not log_redacted(redactions, row):
                found.append(
                    f"stream {stream}: archived row {seq} does not chain from the one before it"
                )
                break
            previous = row.get("chain_hash")
        else:
            if previous != link["after"]:
                found.append(
                    f"stream {stream}: the archived rows end at another link than recorded"
                )
    return found


def _runs(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    links = body.get("links")
    if isinstance(links, list):
        yield from (link for link in links if isinstance(link, dict))
