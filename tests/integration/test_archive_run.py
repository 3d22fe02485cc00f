"""An archive run: finished UOWs go to a verified segment, then one audited delete."""

from __future__ import annotations

from pathlib import Path

import pytest
from archive_world import ArchiveWorld, build_archive_world, rows_of
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.archive.manifest import read_manifest
from chameleon_workflow.archive.records import ArchivedRow, ArchiveManifest
from chameleon_workflow.archive.run import archive
from chameleon_workflow.archive.segment import ArchiveError, scan_segment, segment_name
from chameleon_workflow.archive.selection import Scope
from chameleon_workflow.archive.storage import DirectoryStore
from chameleon_workflow.checkpoints import seal
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import AppendOnlyViolationError
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import AdminEvent, UnitsOfWork, UOWAttribute, utcnow


@pytest.fixture
def world(
    database_url: str,
    engine: Engine,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> ArchiveWorld:
    return build_archive_world(database_url, engine, session_factory, tmp_path)


def test_finished_uows_move_to_a_segment_and_live_ones_stay(world: ArchiveWorld) -> None:
    store = DirectoryStore.for_writing(world.archive_dir)
    before = {name: rows_of(world.engine, uow) for name, uow in world.uows.items()}
    result = archive(world.engine, store, world.signer, world.scope())
    assert result.uows == 3
    assert len(result.segments) == 1
    for name in ("done", "also_done", "child"):
        assert set(rows_of(world.engine, world.uows[name]).values()) == {0}, name
    assert rows_of(world.engine, world.uows["live"]) == before["live"]
    archived = {"done", "also_done", "child"}
    for table in ("uow_history", "uow_attributes", "interaction_logs"):
        assert result.rows[table] == sum(before[name][table] for name in archived)
    segment_id = result.segments[0]
    manifest = read_manifest(store, segment_id)
    assert manifest.signed_by(world.signer.public_key)
    facts = scan_segment(store, segment_name(segment_id))
    assert manifest.body["file"]["sha256"] == facts.sha256
    assert manifest.body["merkle_root"] == facts.merkle_root
    assert manifest.body["counts"] == facts.counts
    assert sorted(manifest.body["uows"]) == sorted(str(world.uows[n]) for n in archived)
    assert manifest.body["links"], "the shared stream was cut: its links are recorded"
    with world.engine.connect() as connection:
        recorded = connection.execute(select(ArchiveManifest.segment_id)).scalars().all()
        event = connection.execute(
            select(AdminEvent.action, AdminEvent.subject_id).order_by(AdminEvent.sequence.desc())
        ).first()
    assert recorded == [segment_id]
    assert event == ("LEDGER_ARCHIVED", segment_id)


def test_a_dry_run_counts_and_changes_nothing(world: ArchiveWorld) -> None:
    store = DirectoryStore.for_writing(world.archive_dir)
    result = archive(world.engine, store, world.signer, world.scope(), dry_run=True)
    assert result.dry_run
    assert result.uows == 3
    assert result.segments == []
    assert result.rows["uow_history"] > 0
    assert rows_of(world.engine, world.uows["done"])["uow_history"] > 0
    assert store.names() == []


def test_a_row_no_manifest_covers_cannot_be_deleted(world: ArchiveWorld) -> None:
    archive(
        world.engine, DirectoryStore.for_writing(world.archive_dir), world.signer, world.scope()
    )
    for table in ("uow_history", "uow_attributes", "interaction_logs"):
        with (
            pytest.raises(AppendOnlyViolationError),
            translated_errors(),
            world.engine.begin() as connection,
        ):
            connection.execute(text(f"DELETE FROM {table}"))


def test_a_cut_off_in_the_future_is_refused(world: ArchiveWorld) -> None:
    store = DirectoryStore.for_writing(world.archive_dir)
    later = utcnow().replace(year=utcnow().year + 1)
    with pytest.raises(ArchiveError, match="in the future"):
        archive(world.engine, store, world.signer, Scope(later))
    assert rows_of(world.engine, world.uows["done"])["uow_history"] > 0


def test_a_rerun_finds_nothing_more_and_removes_a_dead_runs_files(world: ArchiveWorld) -> None:
    store = DirectoryStore.for_writing(world.archive_dir)
    archive(world.engine, store, world.signer, world.scope())
    (world.archive_dir / "deadbeef.jsonl.zst").write_bytes(b"left by a killed run")
    again = archive(world.engine, store, world.signer, world.scope())
    assert again.uows == 0
    assert again.segments == []
    assert again.removed_partial == ["deadbeef.jsonl.zst"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_never_hands_out_the_id_of_an_archived_attribute_row(
    world: ArchiveWorld, session_factory: sessionmaker[Session]
) -> None:
    """SQLite numbers a new row after the largest id present, so the owner of the newest
    attribute row stays live until a newer row exists: no archived row's id comes back."""
    service = UOWPersistenceService()
    store = DirectoryStore.for_writing(world.archive_dir)
    with session_factory() as session:
        live = session.get(UnitsOfWork, world.uows["live"])
        assert live is not None
        service.save_uow(session, live, "COMPLETED", reasoning="done")
        session.commit()
    first = archive(world.engine, store, world.signer, world.scope())
    assert first.uows == 3
    assert rows_of(world.engine, world.uows["live"])["units_of_work"] == 1  # held back
    with session_factory() as session:
        live = session.get(UnitsOfWork, world.uows["live"])
        assert live is not None
        newer = service.create_uow(
            session,
            instance_id=live.instance_id,
            local_workflow_id=live.local_workflow_id,
            attributes={"amount": 1},
            interaction_id=live.current_interaction_id,
        )
        session.commit()
        newer_id = newer.uow_id
    second = archive(world.engine, store, world.signer, world.scope())
    assert second.uows == 1  # now "live" goes; the new UOW (PENDING) stays
    with world.engine.connect() as connection:
        archived_ids = [
            int(row_id)
            for (row_id,) in connection.execute(
                select(ArchivedRow.row_id).where(ArchivedRow.kind == "uow_attributes")
            )
        ]
        fresh = connection.execute(
            select(UOWAttribute.attribute_id).where(UOWAttribute.uow_id == newer_id)
        ).scalars()
        assert min(fresh) > max(archived_ids)
    seal(world.engine, world.signer)
    with session_factory() as session:
        assert not UOWPersistenceService().verify_database(session).findings
