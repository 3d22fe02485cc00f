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
        "ALTER TABLE interaction_logs ENABLE REPLICA TRIGGER interaction_logs_no_delete",
    )
    assert _problems(session) == [
        "PROTECTION_MISSING: append-only trigger uow_history_no_update on uow_history is disabled",
        "PROTECTION_MISSING: append-only trigger uow_history_no_delete on uow_history is disabled",
        "PROTECTION_MISSING: append-only trigger uow_history_no_truncate on uow_history "
        "is disabled",
        "PROTECTION_MISSING: append-only trigger interaction_logs_no_delete on interaction_logs "
        "is disabled",
    ]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgres_dropped_or_defused_triggers_are_found(engine: Engine, session: Session) -> None:
    """A dropped trigger, one given a WHEN, and a function that no longer raises are found."""
    _ddl(
        engine,
        "DROP TRIGGER uow_attributes_no_truncate ON uow_attributes",
        "DROP TRIGGER interaction_logs_no_update ON interaction_logs",
        "CREATE TRIGGER interaction_logs_no_update BEFORE UPDATE ON interaction_logs "
        "FOR EACH ROW WHEN (false) EXECUTE FUNCTION chameleon_reject_change()",
        "CREATE OR REPLACE FUNCTION chameleon_reject_change() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
    )
    assert _problems(session) == [
        "PROTECTION_MISSING: append-only trigger uow_attributes_no_truncate on uow_attributes "
        "is missing",
        "PROTECTION_MISSING: append-only trigger interaction_logs_no_update on interaction_logs "
        "was altered",
        "PROTECTION_MISSING: trigger function chameleon_reject_change is missing or was altered",
    ]
    with engine.begin() as conn:  # the defused function really lets an UPDATE through
        conn.execute(text("UPDATE uow_history SET reasoning = 'rewritten'"))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_identity_trigger_is_checked(engine: Engine, session: Session) -> None:
    """The trigger keeping a UOW row's identity is checked like the append-only ones."""
    _ddl(engine, "DROP TRIGGER units_of_work_identity")
    assert _problems(session) == [
        "PROTECTION_MISSING: append-only trigger units_of_work_identity is missing",
    ]
    _ddl(
        engine,
        "CREATE TRIGGER units_of_work_identity BEFORE UPDATE OF created_at ON units_of_work "
        "BEGIN SELECT RAISE(ABORT, 'no'); END",
    )
    assert _problems(session) == [
        "PROTECTION_MISSING: append-only trigger units_of_work_identity was altered",
    ]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgres_identity_trigger_is_checked(engine: Engine, session: Session) -> None:
    """A disabled identity trigger, one watching fewer columns, a defused function: found."""
    _ddl(engine, "ALTER TABLE units_of_work DISABLE TRIGGER units_of_work_identity")
    assert _problems(session) == [
        "PROTECTION_MISSING: identity trigger units_of_work_identity on units_of_work is disabled",
    ]
    _ddl(
        engine,
        "DROP TRIGGER units_of_work_identity ON units_of_work",
        "CREATE TRIGGER units_of_work_identity BEFORE UPDATE OF created_at ON units_of_work "
        "FOR EACH ROW EXECUTE FUNCTION chameleon_keep_identity()",
        "CREATE OR REPLACE FUNCTION chameleon_keep_identity() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    )
    assert _problems(session) == [
        "PROTECTION_MISSING: identity trigger units_of_work_identity on units_of_work was altered",
        "PROTECTION_MISSING: trigger function chameleon_keep_identity is missing or was altered",
    ]
    _ddl(engine, "DROP TRIGGER units_of_work_identity ON units_of_work")
    assert _problems(session) == [
        "PROTECTION_MISSING: identity trigger units_of_work_identity on units_of_work is missing",
        "PROTECTION_MISSING: trigger function chameleon_keep_identity is missing or was altered",
    ]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgres_key_ledger_is_append_only(engine: Engine, session: Session) -> None:
    """The key ledger's triggers are checked like the other append-only tables'."""
    _ddl(engine, "ALTER TABLE ledger_keys DISABLE TRIGGER ledger_keys_no_update")
    assert _problems(session) == [
        "PROTECTION_MISSING: append-only trigger ledger_keys_no_update on ledger_keys is disabled",
    ]
