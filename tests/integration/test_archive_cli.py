"""`chameleon archive`, `archive restore`, `verify --archive`, `history --archive`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from archive_world import ArchiveWorld, build_archive_world, rows_of
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from chameleon_workflow.cli import app
from chameleon_workflow.models import utcnow


@pytest.fixture
def world(
    database_url: str,
    engine: Engine,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> ArchiveWorld:
    built = build_archive_world(database_url, engine, session_factory, tmp_path)
    monkeypatch.setenv("CHAMELEON_SIGNING_KEY_FILE", str(built.key_file))
    monkeypatch.setenv("CHAMELEON_ARCHIVE_DIR", str(built.archive_dir))
    return built


def _run(world: ArchiveWorld, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--database-url", world.url])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_archive_verify_history_restore_from_the_command_line(world: ArchiveWorld) -> None:
    now = utcnow().isoformat()
    code, output = _run(world, "archive", "--before", now, "--dry-run")
    assert code == 0, output
    assert "would archive 3 UOWs" in output
    code, output = _run(world, "archive", "--before", now, "--json")
    assert code == 0, output
    segment = json.loads(output)["segments"][0]
    assert rows_of(world.engine, world.uows["done"])["uow_history"] == 0
    code, output = _run(world, "verify", "--json")
    assert code == 0, output
    assert any(f"archived segment {segment}" in n for n in json.loads(output)["notices"])
    code, output = _run(world, "verify", "--archive", str(world.archive_dir))
    assert code == 0, output
    assert "archive: 1 segments" in output
    code, output = _run(
        world, "history", str(world.uows["done"]), "--archive", str(world.archive_dir)
    )
    assert code == 0, output
    assert f"archived in segment {segment}" in output
    assert "COMPLETED" in output
    code, output = _run(world, "history", str(world.uows["done"]))
    assert code == 2, output
    code, output = _run(world, "archive", "restore", segment)
    assert code == 0, output
    assert rows_of(world.engine, world.uows["done"])["uow_history"] == 4
    code, output = _run(world, "verify")
    assert code == 0, output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["archive", "--before", "2999-01-01"], "in the future"),
        (["archive"], "--before is required"),
        (["archive", "--before", "yesterday"], "not an ISO 8601 time"),
        (["archive", "--before", "2999-01-01", "--archive-dir", "/dev/null/x"], "not writable"),
        (["archive", "restore", "0" * 32], "does not exist"),
        (["archive", "restore", "0" * 32, "--archive-dir", "."], "missing"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_and_nothing_is_deleted(
    world: ArchiveWorld, args: list[str], message: str
) -> None:
    before = rows_of(world.engine, world.uows["done"])
    code, output = _run(world, *args)
    assert code == 2, output
    assert message in output
    assert rows_of(world.engine, world.uows["done"]) == before
