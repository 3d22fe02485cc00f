"""An archive run: segment written, synced, read back and verified, then one audited delete.

For each batch of UOWs (``selection``): the rows are written as a segment and read back;
the file's digest, counts and Merkle root must match what was written, and every row
must still hash to the leaf it was sealed as, or be a recorded redaction of it (named in
the manifest, see ``redacted``). The manifest is signed and stored beside it. Only then
does one transaction record the manifest (``archive_manifests``), the rows it covers
(``archived_rows``, which the DELETE triggers consult) and an admin-ledger event, and
delete the rows; a crash anywhere before its commit deletes nothing, and the segment
files it left behind, which no recorded manifest names, are removed by the next run; so
are the files of segments restored since (their rows are live again, and a value
redacted after the restore must not survive in them). One run at a time: the store's
lock (a ``.lock`` file locked with flock in the directory), and on PostgreSQL an
advisory lock too, so a run never removes the files of another one still in progress.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, text

from chameleon_workflow.admin_ledger import ADMIN, record_admin_event
from chameleon_workflow.archive import selection as pick
from chameleon_workflow.archive.cuts import Cuts, load_cuts
from chameleon_workflow.archive.manifest import (
    FORMAT,
    MANIFEST_SUFFIX,
    SignedManifest,
    manifest_name,
    read_manifest,
    runs,
    write_manifest,
)
from chameleon_workflow.archive.records import ArchivedRow, ArchiveManifest, ArchiveRestore
from chameleon_workflow.archive.redacted import root_of, sealed_leaves
from chameleon_workflow.archive.segment import (
    SEGMENT_SUFFIX,
    ArchiveError,
    SegmentFacts,
    scan_segment,
    segment_name,
    write_segment,
)
from chameleon_workflow.archive.storage import SegmentStore
from chameleon_workflow.checkpoints import store as tree
from chameleon_workflow.checkpoints.keys import Signer
from chameleon_workflow.checkpoints.leaves import LedgerTable
from chameleon_workflow.checkpoints.sealer import seal
from chameleon_workflow.db import SQLITE_IMMEDIATE, translated_errors
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.models import utcnow
from chameleon_workflow.redactions import load_redactions
from chameleon_workflow.schema import ARCHIVABLE_TABLES
from chameleon_workflow.states import AdminAction

#: UOWs per segment.
UOW_BATCH = 500
#: Key of the PostgreSQL advisory lock archive runs and restores take ("chmarch").
ARCHIVE_LOCK = 0x63686D61726368
#: The steps ``archive(step=...)`` reports, in order (the crash tests kill the run at each).
STEPS = ("segment_written", "manifest_written", "mid_delete", "rows_deleted")


@dataclass(slots=True)
class ArchiveResult:
    """What a run did (or, dry, would do)."""

    dry_run: bool
    uows: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    segments: list[str] = field(default_factory=list)
    raw_bytes: int = 0
    stored_bytes: int = 0
    removed_partial: list[str] = field(default_factory=list)
    #: Files of segments restored since (a value redacted after the restore is in them).
    removed_restored: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def total_rows(self) -> int:
        """Return the ledger rows archived (UOW rows not counted)."""
        return sum(n for table, n in self.rows.items() if table != pick.UOW_LEDGER.name)

    def compression_ratio(self) -> float:
        """Return uncompressed bytes per stored byte."""
        return self.raw_bytes / self.stored_bytes if self.stored_bytes else 0.0


def archive(
    engine: Engine,
    store: SegmentStore,
    signer: Signer | None,
    scope: pick.Scope,
    *,
    dry_run: bool = False,
    principal: str = ADMIN,
    clock: Callable[[], datetime] = utcnow,
    step: Callable[[str], None] | None = None,
) -> ArchiveResult:
    """Archive the UOWs in ``scope``; see the module docstring. Bad input: ArchiveError.

    A dry run reads only: it needs neither the store nor the signing key (``signer`` None).
    """
    started = time.perf_counter()
    now = clock()
    if scope.before > now:
        raise ArchiveError(
            f"--before {format_timestamp(scope.before)} is in the future: nothing to archive"
        )
    result = ArchiveResult(dry_run)
    with translated_errors():
        if dry_run:
            with engine.connect() as connection:
                _plan(connection, scope, result)
            result.elapsed_s = time.perf_counter() - started
            return result
        if signer is None:
            raise ArchiveError("an archive run needs the checkpoint signing key")
        with store.lock(), _exclusive(engine) as lock:
            result.removed_partial = remove_unrecorded(lock, store)
            result.removed_restored = remove_restored(lock, store)
            seal(engine, signer, clock)
            with engine.connect() as connection:
                chosen = pick.candidates(connection, scope)
                parent_of = pick.parents(connection, chosen)
            for uows in pick.chunks(chosen, UOW_BATCH):
                _one_segment(
                    engine,
                    store,
                    signer,
                    scope,
                    list(uows),
                    parent_of,
                    result,
                    principal,
                    clock,
                    step,
                )
    result.uows = result.rows.get(pick.UOW_LEDGER.name, 0)
    result.elapsed_s = time.perf_counter() - started
    return result


def _plan(connection: Connection, scope: pick.Scope, result: ArchiveResult) -> None:
    chosen = pick.candidates(connection, scope)
    for uows in pick.chunks(chosen, UOW_BATCH):
        batch, _ = pick.collect(connection, uows)
        _count(result, batch)
    result.uows = len(chosen)


def _count(result: ArchiveResult, batch: pick.Batch) -> None:
    name = pick.UOW_LEDGER.name
    result.rows[name] = result.rows.get(name, 0) + len(batch.uow_rows)
    for entry in batch.ledger:
        result.rows[entry[1]] = result.rows.get(entry[1], 0) + 1
    result.raw_bytes += sum(len(line) + 1 for line in batch.uow_rows)
    result.raw_bytes += sum(len(entry[4]) + 1 for entry in batch.ledger)


@contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
    """Hold the archive lock (PostgreSQL: a session advisory lock) for a whole run."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ARCHIVE_LOCK})
            connection.commit()
        try:
            yield connection
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ARCHIVE_LOCK})
                connection.commit()


