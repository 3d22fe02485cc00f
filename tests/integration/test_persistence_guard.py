"""Saves after a passed drift check skip the read, and still never launder drift."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from chameleon_workflow.errors import ConcurrencyError, InvalidTransitionError, StateDriftError
from chameleon_workflow.ledger.postgres import PostgresSQL
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.ledger.sqlite import SQLiteSQL
from chameleon_workflow.models import UnitsOfWork, UnitsOfWorkHistory
from chameleon_workflow.testing import Playground, append_only_disabled, make_uow


def _checked(service: UOWPersistenceService, session: Session, play: Playground) -> UnitsOfWork:
    """Create a UOW and save it once, so that its attributes have passed a drift check."""
    attributes = {"amount": 100, "owner": "ann"}
    uow = make_uow(session, play, attributes=attributes, service=service, commit=False)
    service.save_uow(session, uow, "ACTIVE", reasoning="claim")
    session.commit()
    return uow


def _raw(engine: Engine, sql: str) -> None:
    with append_only_disabled(engine), engine.begin() as conn:
        conn.execute(text(sql))


def _stored(session: Session, uow_id: uuid.UUID) -> tuple[str, str, int, int]:
    session.expire_all()
    row = session.get(UnitsOfWork, uow_id)
    assert row is not None
    count = select(func.count()).where(UnitsOfWorkHistory.uow_id == uow_id)
    return str(row.status), row.content_hash, row.version, int(session.scalar(count) or 0)


def test_repeated_saves_read_attributes_only_when_needed(
    service, session, play, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a checked UOW saves without re-reading; SQLite reads on every save."""
    uow = _checked(service, session, play)
    reads: list[uuid.UUID] = []
    sql_type = PostgresSQL if backend == "postgresql" else SQLiteSQL
    original = sql_type.snapshot

    def counting(self: Any, conn: Any, uow_id: uuid.UUID) -> Any:
        reads.append(uow_id)
        return original(self, conn, uow_id)

    monkeypatch.setattr(sql_type, "snapshot", counting)
    for target in (play.interactions[1], play.interactions[0], play.interactions[1]):
        service.save_uow(session, uow, "ACTIVE", target)
        session.commit()
    assert len(reads) == (0 if backend == "postgresql" else 3)
    assert _stored(session, uow.uow_id)[2:] == (5, 5)


def test_tampered_attribute_after_a_checked_save_is_drift(service, engine, session, play) -> None:
    """An attribute edited after a passed check stops the next save and records the breach."""
    uow = _checked(service, session, play)
    stored_hash = uow.content_hash
    _raw(engine, "UPDATE uow_attributes SET value = '999' WHERE key = 'amount'")
    with pytest.raises(StateDriftError, match="recorded as FAILED_SECURITY_BREACH"):
        service.save_uow(session, uow, "PENDING", play.interactions[1])
    session.rollback()
    assert _stored(session, uow.uow_id) == ("FAILED_SECURITY_BREACH", stored_hash, 3, 3)


def test_tampered_heartbeat_only_save_is_drift(service, engine, session, play) -> None:
    """A save that records nothing (heartbeat only) also refuses drifted attributes."""
    uow = _checked(service, session, play)
    _raw(engine, "DELETE FROM uow_attributes WHERE key = 'owner'")
    with pytest.raises(StateDriftError):
        service.save_uow(session, uow)
    session.rollback()
    assert _stored(session, uow.uow_id)[0::2] == ("FAILED_SECURITY_BREACH", 3)


def test_edited_content_hash_column_is_drift(service, engine, session, play) -> None:
    """Rewriting units_of_work.content_hash behind the service is caught at the next save."""
    uow = _checked(service, session, play)
    _raw(engine, f"UPDATE units_of_work SET content_hash = '{'a' * 64}'")
    with pytest.raises(StateDriftError) as info:
        service.save_uow(session, uow, "PENDING", play.interactions[1])
    session.rollback()
    assert info.value.stored == "a" * 64
    assert _stored(session, uow.uow_id) == ("FAILED_SECURITY_BREACH", "a" * 64, 3, 3)


def test_illegal_transition_after_a_checked_save_writes_nothing(service, session, play) -> None:
    """A checked UOW still refuses an illegal transition, naming both states."""
    uow = _checked(service, session, play)
    with pytest.raises(InvalidTransitionError, match="ACTIVE -> ARCHIVED"):
        service.save_uow(session, uow, "ARCHIVED")
    session.rollback()
    assert _stored(session, uow.uow_id)[0::2] == ("ACTIVE", 2)


def test_drift_is_reported_before_an_illegal_transition(service, engine, session, play) -> None:
    """With drift and an illegal move at once, the drift is what is raised and recorded."""
    uow = _checked(service, session, play)
    _raw(engine, "UPDATE uow_attributes SET value = '1' WHERE key = 'amount'")
    with pytest.raises(StateDriftError):
        service.save_uow(session, uow, "ARCHIVED")
    session.rollback()
    assert _stored(session, uow.uow_id)[0::2] == ("FAILED_SECURITY_BREACH", 3)


def test_stale_checked_copy_loses_cleanly(service, session_factory, session, play) -> None:
    """A checked copy saved after another writer moved the UOW gets ConcurrencyError."""
    uow = _checked(service, session, play)
    with session_factory() as other:
        fresh = other.get(UnitsOfWork, uow.uow_id)
        assert fresh is not None
        service.save_uow(other, fresh, "PENDING", play.interactions[1])
        other.commit()
    with pytest.raises(ConcurrencyError, match="another writer"):
        service.save_uow(session, uow, "PAUSED")
    session.rollback()
    assert _stored(session, uow.uow_id)[0::2] == ("PENDING", 3)
