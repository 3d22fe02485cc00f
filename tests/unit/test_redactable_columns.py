"""The redaction-aware triggers know every column of the tables they guard."""

from __future__ import annotations

from chameleon_workflow.append_only import REDACTABLE, guard_statements
from chameleon_workflow.models import Base


def test_each_redactable_table_lists_exactly_its_columns() -> None:
    """Value columns plus the others are the model's columns, so SQLite compares them all."""
    for table, (key, values, others) in REDACTABLE.items():
        columns = [c.name for c in Base.metadata.tables[table].columns]
        assert sorted((*values, *others)) == sorted(columns)
        assert key in others
        assert not set(values) & set(others)


def test_sqlite_update_triggers_compare_every_other_column() -> None:
    """Each redactable table's SQLite UPDATE trigger names each kept column of NEW and OLD."""
    statements = guard_statements("sqlite", tuple(REDACTABLE))
    for table, (_, _, others) in REDACTABLE.items():
        (update,) = [s for s in statements if s.startswith(f"CREATE TRIGGER {table}_no_update")]
        for column in others:
            assert f"NEW.{column} IS OLD.{column}" in update
