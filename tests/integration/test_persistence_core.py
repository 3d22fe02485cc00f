"""save_uow on a Core connection: the same writes and refusals as with a Session."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from chameleon_workflow.errors import ConcurrencyError, InvalidTransitionError, StateDriftError
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import UnitsOfWork
from chameleon_workflow.testing import Playground, append_only_disabled, make_uow


def _detached(session: Session, service: UOWPersistenceService, play: Playground) -> UnitsOfWork:
    uow = make_uow(session, play, attributes={"amount": 7}, service=service)
    session.expunge(uow)
    return uow


def test_core_saves_chain_and_verify(
    service: UOWPersistenceService, session: Session, play: Playground, engine: Engine
) -> None:
    """Saves on a Connection append chained history that a full verification accepts."""
    uow = _detached(session, service, play)
    with engine.connect() as conn:
        for i, target in enumerate(play.interactions * 2):
            with conn.begin():
                service.save_uow(conn, uow, new_interaction_id=target, metadata={"i": i})
    # The first save stays where the UOW was created: a heartbeat, with no history row.
    assert (uow.version, uow.history_sequence) == (7, 6)
    history = service.get_uow_history(session, uow.uow_id)
    assert [h.sequence for h in history] == list(range(1, 7))
    assert history[-1].transition_metadata == {"i": 5}
    assert history[-1].chain_hash == uow.chain_head
    report = service.verify_uow(session, uow.uow_id)
    assert report.ok, report.findings


def test_core_save_refuses_illegal_move_and_stale_copy(
    service: UOWPersistenceService, session: Session, play: Playground, engine: Engine
) -> None:
    """An illegal transition and a lost compare-and-set write nothing on a Connection."""
    uow = _detached(session, service, play)
    stale = session.get(UnitsOfWork, uow.uow_id)
    assert stale is not None
    with engine.connect() as conn:
        with conn.begin():
            service.save_uow(conn, uow, "ACTIVE")
        with conn.begin(), pytest.raises(InvalidTransitionError):
            service.save_uow(conn, uow, "ZOMBIED_DEAD")
    with pytest.raises(ConcurrencyError):
        service.save_uow(session, stale, "ACTIVE")
    session.rollback()
    assert [h.new_status for h in service.get_uow_history(session, uow.uow_id)] == [
        "PENDING",
        "ACTIVE",
    ]


def test_core_save_raises_on_drift(
    service: UOWPersistenceService, session: Session, play: Playground, engine: Engine
) -> None:
    """Attributes edited behind the service are drift on a Connection too: never laundered."""
    uow = _detached(session, service, play)
    with append_only_disabled(engine), engine.begin() as conn:
        conn.execute(text("UPDATE uow_attributes SET value = '8' WHERE key = 'amount'"))
    with engine.connect() as conn, conn.begin(), pytest.raises(StateDriftError):
        service.save_uow(conn, uow, "ACTIVE")
    session.expire_all()
    stored = session.get(UnitsOfWork, uow.uow_id)
    assert stored is not None
    assert stored.status == "FAILED_SECURITY_BREACH"
