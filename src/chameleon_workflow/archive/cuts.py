"""What the database records of its archives: the cut each live check starts from.

``load_cuts`` reads every manifest not restored since: which rows each covers (so a
checkpoint leaf whose row is gone is known to live in a segment, not lost) and the
log-stream links at each cut (so a stream verifies across the rows taken from it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from chameleon_workflow.archive.manifest import SignedManifest
from chameleon_workflow.archive.records import ArchivedRow, ArchiveManifest, ArchiveRestore


@dataclass(slots=True)
class Cuts:
    """The live manifests: their rows, their stream links, their signed bodies."""

    manifests: dict[str, SignedManifest] = field(default_factory=dict)
    restored: set[str] = field(default_factory=set)
    #: (stream, first seq) -> (last seq, link before, link after, segment id)
    runs: dict[tuple[str, int], tuple[int, str | None, str, str]] = field(default_factory=dict)

    def link_after(self, stream: str, seq: int) -> str | None:
        """Return the recorded link of archived row ``seq`` of ``stream``, if it ends a run."""
        for (name, _first), (last, _before, after, _) in self.runs.items():
            if name == stream and last == seq:
                return after
        return None

    def run_from(self, stream: str, seq: int) -> tuple[int, str | None, str, str] | None:
        """Return the archived run of ``stream`` that starts at ``seq``, if there is one."""
        return self.runs.get((stream, seq))

    def segments(self) -> list[str]:
        """Return the ids of the segments the live database relies on."""
        return sorted(self.manifests)


def load_cuts(connection: Connection) -> Cuts:
    """Read the recorded manifests (restored ones apart) and their stream links."""
    cuts = Cuts()
    cuts.restored = {s for (s,) in connection.execute(select(ArchiveRestore.segment_id))}
    query = select(
        ArchiveManifest.segment_id,
        ArchiveManifest.key_id,
        ArchiveManifest.signature,
        ArchiveManifest.manifest,
    )
    for segment_id, key_id, signature, body in connection.execute(query):
        if segment_id in cuts.restored or not isinstance(body, dict):
            continue
        cuts.manifests[segment_id] = SignedManifest(body, key_id, signature)
        for link in _links(body):
            cuts.runs[(link["stream"], link["first"])] = (
                link["last"],
                link["before"],
                link["after"],
                segment_id,
            )
    return cuts


def _links(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    links = body.get("links")
    if isinstance(links, list):
        yield from (link for link in links if isinstance(link, dict))


def archived_rows(connection: Connection, restored: set[str]) -> Iterator[tuple[str, str, str]]:
    """Yield ``(kind, row_id, segment_id)`` of every row a live manifest covers."""
    query = select(ArchivedRow.kind, ArchivedRow.row_id, ArchivedRow.segment_id)
    for kind, row_id, segment_id in connection.execute(query):
        if segment_id not in restored:
            yield kind, row_id, segment_id


def archived_map(connection: Connection) -> dict[tuple[str, str], str]:
    """Return ``(table, row id) -> segment`` for every row a live manifest covers."""
    restored = {s for (s,) in connection.execute(select(ArchiveRestore.segment_id))}
    return {
        (kind, row_id): segment for kind, row_id, segment in archived_rows(connection, restored)
    }
