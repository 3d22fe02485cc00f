"""Fan-out, joins and pilot oversight: new history events and the PILOT actor type.

The CHECK constraints on ``uow_history.event_type`` and ``local_actors.type`` admit the
new values (DECOMPOSITION, JOIN, PILOT_APPROVAL, PILOT_REJECTION, PAUSE, RESUME,
CLARIFICATION, WAIVER; PILOT). PostgreSQL replaces each constraint in place; SQLite
cannot alter a CHECK: the history table is copied (batch mode) with its append-only
triggers lifted during the copy, and the actors table, which other tables reference,
has the CHECK in its stored DDL rewritten (``_sqlite_swap_check``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

from chameleon_workflow.schema import create_statements, drop_statements

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_OLD_EVENTS = ("CREATED", "TRANSITION", "ATTRIBUTES", "SECURITY_BREACH")
_NEW_EVENTS = (
    "DECOMPOSITION",
    "JOIN",
    "PILOT_APPROVAL",
    "PILOT_REJECTION",
    "PAUSE",
    "RESUME",
    "CLARIFICATION",
    "WAIVER",
)
_OLD_ACTORS = ("HUMAN", "AI_AGENT", "SYSTEM")
_NEW_ACTORS = ("PILOT",)

#: (table, constraint name, column, values before this revision, values it adds)
_CHECKS = (
    ("uow_history", "ck_uow_history_history_event", "event_type", _OLD_EVENTS, _NEW_EVENTS),
    ("local_actors", "ck_local_actors_actor_type", "type", _OLD_ACTORS, _NEW_ACTORS),
)


def _condition(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _replace(use_new: bool) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in drop_statements(dialect, ("uow_history",)):
            op.execute(statement)
    for table, name, column, old, new in _CHECKS:
        values, before = (old + new, old) if use_new else (old, old + new)
        if dialect == "sqlite" and table == "local_actors":
            _sqlite_swap_check(table, _condition(column, before), _condition(column, values))
            continue
        with op.batch_alter_table(table, recreate="auto") as batch_op:
            batch_op.drop_constraint(op.f(name), type_="check")
            batch_op.create_check_constraint(op.f(name), _condition(column, values))
    if dialect == "sqlite":
        for statement in create_statements(dialect, ("uow_history",)):
            op.execute(statement)


def _sqlite_swap_check(table: str, before: str, after: str) -> None:
    """Rewrite one CHECK of a table other tables reference, without copying it.

    Copying (batch mode) would drop the referenced table, which with foreign keys on
    counts every referencing row as a violation (and a rename rewrites the references).
    SQLite documents editing the stored DDL for changes that leave the stored rows
    valid: widening the CHECK does; narrowing it (downgrade) is refused while a row
    uses a value it would exclude.
    """
    bind = op.get_bind()
    ddl = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    if before not in ddl:
        raise RuntimeError(f"{table}: CHECK ({before}) not found in its DDL")
    outside = bind.exec_driver_sql(f"SELECT count(*) FROM {table} WHERE NOT ({after})").scalar()
    if outside:
        raise RuntimeError(f"{table}: {outside} rows do not satisfy CHECK ({after})")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
        (ddl.replace(before, after), table),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    _replace(use_new=True)


def downgrade() -> None:
    _replace(use_new=False)
