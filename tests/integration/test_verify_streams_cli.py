"""`chameleon verify` (no checkpoint) names what it checked, and finds log and admin edits."""

from __future__ import annotations

from pathlib import Path

import pytest
from checkpoint_world import World, build_world, raw
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from chameleon_workflow.cli import app


@pytest.fixture
def world(
    database_url: str, engine: Engine, session_factory: sessionmaker[Session], tmp_path: Path
) -> World:
    """Give each test the sealed world on its own database."""
    return build_world(database_url, engine, session_factory, tmp_path)


def _verify(world: World) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["verify", "--database-url", world.url])
    return result.exit_code, " ".join(result.output.split())


def test_a_clean_run_names_streams_admin_events_and_definitions(world: World) -> None:
    """The clean line counts log rows, streams, admin events and definitions too."""
    code, output = _verify(world)
    assert code == 0, output
    assert "verification clean" in output
    # 4 entries after their stream's open row, and the seal of rows older than streams;
    # the instance, the import and the seal the world took.
    assert "6 log rows in 1 streams, 3 admin events, 2 workflow definitions" in output
    assert "note: stream " in output  # the world's buffer was never closed: still open


def test_deleted_error_logs_are_found_without_a_checkpoint(world: World) -> None:
    """The owner deletes the ERROR rows mid-stream: the stream's numbering gives it away."""
    raw(world.engine, "DELETE FROM interaction_logs WHERE log_type = 'ERROR'")
    code, output = _verify(world)
    assert code == 1, output
    assert "LOG_STREAM: stream " in output
    assert "expected row 2: rows missing" in output


def test_an_edited_admin_event_is_found_without_a_checkpoint(world: World) -> None:
    """The owner rewrites who imported the workflow: the admin ledger's link breaks."""
    raw(world.engine, "UPDATE admin_events SET principal = 'system' WHERE sequence = 2")
    code, output = _verify(world)
    assert code == 1, output
    assert "ADMIN_LEDGER: chain_hash does not match" in output
