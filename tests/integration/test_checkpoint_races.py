"""Two sealer processes and a writer at once: every row sealed once, no gap, none left behind."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.benchmarks.ledger import build_ledger
from chameleon_workflow.checkpoints import (
    LEDGER_TABLES,
    create_signing_key,
    load_signing_key,
    seal,
    verify_checkpoint,
)
from chameleon_workflow.config import Settings
from chameleon_workflow.db import SQLITE_IMMEDIATE, make_engine, make_session_factory
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.testing import make_playground, make_uow

SEALS_PER_PROCESS = 3
_start: Any = None  # the barrier both sealer processes wait at, set as each process starts


def _meet_at(barrier: Any) -> None:
    """Keep the barrier the sealers start together at (a pool initializer)."""
    global _start  # noqa: PLW0603 - one value per worker process, handed over at its start
    _start = barrier


def _sealer(url: str, key_file: str) -> list[int]:
    """Seal a few times from a process of its own, once both sealers are ready."""
    engine = make_engine(url, Settings(database_url=url, sqlite_busy_timeout_ms=30_000))
    signer = load_signing_key(Path(key_file))
    _start.wait(timeout=120)
    try:
        return [seal(engine, signer).new_leaves for _ in range(SEALS_PER_PROCESS)]
    finally:
        engine.dispose()


def _writer(url: str, stop: threading.Event, written: list[int]) -> None:
    """Keep creating and moving UOWs until told to stop (SQLite: waiting out each seal)."""
    service = UOWPersistenceService()
    engine = make_engine(url, Settings(database_url=url, sqlite_busy_timeout_ms=30_000))
    factory = make_session_factory(engine.execution_options(**{SQLITE_IMMEDIATE: True}))
    with factory() as session:
        play = make_playground(session)
        session.commit()
        while not stop.is_set():
            uow = make_uow(session, play, attributes={"n": len(written)}, service=service)
            service.save_uow(session, uow, "ACTIVE", reasoning="claim")
            session.commit()
            written.append(1)
    engine.dispose()


def _ledger_rows(engine: Engine) -> set[tuple[str, str]]:
    with engine.connect() as connection:
        return {
            (ledger.name, str(key))
            for ledger in LEDGER_TABLES
            for (key,) in connection.execute(select(ledger.key))
        }


@pytest.mark.slow
def test_concurrent_sealers_and_writers_seal_every_row_once(
    database_url: str, engine: Engine, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """Two processes sealing while a writer writes assign each row one position, gap-free."""
    build_ledger(session_factory, 40, 50)  # 2,000 history rows to make each seal take a while
    key_file = tmp_path / "key.pem"
    signer = create_signing_key(key_file)
    stop, written = threading.Event(), []
    writer = threading.Thread(target=_writer, args=(database_url, stop, written))
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(2)  # each sealer blocks its process, so each runs in its own
    pool = ProcessPoolExecutor(2, mp_context=context, initializer=_meet_at, initargs=(ready,))
    with pool:
        futures = [pool.submit(_sealer, database_url, str(key_file)) for _ in range(2)]
        writer.start()
        added = [n for future in futures for n in future.result(timeout=120)]
    stop.set()
    writer.join(timeout=60)
    last = seal(engine, signer)
    # That seal recorded itself in the admin ledger; one more covers the record, records nothing.
    final = seal(engine, signer)
    assert written, "the writer wrote nothing while the sealers ran"
    with engine.connect() as connection:
        positions = connection.execute(
            text("SELECT position, kind, row_id FROM ledger_leaves ORDER BY position")
        ).all()
        assert final.checkpoint is not None
        report = verify_checkpoint(connection, final.checkpoint, signer.public_key)
    rows = _ledger_rows(engine)
    assert [p for p, _, _ in positions] == list(range(len(rows)))
    assert {(kind, row_id) for _, kind, row_id in positions} == rows
    assert sum(added) + last.new_leaves + final.new_leaves == len(rows)
    assert max(added) >= 2_000  # one seal took the whole backlog; the other waited its turn
    assert (report.ok, report.leaves_checked) == (True, len(rows))
