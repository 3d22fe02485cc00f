"""TelemetryBuffer.flush(session) commits and rolls back only its own work, never the caller's."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.config import Settings
from chameleon_workflow.db import make_engine, make_session_factory
from chameleon_workflow.errors import ConcurrencyError, DatabaseError
from chameleon_workflow.models import InstanceContext, InteractionLog
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.telemetry.streams import Streams
from chameleon_workflow.telemetry.writers import write_entries


def _entries(n: int) -> list[TelemetryEntry]:
    return [TelemetryEntry(None, None, None, None, None, "TELEMETRY", {"n": i}) for i in range(n)]


def _count(factory: sessionmaker[Session], model: type) -> int:
    """Count the rows of ``model``; of the log, the entries' rows (not the streams' own)."""
    query = select(func.count()).select_from(model)
    if model is InteractionLog:
        query = query.where(InteractionLog.log_type == "TELEMETRY")
    with factory() as session:
        return int(session.scalar(query) or 0)


def test_flush_leaves_the_callers_pending_work_pending(
    session_factory: sessionmaker[Session],
) -> None:
    """Work added to the session before a flush is neither committed nor lost by it."""
    buffer = TelemetryBuffer()
    for entry in _entries(3):
        buffer.record(entry)
    with session_factory() as session:
        session.add(InstanceContext(name="not-yet"))
        assert buffer.flush(session) == 3
        assert _count(session_factory, InteractionLog) == 3
        assert _count(session_factory, InstanceContext) == 0  # still the caller's to decide
        session.rollback()
    assert _count(session_factory, InstanceContext) == 0
    assert buffer.get_pending_count() == 0


def test_failed_flush_keeps_the_callers_work_and_its_entries(
    session_factory: sessionmaker[Session],
) -> None:
    """A flush that fails rolls back its own transaction only; the caller still commits."""

    def failing(session: Session, entries: Sequence[TelemetryEntry], streams: Streams) -> None:
        write_entries(session, entries, streams)
        raise DatabaseError("injected failure after writing")

    buffer = TelemetryBuffer(writer=failing)
    for entry in _entries(2):
        buffer.record(entry)
    with session_factory() as session:
        session.add(InstanceContext(name="kept"))
        with pytest.raises(DatabaseError):
            buffer.flush(session)
        session.commit()
    assert _count(session_factory, InstanceContext) == 1
    assert _count(session_factory, InteractionLog) == 0
    assert buffer.get_pending_count() == 2


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_flush_beside_written_but_uncommitted_work(
    session_factory: sessionmaker[Session],
) -> None:
    """PostgreSQL: rows the caller already wrote stay uncommitted while the flush commits."""
    buffer = TelemetryBuffer()
    buffer.record(_entries(1)[0])
    with session_factory() as session:
        session.add(InstanceContext(name="written"))
        session.flush()
        assert buffer.flush(session) == 1
        session.rollback()
    assert (_count(session_factory, InteractionLog), _count(session_factory, InstanceContext)) == (
        1,
        0,
    )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_flush_inside_a_write_transaction_keeps_everything(database_url: str) -> None:
    """SQLite: the caller holds the write lock, so the flush fails (entries and work kept)."""
    engine: Engine = make_engine(database_url, Settings(sqlite_busy_timeout_ms=50))
    factory = make_session_factory(engine)
    try:
        buffer = TelemetryBuffer()
        buffer.record(_entries(1)[0])
        with factory() as session:
            session.add(InstanceContext(name="locked"))
            session.flush()
            with pytest.raises(ConcurrencyError):
                buffer.flush(session)
            session.commit()
        with factory() as idle:
            assert buffer.flush_all(idle) == 1
        assert (_count(factory, InteractionLog), _count(factory, InstanceContext)) == (1, 1)
    finally:
        engine.dispose()
