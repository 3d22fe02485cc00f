"""Workflow definitions are content-hashed and append-only.

Adds ``local_workflows.definition_hash`` (see ``chameleon_workflow.definitions``), fills
it for every definition imported before, then makes the five definition tables
append-only like the ledger, so a plain UPDATE of a guardian's limit is refused.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chameleon_workflow.definitions import DEFINITION_TABLES, stored_definitions
from chameleon_workflow.models import Base
from chameleon_workflow.schema import create_statements, drop_statements

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: SQLite cannot add NOT NULL in place, and a table copy trips the foreign keys
    # pointing at it. A NULL hash never matches, so it reads as an altered definition.
    op.add_column("local_workflows", sa.Column("definition_hash", sa.String(64), nullable=True))
    bind = op.get_bind()
    table = Base.metadata.tables["local_workflows"]  # its id column knows each back end's form
    for workflow, digest in list(stored_definitions(bind)):
        key = table.c.local_workflow_id == workflow["local_workflow_id"]
        bind.execute(table.update().where(key).values(definition_hash=digest))
    for statement in create_statements(bind.dialect.name, DEFINITION_TABLES):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_statements(op.get_bind().dialect.name, DEFINITION_TABLES):
        op.execute(statement)
    op.drop_column("local_workflows", "definition_hash")
