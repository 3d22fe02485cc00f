"""Telemetry contract tests: the same suite against SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from chameleon_workflow.errors import ChameleonError
from chameleon_workflow.models import InteractionLog
from chameleon_workflow.states import LogType
from chameleon_workflow.telemetry.adapter import ShadowLoggerTelemetryAdapter
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.telemetry.flusher import TelemetryFlusher

BASE = datetime(2025, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
IDS = [uuid.UUID(int=n) for n in range(1, 6)]


def _entry(seq: int, log_type: str = "TELEMETRY", **details: Any) -> TelemetryEntry:
    return TelemetryEntry(
        *IDS,
        log_type=log_type,
        event_details={"seq": seq, **details},
        timestamp=BASE + timedelta(microseconds=seq),
    )


#: Rows of the streams themselves (their open and close rows, the seal of older rows).
STREAM_KINDS = (LogType.STREAM_OPENED, LogType.STREAM_CLOSED)
_ENTRIES = InteractionLog.log_type.not_in(STREAM_KINDS)


def _rows(session: Session) -> list[InteractionLog]:
    """Read every entry's row, then end the read transaction so later writers are not blocked."""
    session.expire_all()
    query = select(InteractionLog).where(_ENTRIES).order_by(InteractionLog.timestamp)
    rows = list(session.scalars(query))
    session.expunge_all()
    session.rollback()
    return rows


def _seqs(session: Session) -> list[int]:
    return [r.event_details["seq"] for r in _rows(session) if r.log_type == "TELEMETRY"]


def _count(session: Session) -> int:
    query = select(func.count()).select_from(InteractionLog).where(_ENTRIES)
    count = int(session.scalar(query) or 0)
    session.rollback()
    return count


def _wait_for(condition: Any, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False


@contextmanager
def _write_lock(engine: Engine) -> Iterator[None]:
    """Hold the table's write lock from another connection, as a stuck writer would."""
    if engine.dialect.name == "sqlite":
        other = sqlite3.connect(str(engine.url.database), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as conn:
        conn.execute("LOCK TABLE interaction_logs IN EXCLUSIVE MODE")
        yield
        conn.rollback()


_FAIL_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER fail_poison BEFORE INSERT ON interaction_logs "
        "WHEN NEW.event_details LIKE '%poison%' "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION fail_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.event_details ? 'poison' THEN RAISE EXCEPTION 'injected failure'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER fail_poison BEFORE INSERT ON interaction_logs "
        "FOR EACH ROW EXECUTE FUNCTION fail_poison()",
    ],
}


def test_flush_writes_exact_column_values(session: Session) -> None:
    """A flushed entry reads back with every column as recorded."""
    buffer = TelemetryBuffer()
    uow = uuid.uuid4()
    entry = TelemetryEntry(
        IDS[0], str(uow), IDS[2], None, IDS[4], "ERROR", {"k": [1, "a"]}, {"e": 1}, BASE
    )
    assert buffer.record(entry) is True
    assert buffer.flush(session) == 1
    (row,) = _rows(session)
    assert (row.instance_id, row.uow_id, row.actor_id, row.role_id, row.interaction_id) == (
        IDS[0],
        uow,
        IDS[2],
        None,
        IDS[4],
    )
    assert (row.timestamp, row.log_type, row.event_details, row.error_metadata) == (
        BASE,
        "ERROR",
        {"k": [1, "a"]},
        {"e": 1},
    )
    assert row.log_id.version == 4
    assert buffer.get_pending_count() == 0


def test_flush_respects_batch_size_and_max_entries(session: Session) -> None:
    """One flush writes at most batch_size (or max_entries) of the oldest entries."""
    buffer = TelemetryBuffer(batch_size=3)
    for i in range(7):
        buffer.record(_entry(i))
    assert buffer.flush(session) == 3
    assert buffer.flush(session, max_entries=2) == 2
    assert _seqs(session) == [0, 1, 2, 3, 4]
    assert buffer.get_pending_count() == 2


def test_flush_all_drains(session: Session) -> None:
    """flush_all writes every pending entry in order."""
    buffer = TelemetryBuffer(batch_size=4)
    for i in range(10):
        buffer.record(_entry(i))
    assert buffer.flush_all(session) == 10
    assert _seqs(session) == list(range(10))
    assert buffer.flush_all(session) == 0


