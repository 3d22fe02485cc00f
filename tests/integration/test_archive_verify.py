"""Verification across the archive boundary: live from the cut, old checkpoints, segments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from archive_world import ArchiveWorld, build_archive_world, rows_of
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from chameleon_workflow.archive.cuts import archived_map
from chameleon_workflow.archive.manifest import SignedManifest, read_manifest, write_manifest
from chameleon_workflow.archive.restore import restore
from chameleon_workflow.archive.run import archive
from chameleon_workflow.archive.segment import ArchiveError, segment_name
from chameleon_workflow.archive.storage import DirectoryStore
from chameleon_workflow.archive.verify import check_archive
from chameleon_workflow.checkpoints import create_signing_key, seal, verify_checkpoint
from chameleon_workflow.checkpoints.store import latest_checkpoint
from chameleon_workflow.cli import app
from chameleon_workflow.keys import find_keys
from chameleon_workflow.ledger.service import UOWPersistenceService


@pytest.fixture
def world(
    database_url: str,
    engine: Engine,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> ArchiveWorld:
    return build_archive_world(database_url, engine, session_factory, tmp_path)


def _archived(world: ArchiveWorld) -> tuple[DirectoryStore, str]:
    store = DirectoryStore.for_writing(world.archive_dir)
    result = archive(world.engine, store, world.signer, world.scope())
    return store, result.segments[0]


def _live_report(world: ArchiveWorld, session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        report = UOWPersistenceService().verify_database(session)
    assert any("archived segment" in notice for notice in report.notices)
    return [str(f) for f in report.findings]


def test_the_live_ledger_verifies_from_the_cut(
    world: ArchiveWorld, session_factory: sessionmaker[Session]
) -> None:
    with world.engine.connect() as connection:
        sealed = latest_checkpoint(connection)
    _archived(world)
    assert _live_report(world, session_factory) == []
    with world.engine.connect() as connection:
        archived = archived_map(connection)
        report = verify_checkpoint(connection, sealed, world.signer.public_key, archived)
        blind = verify_checkpoint(connection, sealed, world.signer.public_key)
    assert report.ok, report.findings
    assert sum(n for _, n in report.archived) == len(archived) > 0
    assert {str(f.kind) for f in blind.findings} == {"LEAF_MISSING"}  # without the manifests


def test_segments_verify_against_the_tree(world: ArchiveWorld) -> None:
    store, _ = _archived(world)
    with world.engine.connect() as connection:
        checked = check_archive(connection, store, world.signer.public_key, find_keys(world.url))
    assert checked.problems == []
    assert checked.segments == 1
    assert checked.rows > 0


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _swap_manifest(world: ArchiveWorld, store: DirectoryStore, segment: str) -> None:
    other = create_signing_key(world.archive_dir.parent / "other.pem")
    forged = SignedManifest.sign(read_manifest(store, segment).body, other)
    (world.archive_dir / f"{segment}.manifest.json").unlink()
    write_manifest(store, forged)


DAMAGE: dict[str, Callable[[ArchiveWorld, DirectoryStore, str], None]] = {
    "missing": lambda w, s, seg: (w.archive_dir / segment_name(seg)).unlink(),
    "truncated": lambda w, s, seg: (w.archive_dir / segment_name(seg)).write_bytes(
        (w.archive_dir / segment_name(seg)).read_bytes()[:40]
    ),
    "edited": lambda w, s, seg: _flip(w.archive_dir / segment_name(seg)),
    "manifest missing": lambda w, s, seg: (w.archive_dir / f"{seg}.manifest.json").unlink(),
    "manifest re-signed": _swap_manifest,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_every_kind_of_damage_to_a_segment_is_a_finding(
    world: ArchiveWorld, damage: str, database_url: str
) -> None:
    store, segment = _archived(world)
    DAMAGE[damage](world, store, segment)
    result = CliRunner().invoke(
        app,
        [
            "verify",
            "--archive",
            str(world.archive_dir),
            "--public-key",
            str(world.public_key_file),
            "--database-url",
            database_url,
        ],
    )
    assert result.exit_code == 1, result.output
    assert f"ARCHIVE: segment {segment}" in result.output
    with pytest.raises(ArchiveError):
        restore(world.engine, store, segment, world.signer.public_key)
    assert rows_of(world.engine, world.uows["done"])["uow_history"] == 0  # nothing came back


def test_a_segment_is_restored_and_everything_verifies(
    world: ArchiveWorld, session_factory: sessionmaker[Session], database_url: str
) -> None:
    before = rows_of(world.engine, world.uows["done"])
    store, segment = _archived(world)
    counts = restore(world.engine, store, segment, world.signer.public_key)
    assert counts["uow_history"] > 0
    assert rows_of(world.engine, world.uows["done"]) == before
    with session_factory() as session:
        report = UOWPersistenceService().verify_database(session)
    assert report.findings == ()
    seal(world.engine, world.signer)
    with world.engine.connect() as connection:
        head = latest_checkpoint(connection)
        assert verify_checkpoint(connection, head, world.signer.public_key).ok
    with pytest.raises(ArchiveError, match="restored already"):
        restore(world.engine, store, segment, world.signer.public_key)
    again = archive(world.engine, store, world.signer, world.scope())
    assert again.uows == 3  # restored rows can be archived again, under a new manifest


def test_a_segment_from_another_database_is_refused(world: ArchiveWorld, tmp_path: Path) -> None:
    _store, segment = _archived(world)
    foreign = DirectoryStore.for_writing(tmp_path / "foreign")
    for name in (segment_name(segment), f"{segment}.manifest.json"):
        (tmp_path / "foreign" / name.replace(segment, "f" * 32)).write_bytes(
            (world.archive_dir / name).read_bytes()
        )
    with pytest.raises(ArchiveError):
        restore(world.engine, foreign, "f" * 32, world.signer.public_key)
