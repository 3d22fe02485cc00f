"""record_breach: the breach writer's own transaction never leaks a driver error."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine

from chameleon_workflow.config import Settings
from chameleon_workflow.db import SQLITE_IMMEDIATE, make_engine
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import UnitsOfWork
from chameleon_workflow.testing import Playground, make_uow


@pytest.fixture
def impatient_engine(database_url: str) -> Iterator[Engine]:
    """Yield an engine whose SQLite writers give up at once and take the lock at BEGIN."""
    engine = make_engine(
        database_url, Settings(database_url=database_url, sqlite_busy_timeout_ms=0)
    )
    yield engine.execution_options(**{SQLITE_IMMEDIATE: True})
    engine.dispose()


@contextmanager
def _uow_locked(engine: Engine, uow_id: uuid.UUID) -> Iterator[None]:
    """Hold what a breach writer needs: SQLite's write lock, or the UOW's row lock."""
    with engine.connect() as blocker:
        raw = blocker.connection.driver_connection
        assert raw is not None
        if engine.dialect.name == "sqlite":
            raw.execute("BEGIN IMMEDIATE")
        else:
            raw.execute("BEGIN")
            raw.execute(f"SELECT 1 FROM units_of_work WHERE uow_id = '{uow_id}' FOR UPDATE")
        try:
            yield
        finally:
            raw.execute("ROLLBACK")


def test_breach_blocked_by_another_writer_returns_false_then_records(
    service: UOWPersistenceService,
    session,
    play: Playground,
    engine: Engine,
    impatient_engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A held lock (SQLite: at BEGIN) makes record_breach log and return False, not raise."""
    uow = make_uow(session, play, interaction=None, service=service)
    with (
        _uow_locked(engine, uow.uow_id),
        caplog.at_level(logging.ERROR, logger="chameleon_workflow.ledger.writes"),
    ):
        assert service.record_breach(impatient_engine, uow.uow_id, "f" * 64) is False
    assert [r.getMessage() for r in caplog.records] == [
        f"could not record the security breach of UOW {uow.uow_id}"
    ]
    assert service.record_breach(impatient_engine, uow.uow_id, "f" * 64) is True
    session.expire_all()
    stored = session.get(UnitsOfWork, uow.uow_id)
    assert stored is not None
    assert (stored.status, stored.version) == ("FAILED_SECURITY_BREACH", 2)


def test_breach_without_wait_gives_up_at_once_on_a_held_lock(
    service: UOWPersistenceService,
    session,
    play: Playground,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """wait=False returns False without waiting out a 30 s busy timeout or a row lock."""
    patient = make_engine(
        database_url, Settings(database_url=database_url, sqlite_busy_timeout_ms=30_000)
    )
    writer = patient.execution_options(**{SQLITE_IMMEDIATE: True})  # as the engine binds it
    uow = make_uow(session, play, interaction=None, service=service)
    try:
        with (
            _uow_locked(patient, uow.uow_id),
            caplog.at_level(logging.ERROR, logger="chameleon_workflow.ledger.writes"),
        ):
            started = time.monotonic()
            assert service.record_breach(writer, uow.uow_id, "f" * 64, wait=False) is False
            waited = time.monotonic() - started
        assert waited < 10  # a waiting writer would sit out the 30 s busy timeout (SQLite)
        cause = str(caplog.records[0].exc_info[1]) if caplog.records[0].exc_info else ""
        expected = "database is locked" if patient.dialect.name == "sqlite" else "obtain lock"
        assert expected in cause
        assert service.record_breach(writer, uow.uow_id, "f" * 64, wait=False) is True
    finally:
        patient.dispose()
