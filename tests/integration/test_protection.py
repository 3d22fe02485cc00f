"""Verification reports an append-only trigger that was dropped, disabled or defused."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from chameleon_workflow import audit


def _problems(session: Session) -> list[str]:
    report = audit.verify(session)
    session.rollback()
    return [str(f) for f in report.findings]


def _ddl(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def test_an_untouched_database_is_protected(session: Session) -> None:
    """A freshly migrated database has every trigger in place: no finding."""
    assert _problems(session) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_dropped_and_defused_triggers_are_found(engine: Engine, session: Session) -> None:
    """A dropped trigger is missing; one re-created with a WHEN that never holds is altered."""
    _ddl(
        engine,
        "DROP TRIGGER uow_history_no_delete",
        "DROP TRIGGER uow_attributes_no_update",
        "CREATE TRIGGER uow_attributes_no_update BEFORE UPDATE ON uow_attributes WHEN 0 "
        "BEGIN SELECT RAISE(ABORT, 'uow_attributes is append-only: UPDATE refused'); END",
    )
    assert _problems(session) == [
        "PROTECTION_MISSING: append-only trigger uow_history_no_delete is missing",
        "PROTECTION_MISSING: append-only trigger uow_attributes_no_update was altered",
    ]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgres_disabled_triggers_are_found(engine: Engine, session: Session) -> None:
    """DISABLE TRIGGER USER and ENABLE REPLICA TRIGGER both leave rows unguarded: reported."""
    _ddl(
        engine,
        "ALTER TABLE uow_history DISABLE TRIGGER USER",
        "ALTER TABLE interaction_logs ENABLE REPLICA TRIGGER interaction_logs_no_change",
    )
    assert _problems(session) == [
        "PROTECTION_MISSING: append-only trigger uow_history_no_change on uow_history is disabled",
        "PROTECTION_MISSING: append-only trigger uow_history_no_truncate on uow_history "
        "is disabled",
        "PROTECTION_MISSING: append-only trigger interaction_logs_no_change on interaction_logs "
        "is disabled",
    ]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgres_dropped_or_defused_triggers_are_found(engine: Engine, session: Session) -> None:
    """A dropped trigger, one given a WHEN, and a function that no longer raises are found."""
    _ddl(
        engine,
        "DROP TRIGGER uow_attributes_no_truncate ON uow_attributes",
        "DROP TRIGGER interaction_logs_no_change ON interaction_logs",
        "CREATE TRIGGER interaction_logs_no_change BEFORE UPDATE OR DELETE ON interaction_logs "
        "FOR EACH ROW WHEN (false) EXECUTE FUNCTION chameleon_reject_change()",
        "CREATE OR REPLACE FUNCTION chameleon_reject_change() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
    )
    assert _problems(session) == [
        "PROTECTION_MISSING: append-only trigger uow_attributes_no_truncate on uow_attributes "
        "is missing",
        "PROTECTION_MISSING: append-only trigger interaction_logs_no_change on interaction_logs "
        "was altered",
        "PROTECTION_MISSING: trigger function chameleon_reject_change is missing or was altered",
    ]
    with engine.begin() as conn:  # the defused function really lets a DELETE through
        conn.execute(text("DELETE FROM uow_history"))
