"""save_uow on a Core connection: the same writes and refusals as with a Session."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from chameleon_workflow.errors import (
    ChameleonError,
    ConcurrencyError,
    InvalidTransitionError,
    StateDriftError,
)
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


def _core_race(
    service: UOWPersistenceService, engine: Engine, uow_id: Any, targets: tuple[str, str]
) -> list[object]:
    """Let two threads load the same version, then save different moves on two Connections."""
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def worker(slot: int) -> None:
        with Session(engine) as reader:
            uow = reader.get(UnitsOfWork, uow_id)
            assert uow is not None
            reader.expunge(uow)
        barrier.wait()
        try:
            with engine.connect() as conn, conn.begin():
                service.save_uow(conn, uow, targets[slot], reasoning=f"thread {slot}")
            outcomes[slot] = "won"
        except ChameleonError as exc:
            outcomes[slot] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_two_core_connections_one_winner(
    service: UOWPersistenceService, session: Session, play: Playground, engine: Engine
) -> None:
    """Two threads on their own Connections save one version at once: one wins, no fork."""
    uow_id = make_uow(session, play, service=service).uow_id
    for _ in range(8):
        session.expire_all()
        current = session.get(UnitsOfWork, uow_id)
        assert current is not None
        targets = ("ACTIVE", "PAUSED") if current.status == "PENDING" else ("PENDING", "PENDING")
        session.rollback()
        outcomes = _core_race(service, engine, uow_id, targets)
        assert sorted(type(o).__name__ for o in outcomes) == ["ConcurrencyError", "str"]
    rows = service.get_uow_history(session, uow_id)
    assert [r.sequence for r in rows] == list(range(1, 10))
    assert service.verify_uow(session, uow_id).findings == ()
