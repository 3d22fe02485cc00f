"""kill -9 at every step of an archive run: nothing lost, no row deleted without its segment.

The run is a separate process that kills itself (SIGKILL) at one step: after the
segment is written, after the manifest is written, in the middle of the deletes, after
the deletes but before the commit. Afterwards the database is as it was and verifies
clean, and a rerun removes the dead run's files and archives everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))  # the shared archive world
from archive_world import ArchiveWorld, build_archive_world, rows_of

from chameleon_workflow.archive.records import ArchiveManifest
from chameleon_workflow.archive.run import STEPS, archive
from chameleon_workflow.archive.storage import DirectoryStore
from chameleon_workflow.archive.verify import check_archive
from chameleon_workflow.keys import find_keys
from chameleon_workflow.ledger.service import UOWPersistenceService

_RUN = """
import os, signal, sys
from pathlib import Path
from chameleon_workflow.archive.run import archive
from chameleon_workflow.archive.selection import Scope
from chameleon_workflow.archive.storage import DirectoryStore
from chameleon_workflow.checkpoints.keys import load_signing_key
from chameleon_workflow.db import make_engine
from chameleon_workflow.models import utcnow

url, key, root, stop = sys.argv[1:5]

def step(name):
    if name == stop:
        os.kill(os.getpid(), signal.SIGKILL)

store = DirectoryStore.for_writing(Path(root))
archive(make_engine(url), store, load_signing_key(Path(key)), Scope(utcnow()), step=step)
"""


@pytest.fixture
def world(
    database_url: str,
    engine: Engine,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> ArchiveWorld:
    return build_archive_world(database_url, engine, session_factory, tmp_path)


def _manifests(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(ArchiveManifest)).scalar_one()
        )


@pytest.mark.parametrize("stop", STEPS)
def test_a_run_killed_at_any_step_loses_nothing_and_a_rerun_completes(
    world: ArchiveWorld, session_factory: sessionmaker[Session], stop: str
) -> None:
    before = {name: rows_of(world.engine, uow) for name, uow in world.uows.items()}
    world.engine.dispose()  # the killed run must not wait on this process's connections
    args = [world.url, str(world.key_file), str(world.archive_dir), stop]
    run = subprocess.run(
        [sys.executable, "-c", _RUN, *args], capture_output=True, timeout=60, check=False
    )
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()
    assert {name: rows_of(world.engine, uow) for name, uow in world.uows.items()} == before
    assert _manifests(world.engine) == 0
    with session_factory() as session:
        assert UOWPersistenceService().verify_database(session).findings == ()
    left = sorted(n for n in os.listdir(world.archive_dir) if n != ".lock")
    assert left, "the run died after writing its segment"
    store = DirectoryStore.for_writing(world.archive_dir)
    again = archive(world.engine, store, world.signer, world.scope())
    assert sorted(again.removed_partial) == left
    assert again.uows == 3
    assert rows_of(world.engine, world.uows["done"])["uow_history"] == 0
    with world.engine.connect() as connection:
        checked = check_archive(connection, store, world.signer.public_key, find_keys(world.url))
    assert checked.problems == []
    with session_factory() as session:
        assert UOWPersistenceService().verify_database(session).findings == ()