def test_drops_become_a_loss_row(session: Session) -> None:
    """Drops forced by a full buffer are written as one TELEMETRY_LOSS row at the next flush."""
    buffer = TelemetryBuffer(batch_size=10, max_queue_size=2)
    results = [buffer.record(_entry(i, t)) for i, t in enumerate(["ERROR", "ERROR", "ERROR"])]
    results += [buffer.record(_entry(9, "GUARDIAN_DECISION"))] * 2
    assert results == [True, True, False, False, False]
    assert buffer.flush(session) == 2
    (loss,) = [r for r in _rows(session) if r.log_type == "TELEMETRY_LOSS"]
    assert loss.event_details["dropped"] == {"ERROR": 1, "GUARDIAN_DECISION": 1}
    assert loss.event_details["total"] == 2
    assert loss.event_details["first_drop_at"] <= loss.event_details["last_drop_at"]
    assert buffer.flush(session) == 0
    assert _count(session) == 3


def test_failed_write_loses_nothing(backend: str, engine: Engine, session: Session) -> None:
    """A write the database aborts mid-batch keeps every entry; the retry writes each once."""
    with engine.begin() as conn:
        for statement in _FAIL_TRIGGER[backend]:
            conn.exec_driver_sql(statement)
    buffer = TelemetryBuffer(batch_size=100)
    for i in range(10):
        buffer.record(_entry(i, poison=True) if i == 6 else _entry(i))
    with pytest.raises(ChameleonError, match="injected failure"):
        buffer.flush(session)
    assert buffer.get_pending_count() == 10
    assert _count(session) == 0
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TRIGGER fail_poison" + ("" if backend == "sqlite" else " ON interaction_logs")
        )
    assert buffer.flush_all(session) == 10
    assert _seqs(session) == list(range(10))


def test_non_json_details_still_flush(session: Session) -> None:
    """Details that are not JSON are stored as markers and never fail the flush."""
    buffer = TelemetryBuffer()
    buffer.record(_entry(0, obj=Decimal("1.5"), big=2**80, nul="a\x00b"))
    buffer.record(_entry(1, obj=Decimal("1.5"), nul="a\x00b"))
    early = BASE - timedelta(seconds=1)
    buffer.record(TelemetryEntry("not-a-uuid", None, None, None, None, timestamp=early))
    assert buffer.flush(session) == 3
    second, first, marked = _rows(session)
    assert first.event_details == {
        "__unserializable__": "dict",
        "repr": "{'seq': 0, 'obj': Decimal('1.5'), 'big': 1208925819614629174706176, "
        "'nul': 'a\\x00b'}",
    }
    assert marked.event_details == {
        "seq": 1,
        "obj": {"__unserializable__": "Decimal", "repr": "Decimal('1.5')"},
        "nul": "a\ufffdb",
    }
    assert (second.instance_id, second.error_metadata) == (
        None,
        {"original": None, "invalid_ids": {"instance_id": "'not-a-uuid'"}},
    )


def test_adapter_captures_error_decision_and_transition(session: Session) -> None:
    """Each adapter capture lands as a row of its log type with its details."""
    buffer = TelemetryBuffer()
    adapter = ShadowLoggerTelemetryAdapter(buffer, IDS[0])
    uow, role, inter, actor = IDS[1:]
    assert adapter.capture_shadow_log_error(uow, role, inter, actor, "boom", "x > 1", {"x": "a"})
    assert adapter.capture_guardian_decision(uow, role, inter, actor, "gate", "x > 1", "ROUTE", 2)
    assert adapter.capture_state_transition(uow, role, inter, actor, "ACTIVE", "COMPLETED", "done")
    assert buffer.flush(session) == 3
    rows = sorted(_rows(session), key=lambda r: r.log_type)
    assert [(r.log_type, r.event_details, r.error_metadata) for r in rows] == [
        (
            "ERROR",
            {"condition": "x > 1", "error": "boom", "variables": {"x": "a"}},
            {"error": "boom", "source": "shadow_logger"},
        ),
        (
            "GUARDIAN_DECISION",
            {
                "guardian": "gate",
                "condition": "x > 1",
                "decision": "ROUTE",
                "matched_branch_index": 2,
            },
            None,
        ),
        ("STATE_TRANSITION", {"from": "ACTIVE", "to": "COMPLETED", "reasoning": "done"}, None),
    ]
    assert {(r.instance_id, r.uow_id, r.role_id, r.interaction_id, r.actor_id) for r in rows} == {
        tuple(IDS)
    }


