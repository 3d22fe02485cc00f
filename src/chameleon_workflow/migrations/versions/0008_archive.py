"""Archives: recorded manifests, the rows they cover, restores; DELETE only under a manifest.

``archive_manifests`` keeps each signed segment manifest, ``archived_rows`` every ledger
row it covers (table, id, position), ``archive_restores`` each segment brought back. All
three are append-only. The DELETE triggers of ``uow_history``, ``uow_attributes`` and
``interaction_logs`` now let a row go only while ``archived_rows`` names it under a
manifest not restored since (``schema.archive_delete_statements``); on PostgreSQL the
one UPDATE-or-DELETE trigger of each becomes two. See docs/lifecycle.md.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from chameleon_workflow.columns import UTCDateTime
from chameleon_workflow.schema import (
    archive_delete_statements,
    create_statements,
    drop_statements,
    unarchive_delete_statements,
)

#: The tables this revision made append-only.
PROTECTED_0008 = ("archive_manifests", "archived_rows", "archive_restores")

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json_type = sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
    )
    op.create_table(
        "archive_manifests",
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column("manifest", json_type, nullable=False),
        sa.PrimaryKeyConstraint("segment_id", name=op.f("pk_archive_manifests")),
    )
    op.create_table(
        "archived_rows",
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("row_id", sa.String(length=64), nullable=False),
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("kind", "row_id", "segment_id", name=op.f("pk_archived_rows")),
    )
    op.create_table(
        "archive_restores",
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("restored_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", name=op.f("pk_archive_restores")),
    )
    dialect = op.get_bind().dialect.name
    for statement in create_statements(dialect, PROTECTED_0008):
        op.execute(statement)
    for statement in archive_delete_statements(dialect):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in unarchive_delete_statements(dialect):
        op.execute(statement)
    for statement in drop_statements(dialect, PROTECTED_0008):
        op.execute(statement)
    op.drop_table("archive_restores")
    op.drop_table("archived_rows")
    op.drop_table("archive_manifests")
