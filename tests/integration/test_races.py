"""Concurrent writers of one UOW: exactly one winner, never a forked chain."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.errors import ChameleonError, ConcurrencyError
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import UnitsOfWork
from chameleon_workflow.testing import make_uow

ROUNDS = 15


def _race(
    service: UOWPersistenceService,
    factory: sessionmaker[Session],
    uow_id: Any,
    targets: tuple[str, str],
) -> list[object]:
    """Let two threads read the same version, then save different moves at once."""
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def worker(slot: int) -> None:
        with factory() as session:
            uow = session.get(UnitsOfWork, uow_id)
            assert uow is not None
            service.get_attributes(session, uow_id)  # both hold a read snapshot now
            barrier.wait()
            try:
                service.save_uow(session, uow, targets[slot], reasoning=f"thread {slot}")
                session.commit()
                outcomes[slot] = "won"
            except ChameleonError as exc:
                session.rollback()
                outcomes[slot] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


def test_two_threads_one_winner(service, session_factory, session, play) -> None:
    """Each round exactly one thread wins, the other gets ConcurrencyError; the chain verifies."""
    uow_id = make_uow(session, play, service=service).uow_id
    for _ in range(ROUNDS):
        with session_factory() as reader:
            status = service.get_uow(reader, uow_id).status
        targets = ("ACTIVE", "PAUSED") if status == "PENDING" else ("PENDING", "PENDING")
        outcomes = _race(service, session_factory, uow_id, targets)
        assert sorted(type(o).__name__ for o in outcomes) == ["ConcurrencyError", "str"]
        assert all(o == "won" or isinstance(o, ConcurrencyError) for o in outcomes)
    with session_factory() as reader:
        rows = service.get_uow_history(reader, uow_id)
        assert [r.sequence for r in rows] == list(range(1, ROUNDS + 2))
        assert service.verify_database(reader).findings == ()
