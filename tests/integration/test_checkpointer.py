"""The server's background checkpointer seals on its interval and outlives a failed iteration."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.checkpoints import create_signing_key, read_checkpoint
from chameleon_workflow.checkpoints.store import latest_checkpoint
from chameleon_workflow.server.services import Checkpointer
from chameleon_workflow.testing import make_uow


def _until(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_checkpointer_survives_a_failed_iteration(
    engine: Engine, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """Iterations that cannot write the file are counted; the next good one writes it."""
    with session_factory() as session:
        make_uow(session, attributes={"n": 1})
    place = tmp_path / "anchor"
    place.mkdir()
    signer = create_signing_key(place / "key.pem")
    blocked = place / "a-directory"
    blocked.mkdir()
    checkpointer = Checkpointer(engine, signer, blocked, interval_s=0.02)
    checkpointer.start()
    try:
        _until(lambda: checkpointer.failures >= 2)
        assert checkpointer.alive()
        target = place / "checkpoint.json"
        checkpointer.path = target
        _until(target.exists)
    finally:
        checkpointer.stop(5.0)
    with engine.connect() as connection:
        newest = latest_checkpoint(connection)
    assert read_checkpoint(target) == newest
    # workflow, interactions, history, attribute, the log seal, the key ledger's seal row,
    # and the admin record of the first seal, which the second (failed) iteration sealed
    assert newest.tree_size == 1 + 3 + 1 + 1 + 1 + 1 + 1
    assert sorted(p.name for p in place.iterdir()) == [
        "a-directory",
        "checkpoint.json",
        "key.pem",
    ]
