"""Edits made behind the service's back are refused by the database or found by verification."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from ledger_walks import walked
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from chameleon_workflow.audit.report import FindingKind
from chameleon_workflow.db import translated_errors
from chameleon_workflow.errors import (
    AppendOnlyViolationError,
    InvalidTransitionError,
    StateDriftError,
)
from chameleon_workflow.ledger.service import UOWPersistenceService
from chameleon_workflow.models import UnitsOfWork
from chameleon_workflow.states import check_transition
from chameleon_workflow.telemetry.buffer import TelemetryBuffer
from chameleon_workflow.telemetry.entry import TelemetryEntry
from chameleon_workflow.testing import append_only_disabled


def _raw(engine: Engine, sql: str, **params: Any) -> None:
    with translated_errors(), engine.begin() as conn:
        conn.execute(text(sql), params)


def _kinds(service: UOWPersistenceService, session: Session) -> list[tuple[str, int | None]]:
    session.rollback()
    return [(f.kind.value, f.sequence) for f in service.verify_database(session).findings]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE uow_history SET reasoning = 'forged'",
        "DELETE FROM uow_history",
        "UPDATE interaction_logs SET log_type = 'ERROR'",
        "DELETE FROM interaction_logs",
        "UPDATE uow_attributes SET value = '1'",
        "DELETE FROM uow_attributes",
    ],
)
def test_database_refuses_update_and_delete(service, engine, session, play, sql) -> None:
    """Raw UPDATE and DELETE on the ledger, the attributes and the logs are refused."""
    walked(service, session, play)
    buffer = TelemetryBuffer()
    buffer.record(TelemetryEntry(None, None, None, None, None, "TELEMETRY"))
    buffer.close(session)
    with pytest.raises(AppendOnlyViolationError, match="append-only"):
        _raw(engine, sql)
    assert _kinds(service, session) == []


@pytest.mark.parametrize("backend", ["postgresql"])  # TRUNCATE exists on PostgreSQL only
def test_postgres_refuses_truncate(service, engine, session, play) -> None:
    """TRUNCATE of the ledger and the logs is refused on PostgreSQL."""
    walked(service, session, play)
    for table in ("uow_history", "interaction_logs", "uow_attributes"):
        with pytest.raises(AppendOnlyViolationError, match=f"{table} is append-only: TRUNCATE"):
            _raw(engine, f"TRUNCATE {table} CASCADE")
    assert _kinds(service, session) == []


@pytest.mark.parametrize("backend", ["sqlite"])  # INSERT OR REPLACE is SQLite syntax
def test_sqlite_insert_or_replace_is_refused(service, engine, session, play) -> None:
    """INSERT OR REPLACE cannot swap a ledger row, even from a connection without our pragmas."""
    uow = walked(service, session, play)
    history_id = str(service.get_uow_history(session, uow.uow_id)[1].history_id)
    session.rollback()
    plain = sqlite3.connect(engine.url.database or "")  # no recursive_triggers here
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        plain.execute(
            "INSERT OR REPLACE INTO uow_history SELECT * FROM uow_history WHERE history_id = ?",
            (history_id,),
        )
    plain.close()
    with pytest.raises(AppendOnlyViolationError, match="append-only"):
        _raw(
            engine,
            "INSERT INTO uow_history SELECT * FROM uow_history WHERE history_id = :h "
            "ON CONFLICT (history_id) DO UPDATE SET reasoning = 'forged'",
            h=history_id,
        )
    assert _kinds(service, session) == []


def test_edited_attribute_is_reported_as_drift(service, engine, session, play) -> None:
    """Editing an attribute row behind the service is reported as DRIFT."""
    uow = walked(service, session, play)
    with append_only_disabled(engine):
        _raw(engine, "UPDATE uow_attributes SET value = '999' WHERE key = 'amount' AND version = 2")
    assert service.verify_state_hash(session, uow) is False
    assert _kinds(service, session) == [
        ("ATTRIBUTE_MISMATCH", 3),  # the value no longer matches its salted digest
        ("DRIFT", None),
        ("ATTRIBUTE_MISMATCH", 3),  # nor the change history row 3 records
    ]


def test_edited_status_is_reported(service, engine, session, play) -> None:
    """Editing units_of_work.status is reported: the row disagrees with its last history row."""
    walked(service, session, play)
    _raw(engine, "UPDATE units_of_work SET status = 'COMPLETED'")
    assert _kinds(service, session) == [("HEAD_MISMATCH", 5)]


def test_deleted_history_row_is_reported(service, engine, session, play) -> None:
    """Deleting a middle history row breaks the sequence and the chain."""
    walked(service, session, play)
    with append_only_disabled(engine):
        _raw(engine, "DELETE FROM uow_history WHERE sequence = 3")
    assert _kinds(service, session) == [
        ("SEQUENCE_GAP", 4),
        ("CHAIN_BROKEN", 4),
        ("DISCONTINUITY", 4),
        ("ATTRIBUTE_MISMATCH", 3),  # the attribute rows it committed to are left without it
    ]


def test_deleted_last_row_is_reported(service, engine, session, play) -> None:
    """Deleting the newest history row leaves the UOW row ahead of its ledger."""
    walked(service, session, play)
    with append_only_disabled(engine):
        _raw(engine, "DELETE FROM uow_history WHERE sequence = 5")
    kinds = _kinds(service, session)
    assert ("HEAD_MISMATCH", 4) in kinds
    assert {k for k, _ in kinds} == {"HEAD_MISMATCH"}


def test_reordered_history_is_reported(service, engine, session, play) -> None:
    """Swapping the sequence numbers of two rows breaks the chain at both."""
    walked(service, session, play)
    with append_only_disabled(engine):
        _raw(engine, "UPDATE uow_history SET sequence = 100 WHERE sequence = 2")
        _raw(engine, "UPDATE uow_history SET sequence = 2 WHERE sequence = 3")
        _raw(engine, "UPDATE uow_history SET sequence = 3 WHERE sequence = 100")
    kinds = _kinds(service, session)
    assert ("CHAIN_BROKEN", 2) in kinds
    assert ("CHAIN_BROKEN", 3) in kinds


def test_edited_history_field_is_reported(service, engine, session, play) -> None:
    """Rewriting who did something or why breaks that row's link."""
    walked(service, session, play)
    with append_only_disabled(engine):
        _raw(engine, "UPDATE uow_history SET reasoning = 'forged' WHERE sequence = 2")
    assert _kinds(service, session) == [("CHAIN_BROKEN", 2)]