def test_concurrent_producers_and_flusher_write_each_entry_once(
    session_factory: sessionmaker[Session], session: Session
) -> None:
    """Entries recorded by many threads while a flusher runs all land exactly once."""
    buffer = TelemetryBuffer(batch_size=300, max_queue_size=100_000)
    flusher = TelemetryFlusher(buffer, session_factory, interval_s=0.01, size_trigger=500)
    flusher.start()

    def produce(thread: int) -> None:
        for i in range(1500):
            assert buffer.record(
                TelemetryEntry(None, None, None, None, None, "TELEMETRY", [thread, i])
            )

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert flusher.stop(deadline_s=30) == 0
    pairs = [tuple(r.event_details) for r in _rows(session)]
    assert len(pairs) == 6000
    assert set(pairs) == {(t, i) for t in range(4) for i in range(1500)}
    assert flusher.failures == 0


def test_flusher_stop_drains_within_deadline(
    session_factory: sessionmaker[Session], session: Session
) -> None:
    """Stopping the flusher writes everything pending well before the deadline."""
    buffer = TelemetryBuffer(batch_size=50)
    flusher = TelemetryFlusher(buffer, session_factory, interval_s=60)
    flusher.start()
    for i in range(120):
        buffer.record(_entry(i))
    started = time.monotonic()
    assert flusher.stop(deadline_s=10) == 0
    assert time.monotonic() - started < 10
    assert _seqs(session) == list(range(120))


def test_flusher_stop_deadline_holds_when_database_hangs(
    engine: Engine, session_factory: sessionmaker[Session], session: Session
) -> None:
    """With the table locked elsewhere, stop returns by its deadline and reports what is left."""
    buffer = TelemetryBuffer()
    flusher = TelemetryFlusher(buffer, session_factory, interval_s=60)
    flusher.start()
    for i in range(5):
        buffer.record(_entry(i))
    with _write_lock(engine):
        started = time.monotonic()
        assert flusher.stop(deadline_s=0.5) == 5
        assert time.monotonic() - started < 1.0
    assert flusher.join(timeout=10) is True
    assert buffer.get_pending_count() + _count(session) == 5


def test_flusher_flushes_on_interval(
    session_factory: sessionmaker[Session], session: Session
) -> None:
    """A running flusher writes pending entries after its interval."""
    buffer = TelemetryBuffer()
    flusher = TelemetryFlusher(buffer, session_factory, interval_s=0.05)
    flusher.start()
    try:
        buffer.record(_entry(0))
        assert _wait_for(lambda: buffer.get_pending_count() == 0) is True
        assert _seqs(session) == [0]
    finally:
        flusher.stop()


def test_flusher_flushes_on_size_trigger(
    session_factory: sessionmaker[Session], session: Session
) -> None:
    """Reaching size_trigger wakes the flusher long before its interval."""
    buffer = TelemetryBuffer()
    flusher = TelemetryFlusher(buffer, session_factory, interval_s=3600, size_trigger=10)
    flusher.start()
    try:
        for i in range(9):
            buffer.record(_entry(i))
        time.sleep(0.2)
        assert buffer.get_pending_count() == 9
        buffer.record(_entry(9))
        assert _wait_for(lambda: buffer.get_pending_count() == 0) is True
        assert _seqs(session) == list(range(10))
    finally:
        flusher.stop()


def test_flusher_survives_failures(
    backend: str, engine: Engine, session_factory: sessionmaker[Session], session: Session
) -> None:
    """A failing flush is logged and retried on the next tick; the thread keeps running."""
    with engine.begin() as conn:
        for statement in _FAIL_TRIGGER[backend]:
            conn.exec_driver_sql(statement)
    buffer = TelemetryBuffer()
    flusher = TelemetryFlusher(buffer, session_factory, interval_s=0.02)
    flusher.start()
    try:
        buffer.record(_entry(0, poison=True))
        assert _wait_for(lambda: flusher.failures >= 2) is True
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "DROP TRIGGER fail_poison" + ("" if backend == "sqlite" else " ON interaction_logs")
            )
        assert _wait_for(lambda: buffer.get_pending_count() == 0) is True
        assert _seqs(session) == [0]
    finally:
        flusher.stop()
