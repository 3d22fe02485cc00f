"""``POST /archive`` and ``POST /archive/{segment_id}/restore`` (admin only): docs/lifecycle.md.

The run is the CLI's: segments to ``CHAMELEON_ARCHIVE_DIR``, each manifest signed with
the checkpoint signing key, then one audited delete per segment (the admin-ledger event
names the admin). A dry run only counts, and needs neither the directory nor the key.
A restore is the CLI's too: the segment verified first, then its rows back in one
audited transaction.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from chameleon_workflow.archive.restore import restore
from chameleon_workflow.archive.run import archive
from chameleon_workflow.archive.segment import ArchiveError
from chameleon_workflow.archive.selection import Scope
from chameleon_workflow.archive.storage import DirectoryStore
from chameleon_workflow.checkpoints.keys import Signer, load_signing_key
from chameleon_workflow.checkpoints.paths import signing_key_path
from chameleon_workflow.engine.listing import instance_of
from chameleon_workflow.errors import ConfigurationError
from chameleon_workflow.server import schemas as s
from chameleon_workflow.server.dependencies import Admin, Services, Svc
from chameleon_workflow.server.problems import error_responses

router = APIRouter(tags=["admin"])


class ArchiveRequest(BaseModel):
    """What to archive: UOWs finished and last changed before ``before``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    before: datetime
    instance: s.Text | None = Field(default=None, max_length=s.NAME_MAX)
    dry_run: bool = False


class ArchiveRun(BaseModel):
    """What the run did (or, dry, would do)."""

    dry_run: bool
    uows: int
    rows: dict[str, int]
    segments: list[str]
    raw_bytes: int
    stored_bytes: int
    compression_ratio: float


@router.post("/archive", responses=error_responses(400, 401, 403, 404, 413, 422, 503))
def archive_now(body: ArchiveRequest, svc: Svc, _: Admin) -> ArchiveRun:
    """Archive finished UOWs to signed segments, then delete their rows (one audited path)."""
    before = s.aware(body.before, "before")
    assert before is not None
    named = body.instance
    instance = None if named is None else svc.read(lambda x: instance_of(x, named))
    engine = svc.engine.engine
    scope = Scope(before, instance)
    if body.dry_run:
        result = archive(engine, DirectoryStore(Path()), None, scope, dry_run=True)
    else:
        store, signer = archive_of(svc)
        result = archive(engine, store, signer, scope)
    return ArchiveRun(
        dry_run=result.dry_run,
        uows=result.uows,
        rows=result.rows,
        segments=result.segments,
        raw_bytes=result.raw_bytes,
        stored_bytes=result.stored_bytes,
        compression_ratio=round(result.compression_ratio(), 2),
    )


class Restored(BaseModel):
    """The rows a restore brought back, per table."""

    segment_id: str
    rows: dict[str, int]


@router.post("/archive/{segment_id}/restore", responses=error_responses(401, 403, 422, 503))
def restore_segment(segment_id: str, svc: Svc, _: Admin) -> Restored:
    """Verify an archived segment and bring its rows back (422 when it fails verification)."""
    store, signer = archive_of(svc)
    rows = restore(svc.engine.engine, store, segment_id, signer.public_key)
    return Restored(segment_id=segment_id, rows=rows)


def archive_of(svc: Services) -> tuple[DirectoryStore, Signer]:
    """Return the archive directory and the signing key; ArchiveError (422) without them."""
    settings = svc.settings
    if not settings.archive_dir:
        raise ArchiveError("the server has no archive directory: set CHAMELEON_ARCHIVE_DIR")
    try:
        store = DirectoryStore.for_writing(Path(settings.archive_dir))
        signer = load_signing_key(signing_key_path(settings.database_url, settings))
    except ConfigurationError as exc:
        raise ArchiveError(str(exc)) from None
    return store, signer
