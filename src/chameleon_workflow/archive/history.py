"""A UOW's archived history: found through the recorded manifests, read from its segment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from chameleon_workflow.archive.cuts import load_cuts
from chameleon_workflow.archive.segment import ArchiveError, read_lines, row_of, segment_name
from chameleon_workflow.archive.storage import SegmentStore
from chameleon_workflow.errors import NotFoundError

_HISTORY = b',"table":"uow_history"}'


@dataclass(frozen=True, slots=True)
class ArchivedHistory:
    """The history rows of one archived UOW (canonical JSON values), oldest first."""

    uow_id: str
    segment_id: str
    rows: list[dict[str, Any]]


def archived_history(
    connection: Connection, store: SegmentStore, id_or_prefix: str
) -> ArchivedHistory:
    """Return the archived history of the UOW whose id is, or starts with, ``id_or_prefix``."""
    wanted = id_or_prefix.strip().lower()
    matches = [
        (str(uow), segment_id)
        for segment_id, manifest in load_cuts(connection).manifests.items()
        for uow in manifest.body.get("uows") or []
        if str(uow).startswith(wanted) or str(uow).replace("-", "").startswith(wanted)
    ]
    if not matches:
        raise NotFoundError(f"no unit of work {id_or_prefix!r}, live or archived")
    if len({uow for uow, _ in matches}) > 1:
        raise ArchiveError(f"UOW id prefix {id_or_prefix!r} names more than one archived UOW")
    uow_id, segment_id = matches[0]
    rows = []
    for line in read_lines(store, segment_name(segment_id)):
        if line.endswith(_HISTORY):
            row = row_of(line)
            if row.get("uow_id") == uow_id:
                rows.append(row)
    rows.sort(key=lambda row: int(row["sequence"]))
    return ArchivedHistory(uow_id, segment_id, rows)
