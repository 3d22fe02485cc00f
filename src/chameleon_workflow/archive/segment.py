"""A segment: zstd-compressed JSON Lines, one archived row per line, in canonical form.

Every line is exactly the bytes ``checkpoints.leaves.leaf_data`` gives the row,
``{"row": {...}, "table": "..."}`` in RFC 8785 form. The UOW rows come first (they are
not checkpoint leaves: the manifest's signature over the file's SHA-256 covers them),
then the ledger rows (history, attribute versions, log rows) in checkpoint order, so
their leaf hashes, in file order, give the segment's Merkle root (RFC 9162, as the
checkpoint tree). The zstd frame carries a checksum, so a flipped bit fails to decompress.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import zstandard

from chameleon_workflow.archive.storage import SegmentStore, read_chunks
from chameleon_workflow.checkpoints.merkle import append_leaf, frontier_root, leaf_hash
from chameleon_workflow.errors import InvalidValueError

#: The table whose rows a segment carries outside the tree.
UOW_TABLE = "units_of_work"
SEGMENT_SUFFIX = ".jsonl.zst"
LEVEL = 9


class ArchiveError(InvalidValueError):
    """An archive that cannot be used as asked: bad input, a foreign or damaged segment."""


class SegmentError(ArchiveError):
    """A segment file that cannot be read back as written: missing, truncated or edited."""


@dataclass(slots=True)
class SegmentFacts:
    """What a pass over a segment file finds: its digest, size, rows and Merkle root."""

    sha256: str = ""
    size: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    leaves: int = 0
    frontier: list[bytes] = field(default_factory=list)

    @property
    def merkle_root(self) -> str:
        """Return the root over the ledger rows' leaf hashes, in file order."""
        return frontier_root(self.frontier).hex()

    def take(self, line: bytes) -> tuple[str, bytes | None]:
        """Count one line; return its table and, for a ledger row, its leaf hash."""
        table = table_of(line)
        self.counts[table] = self.counts.get(table, 0) + 1
        if table == UOW_TABLE:
            return table, None
        digest = leaf_hash(line)
        append_leaf(self.frontier, self.leaves, digest)
        self.leaves += 1
        return table, digest


def table_of(line: bytes) -> str:
    """Return the table a line's row belongs to."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise SegmentError("a line of the segment is not JSON") from None
    table = document.get("table") if isinstance(document, dict) else None
    if not isinstance(table, str) or not isinstance(document.get("row"), dict):
        raise SegmentError("a line of the segment is not a row")
    return table


def row_of(line: bytes) -> dict[str, Any]:
    """Return a line's row (its columns as their canonical JSON values)."""
    row: dict[str, Any] = orjson.loads(line)["row"]
    return row


def segment_name(segment_id: str) -> str:
    """Return the file name of a segment."""
    return segment_id + SEGMENT_SUFFIX


def write_segment(store: SegmentStore, name: str, lines: Iterable[bytes]) -> SegmentFacts:
    """Compress ``lines`` (each without its newline) into ``name``; return what was written."""
    facts = SegmentFacts()
    digest = hashlib.sha256()
    compressor = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True).compressobj()

    def chunks() -> Iterator[bytes]:
        for line in lines:
            facts.take(line)
            out = compressor.compress(line + b"\n")
            if out:
                digest.update(out)
                facts.size += len(out)
                yield out
        tail = compressor.flush()
        digest.update(tail)
        facts.size += len(tail)
        yield tail

    store.write(name, chunks())
    facts.sha256 = digest.hexdigest()
    return facts


def read_lines(
    store: SegmentStore, name: str, facts: SegmentFacts | None = None
) -> Iterator[bytes]:
    """Yield a segment's lines (without newlines), checking the frame as it goes.

    When ``facts`` is given it is filled in while reading (digest, size, counts, root).
    A missing file, a truncated or edited frame is a SegmentError.
    """
    digest = hashlib.sha256()
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    pending = b""
    try:
        handle = store.open(name)
    except FileNotFoundError:
        raise SegmentError(f"segment file {name} is missing") from None
    except OSError as exc:
        raise SegmentError(f"segment file {name} cannot be read: {exc.strerror}") from None
    with handle:
        try:
            for chunk in read_chunks(handle):
                digest.update(chunk)
                if facts is not None:
                    facts.size += len(chunk)
                pending += decompressor.decompress(chunk)
                *complete, pending = pending.split(b"\n")
                for line in complete:
                    if facts is not None:
                        facts.take(line)
                    yield line
        except zstandard.ZstdError as exc:
            raise SegmentError(f"segment file {name} does not decompress: {exc}") from None
    if not decompressor.eof or pending:
        raise SegmentError(f"segment file {name} is truncated")
    if facts is not None:
        facts.sha256 = digest.hexdigest()


def scan_segment(store: SegmentStore, name: str) -> SegmentFacts:
    """Read a whole segment back and return what it holds."""
    facts = SegmentFacts()
    for _ in read_lines(store, name, facts):
        pass
    return facts