def remove_unrecorded(connection: Connection, store: SegmentStore) -> list[str]:
    """Remove segment and manifest files no recorded manifest names (a run that died)."""
    recorded = {s for (s,) in connection.execute(select(ArchiveManifest.segment_id))}
    connection.rollback()
    removed = []
    for name in store.names():
        segment = name.split(".", 1)[0]
        is_archive = name.endswith((SEGMENT_SUFFIX, ".manifest.json", ".partial"))
        if is_archive and segment not in recorded:
            store.remove(name)
            removed.append(name)
    return removed


def remove_restored(connection: Connection, store: SegmentStore) -> list[str]:
    """Remove the files of restored segments: their rows are live again, nothing reads them."""
    restored = {s for (s,) in connection.execute(select(ArchiveRestore.segment_id))}
    connection.rollback()
    removed = []
    for name in store.names():
        if name.split(".", 1)[0] in restored and name.endswith((SEGMENT_SUFFIX, MANIFEST_SUFFIX)):
            store.remove(name)
            removed.append(name)
    return removed


def _one_segment(
    engine: Engine,
    store: SegmentStore,
    signer: Signer,
    scope: pick.Scope,
    uows: list[str],
    parent_of: dict[str, str | None],
    result: ArchiveResult,
    principal: str,
    clock: Callable[[], datetime],
    step: Callable[[str], None] | None,
) -> None:
    with engine.connect() as connection:
        batch, unsealed = pick.collect(connection, uows)
        if unsealed:
            batch = pick.without(batch, unsealed, parent_of)
        sealed, redacted = sealed_leaves(batch.ledger, load_redactions(connection))
        newest = tree.latest_checkpoint(connection)
        cuts = load_cuts(connection)
        links = _links(connection, batch, cuts)
    if not batch.uows:
        return
    segment_id = uuid.uuid4().hex
    name = segment_name(segment_id)
    facts = write_segment(store, name, _lines(batch))
    _read_back(store, name, facts)
    if step is not None:
        step("segment_written")
    body = {
        "format": FORMAT,
        "segment_id": segment_id,
        "created_at": format_timestamp(clock()),
        "before": format_timestamp(scope.before),
        "instance_id": None if scope.instance_id is None else str(scope.instance_id),
        "counts": dict(sorted(facts.counts.items())),
        "leaves": facts.leaves,
        "positions": runs(entry[0] for entry in batch.ledger),
        "merkle_root": root_of(sealed),
        "links": links,
        "uows": sorted(batch.uows),
        "checkpoint": {"tree_size": newest.tree_size, "root_hash": newest.root_hash},
        "file": {"name": name, "bytes": facts.size, "sha256": facts.sha256},
        **({"redacted": redacted} if redacted else {}),
    }
    manifest = SignedManifest.sign(body, signer)
    write_manifest(store, manifest)
    if read_manifest(store, segment_id).document() != manifest.document():
        raise ArchiveError(f"{manifest_name(segment_id)} did not read back as written")
    if step is not None:
        step("manifest_written")
    _commit(engine, manifest, batch, scope, principal, clock, step)
    result.segments.append(segment_id)
    _count(result, batch)
    result.stored_bytes += facts.size


