"""Redaction: the ``redactions`` table and append-only triggers that let a redaction through.

On PostgreSQL every protected table's ``{t}_no_change`` (BEFORE UPDATE OR DELETE) left by
earlier revisions becomes ``{t}_no_update`` and ``{t}_no_delete``, as 0008 already did for
the archivable tables. On the tables holding attribute values (``append_only.REDACTABLE``)
the UPDATE trigger admits the one change a redaction makes; every other UPDATE is refused
as before, and DELETE stays as 0008 left it (refused, or admitted under an archive
manifest). SQLite's ``{t}_no_update`` of those tables is recreated with the same narrow
exception. The new table is append-only too.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chameleon_workflow.append_only import (
    DROP_REDACT_FUNCTION,
    REDACTABLE,
    archive_form_statements,
    drop_guard_statements,
    guard_statements,
)
from chameleon_workflow.schema import PROTECTED_TABLES, REDACTION_TABLES, sqlite_triggers

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: The tables protected before this revision.
_BEFORE = tuple(t for t in PROTECTED_TABLES if t not in REDACTION_TABLES)


def _big_integer() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "redactions",
        sa.Column("redaction_id", _big_integer(), autoincrement=True, nullable=False),
        sa.Column("admin_sequence", _big_integer(), nullable=False),
        sa.Column("table_name", sa.String(length=40), nullable=False),
        sa.Column("row_id", sa.String(length=64), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("redaction_id", name=op.f("pk_redactions")),
    )
    op.create_index("ix_redactions_row", "redactions", ["table_name", "row_id"])
    if dialect == "postgresql":
        statements = drop_guard_statements(dialect, _BEFORE)
        statements += guard_statements(dialect, (*_BEFORE, *REDACTION_TABLES))
    else:
        # Only the UPDATE triggers of the tables holding values change on SQLite.
        redactable = guard_statements(dialect, tuple(REDACTABLE))
        statements = [f"DROP TRIGGER IF EXISTS {t}_no_update" for t in REDACTABLE]
        statements += [s for s in redactable if s.split()[2].endswith("_no_update")]
        statements += guard_statements(dialect, REDACTION_TABLES)
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        statements = drop_guard_statements(dialect, (*_BEFORE, *REDACTION_TABLES))
        statements += [DROP_REDACT_FUNCTION, *archive_form_statements(dialect)]
    else:
        statements = drop_guard_statements(dialect, REDACTION_TABLES)
        statements += [f"DROP TRIGGER IF EXISTS {t}_no_update" for t in REDACTABLE]
        statements += [sqlite_triggers(t, PROTECTED_TABLES[t])[0] for t in REDACTABLE]
    for statement in statements:
        op.execute(statement)
    op.drop_index("ix_redactions_row", table_name="redactions")
    op.drop_table("redactions")