def test_drift_is_never_laundered(service, engine, session, session_factory, play) -> None:
    """A save after drift raises, records FAILED_SECURITY_BREACH on its own, keeps the hash."""
    uow = walked(service, session, play)
    stored_hash = uow.content_hash
    with append_only_disabled(engine):
        _raw(engine, "UPDATE uow_attributes SET value = '999' WHERE key = 'amount' AND version = 2")
    with pytest.raises(StateDriftError, match="recorded as FAILED_SECURITY_BREACH") as info:
        service.save_uow(session, uow, "PENDING")
    assert info.value.stored == stored_hash
    session.rollback()  # the caller gives up; the breach row was committed on its own
    with session_factory() as fresh:
        stored = fresh.get(UnitsOfWork, uow.uow_id)
        assert stored is not None
        assert (stored.status, stored.content_hash) == ("FAILED_SECURITY_BREACH", stored_hash)
        last = service.get_uow_history(fresh, uow.uow_id)[-1]
        assert last.event_type == "SECURITY_BREACH"
        assert last.transition_metadata["stored_content_hash"] == stored_hash
        assert last.new_state_hash == stored_hash
        rows_before = len(service.get_uow_history(fresh, uow.uow_id))
        with pytest.raises(StateDriftError):
            service.save_uow(fresh, stored, "PENDING")
        fresh.rollback()
        assert len(service.get_uow_history(fresh, uow.uow_id)) == rows_before  # recorded once
        with pytest.raises(InvalidTransitionError, match="FAILED_SECURITY_BREACH -> PENDING"):
            check_transition(str(stored.status), "PENDING")  # final: no way back
        findings = service.verify_database(fresh).findings
        assert [f.kind for f in findings] == [
            FindingKind.ATTRIBUTE_MISMATCH,
            FindingKind.DRIFT,
            FindingKind.ATTRIBUTE_MISMATCH,
        ]


def test_deleted_uow_row_leaves_its_ledger_orphaned_and_reported(
    service, engine, session, play, backend
) -> None:
    """A UOW row deleted past the foreign keys is reported through its orphaned rows."""
    uow = walked(service, session, play)
    other = walked(service, session, play)
    session.rollback()
    if backend == "sqlite":
        plain = sqlite3.connect(engine.url.database or "")  # foreign keys off, as in any client
        plain.execute("DELETE FROM units_of_work WHERE uow_id = ?", (str(uow.uow_id),))
        plain.commit()
        plain.close()
    else:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute("SET session_replication_role = replica")  # skips FK triggers
            raw.execute("DELETE FROM units_of_work WHERE uow_id = %s", (uow.uow_id,))
            raw.execute("RESET session_replication_role")
            raw.commit()
    findings = service.verify_database(session).findings
    assert [(f.kind.value, f.uow_id, f.detail) for f in findings] == [
        (
            "ORPHANED",
            str(uow.uow_id),
            "5 history rows belong to no UOW row (the UOW row was deleted)",
        ),
        (
            "ORPHANED",
            str(uow.uow_id),
            "3 attribute rows belong to no UOW row (the UOW row was deleted)",
        ),
    ]
    report = service.verify_uow(session, other.uow_id)
    assert report.ok