def _lines(batch: pick.Batch) -> Iterator[bytes]:
    yield from batch.uow_rows
    for entry in batch.ledger:
        yield entry[4]


def _read_back(store: SegmentStore, name: str, written: SegmentFacts) -> None:
    found = scan_segment(store, name)
    same = (found.sha256, found.size, found.counts, found.merkle_root) == (
        written.sha256,
        written.size,
        written.counts,
        written.merkle_root,
    )
    if not same:
        store.remove(name)
        raise ArchiveError(f"segment {name} did not read back as written: nothing was archived")


def _links(connection: Connection, batch: pick.Batch, cuts: Cuts) -> list[dict[str, Any]]:
    """Return the chain links at the cut of every stream the batch takes rows from."""
    by_stream: dict[str, dict[int, str]] = {}
    for _, table, _, _, _, row in batch.ledger:
        if table == "interaction_logs":
            by_stream.setdefault(str(row["stream_id"]), {})[int(row["stream_seq"])] = row[
                "chain_hash"
            ]
    links = []
    for stream, seqs in sorted(by_stream.items()):
        for first, end in runs(sorted(seqs)):
            before = None if first == 0 else _link_of(connection, cuts, stream, first - 1)
            links.append(
                {
                    "stream": stream,
                    "first": first,
                    "last": end - 1,
                    "before": before,
                    "after": seqs[end - 1],
                }
            )
    return links


def _link_of(connection: Connection, cuts: Cuts, stream: str, seq: int) -> str | None:
    logs = pick.LOGS
    query = select(logs.c.chain_hash).where(
        logs.c.stream_id == uuid.UUID(stream), logs.c.stream_seq == seq
    )
    found: str | None = connection.execute(query).scalar()
    return found if found is not None else cuts.link_after(stream, seq)


def _commit(
    engine: Engine,
    manifest: SignedManifest,
    batch: pick.Batch,
    scope: pick.Scope,
    principal: str,
    clock: Callable[[], datetime],
    step: Callable[[str], None] | None,
) -> None:
    """Record the manifest and its rows, the admin event, and delete: one transaction."""
    segment_id = manifest.segment_id
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.execution_options(**{SQLITE_IMMEDIATE: True})
        with connection.begin():
            connection.execute(
                insert(ArchiveManifest).values(
                    segment_id=segment_id,
                    recorded_at=clock(),
                    key_id=manifest.key_id,
                    signature=manifest.signature,
                    manifest=manifest.body,
                )
            )
            covered = [
                {"kind": table, "row_id": row_id, "segment_id": segment_id, "position": position}
                for position, table, row_id, *_ in batch.ledger
            ]
            for chunk in pick.chunks(covered, 2000):
                connection.execute(insert(ArchivedRow), list(chunk))
            record_admin_event(
                connection,
                AdminAction.LEDGER_ARCHIVED,
                principal=principal,
                instance_id=scope.instance_id,
                subject_id=segment_id,
                details={
                    "segment_id": segment_id,
                    "before": manifest.body["before"],
                    "counts": manifest.body["counts"],
                    "merkle_root": manifest.body["merkle_root"],
                    "sha256": manifest.body["file"]["sha256"],
                },
                now=clock(),
            )
            _delete(connection, batch, scope, step)
            if step is not None:
                step("rows_deleted")


def _delete(
    connection: Connection,
    batch: pick.Batch,
    scope: pick.Scope,
    step: Callable[[str], None] | None,
) -> None:
    """Delete exactly the rows the manifest covers; anything else changed: roll back."""
    for number, (table, key) in enumerate(ARCHIVABLE_TABLES.items()):
        if number == 1 and step is not None:
            step("mid_delete")
        ledger = LedgerTable(table, (key,)).table
        ids = [_key(table, row_id) for _, kind, row_id, *_ in batch.ledger if kind == table]
        for chunk in pick.chunks(ids):
            gone = connection.execute(delete(ledger).where(ledger.c[key].in_(chunk))).rowcount
            if gone != len(chunk):
                raise ArchiveError(f"{table}: {len(chunk) - gone} rows changed during the run")
    uows = pick.UOWS
    for chunk in pick.chunks([uuid.UUID(u) for u in batch.uows]):
        statement = delete(uows).where(uows.c.uow_id.in_(chunk), pick.qualifies(scope))
        if connection.execute(statement).rowcount != len(chunk):
            raise ArchiveError("a UOW changed during the run: nothing was archived from it")


def _key(table: str, row_id: str) -> int | uuid.UUID:
    return int(row_id) if table == "uow_attributes" else uuid.UUID(row_id)
