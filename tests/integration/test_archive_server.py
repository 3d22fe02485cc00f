"""The server's side of archiving: the retention archiver and ``POST /archive``."""

from __future__ import annotations

from pathlib import Path

import pytest
from archive_world import ArchiveWorld, build_archive_world, rows_of
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.errors import ConfigurationError
from chameleon_workflow.models import AdminEvent, utcnow
from chameleon_workflow.server.app import create_app
from chameleon_workflow.server.services import Archiver, archiver_of
from chameleon_workflow.server.settings import ServerSettings

ADMIN = "admin-" + "a1" * 16


@pytest.fixture
def world(
    database_url: str,
    engine: Engine,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> ArchiveWorld:
    return build_archive_world(database_url, engine, session_factory, tmp_path)


def _settings(world: ArchiveWorld, **extra: object) -> ServerSettings:
    return ServerSettings.model_validate(
        {
            "database_url": world.url,
            "admin_token": ADMIN,
            "signing_key_file": str(world.key_file),
            "archive_dir": str(world.archive_dir),
            **extra,
        }
    )


def test_the_archiver_applies_the_retention_period(world: ArchiveWorld) -> None:
    kept = Archiver(world.engine, world.signer, world.archive_dir, 1, 3600.0)
    kept.run_once()
    assert kept.last is not None
    assert kept.last.uows == 0  # nothing is a day old yet
    due = Archiver(world.engine, world.signer, world.archive_dir, 0, 3600.0)
    due.run_once()
    assert due.last is not None
    assert due.last.uows == 3
    assert rows_of(world.engine, world.uows["done"])["uow_history"] == 0
    with world.engine.connect() as connection:
        event = connection.execute(
            select(AdminEvent.action, AdminEvent.principal).order_by(AdminEvent.sequence.desc())
        ).first()
    assert event == ("LEDGER_ARCHIVED", "system")


def test_retention_needs_a_directory_and_builds_an_archiver(world: ArchiveWorld) -> None:
    assert archiver_of(world.engine, _settings(world)) is None
    with pytest.raises(ConfigurationError, match="CHAMELEON_ARCHIVE_DIR"):
        archiver_of(world.engine, _settings(world, retention_days=30, archive_dir=None))
    built = archiver_of(world.engine, _settings(world, retention_days=30))
    assert isinstance(built, Archiver)
    assert built.days == 30


def test_post_archive_runs_an_archive(world: ArchiveWorld) -> None:
    app = create_app(_settings(world))
    headers = {"Authorization": f"Bearer {ADMIN}"}
    try:
        with TestClient(app) as client:
            ran = client.post("/archive", json={"before": utcnow().isoformat()}, headers=headers)
            again = client.post("/archive", json={"before": utcnow().isoformat()}, headers=headers)
    finally:
        app.state.services.engine.engine.dispose()
    assert ran.status_code == 200, ran.text
    assert ran.json()["uows"] == 3
    assert len(ran.json()["segments"]) == 1
    assert again.json()["uows"] == 0
    assert rows_of(world.engine, world.uows["live"])["uow_history"] > 0


def test_post_restore_brings_a_segment_back(world: ArchiveWorld) -> None:
    app = create_app(_settings(world))
    headers = {"Authorization": f"Bearer {ADMIN}"}
    try:
        with TestClient(app) as client:
            ran = client.post("/archive", json={"before": utcnow().isoformat()}, headers=headers)
            segment = ran.json()["segments"][0]
            back = client.post(f"/archive/{segment}/restore", headers=headers)
            twice = client.post(f"/archive/{segment}/restore", headers=headers)
            sneaky = client.post("/archive/..%2F..%2Fetc/restore", headers=headers)
    finally:
        app.state.services.engine.engine.dispose()
    assert back.status_code == 200, back.text
    assert back.json()["rows"]["uow_history"] > 0
    assert rows_of(world.engine, world.uows["done"])["uow_history"] == 4
    assert twice.status_code == 422
    assert "restored already" in twice.json()["detail"]
    assert sneaky.status_code in (404, 422)
