"""Concurrent checkouts from one queue: every UOW processed exactly once, every chain intact."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.benchmarks.engine import drain, drain_in_processes, seed_queue
from chameleon_workflow.errors import ChameleonError
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import UnitsOfWork, UnitsOfWorkHistory

UOWS = 40
WORKERS = 4


def _assert_each_processed_once(
    factory: sessionmaker[Session], done: dict[uuid.UUID, list[uuid.UUID]]
) -> None:
    """Check no UOW was claimed twice, all were claimed, and the ledger agrees and verifies."""
    claimed = [uow for ids in done.values() for uow in ids]
    assert len(claimed) == UOWS
    assert len(set(claimed)) == UOWS
    with factory() as session:
        statuses = Counter(str(s) for s in session.scalars(select(UnitsOfWork.status)))
        holders = session.execute(
            select(UnitsOfWorkHistory.uow_id, UnitsOfWorkHistory.actor_id).where(
                UnitsOfWorkHistory.new_status == "ACTIVE"
            )
        ).all()
        report = UOWPersistenceService().verify_database(session)
    assert statuses == {"PENDING": UOWS}
    assert sorted(str(u) for u, _ in holders) == sorted(str(u) for u in claimed)
    by_actor = {uow: actor for actor, ids in done.items() for uow in ids}
    assert all(by_actor[uow] == actor for uow, actor in holders)
    assert report.ok
    assert report.uows_checked == UOWS


def test_threads_never_double_checkout(session_factory: sessionmaker[Session]) -> None:
    """Four threads, each its own actor, drain one queue: each UOW is processed once."""
    engine, actors = seed_queue(session_factory, UOWS, WORKERS)
    done: dict[uuid.UUID, list[uuid.UUID]] = {}
    errors: list[ChameleonError] = []
    start = threading.Barrier(WORKERS)

    def work(actor: uuid.UUID) -> None:
        start.wait()
        try:
            done[actor] = drain(engine, actor)
        except ChameleonError as exc:  # recorded, so the assertion names it
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(a,)) for a in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    _assert_each_processed_once(session_factory, done)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"])  # the multi-machine deployment
def test_processes_never_double_checkout(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    """Four spawned processes, each with its own engine, drain one PostgreSQL queue once."""
    _, actors = seed_queue(session_factory, UOWS, WORKERS)
    done, _ = drain_in_processes(database_url, actors)
    _assert_each_processed_once(session_factory, done)
