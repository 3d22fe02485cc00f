"""Role plans refuse names that could smuggle SQL, and one role serving as both."""

from __future__ import annotations

import pytest

from chameleon_workflow.errors import ConfigurationError
from chameleon_workflow.roles import RolePlan, role_statements


def test_role_names_are_checked() -> None:
    """A role name that is not a plain identifier, or one role for both, is refused."""
    with pytest.raises(ConfigurationError, match="must be a lowercase identifier"):
        RolePlan('x"; DROP TABLE units_of_work; --', "app")
    with pytest.raises(ConfigurationError, match="different roles"):
        RolePlan("same", "same")


def test_ledger_tables_get_no_update_or_delete() -> None:
    """Ledger tables are granted SELECT and INSERT (UPDATE of value columns, for redaction,
    and DELETE on the archivable ones, which their triggers admit only under an archive
    manifest); others UPDATE too; DELETE otherwise only on role assignments."""
    plan = RolePlan("own", "app", app_password="it's")
    tables = ["alembic_version", "uow_history", "admin_events", "units_of_work"]
    tables.append("actor_role_assignments")
    grants = [
        s for s in role_statements(plan, tables) if s.startswith("GRANT") and " ON SCHEMA " not in s
    ]
    assert grants == [
        'GRANT SELECT ON alembic_version TO "app"',
        'GRANT SELECT, INSERT, UPDATE (changes), DELETE ON uow_history TO "app"',
        'GRANT SELECT, INSERT ON admin_events TO "app"',
        'GRANT SELECT, INSERT, UPDATE ON units_of_work TO "app"',
        'GRANT SELECT, INSERT, UPDATE, DELETE ON actor_role_assignments TO "app"',
    ]
    assert """ALTER ROLE "app" LOGIN PASSWORD 'it''s'""" in role_statements(plan, [])
