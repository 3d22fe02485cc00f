"""Redaction: the ``redactions`` table and append-only triggers that let a redaction through.

PostgreSQL's ``{t}_no_change`` (BEFORE UPDATE OR DELETE) becomes ``{t}_no_update`` and
``{t}_no_delete``; on the tables holding attribute values (``schema.REDACTABLE``) the
UPDATE trigger admits the one change a redaction makes, every other UPDATE and every
DELETE is refused as before. SQLite's ``{t}_no_update`` of those tables is recreated
with the same narrow exception. The new table is append-only too.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chameleon_workflow.schema import (
    DROP_REDACT_FUNCTION,
    PROTECTED_TABLES,
    REDACTABLE,
    create_statements,
    drop_guard_statements,
    drop_statements,
    guard_statements,
)

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

#: The tables protected before this revision, and the one it adds.
_BEFORE = tuple(t for t in PROTECTED_TABLES if t != "redactions")
_NEW = ("redactions",)


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
    changed = _BEFORE if dialect == "postgresql" else tuple(REDACTABLE)
    for statement in drop_statements(dialect, changed):
        op.execute(statement)
    for statement in guard_statements(dialect, (*changed, *_NEW)):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    changed = _BEFORE if dialect == "postgresql" else tuple(REDACTABLE)
    for statement in drop_guard_statements(dialect, (*changed, *_NEW)):
        op.execute(statement)
    if dialect == "postgresql":
        op.execute(DROP_REDACT_FUNCTION)
    for statement in create_statements(dialect, changed):
        op.execute(statement)
    op.drop_index("ix_redactions_row", table_name="redactions")
    op.drop_table("redactions")
