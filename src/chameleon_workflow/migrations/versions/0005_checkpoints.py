"""Signed checkpoints: the sealer's leaf positions and the signed tree heads, both append-only.

``ledger_leaves`` gives every ledger row (history, attribute versions, log rows, workflow
definition rows) one position in the checkpoint tree; ``ledger_nodes`` caches the hashes
of its larger perfect subtrees for proofs; ``checkpoints`` keeps each signed tree head
with the frontier the next seal grows. See docs/checkpoints.md.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from chameleon_workflow.columns import UTCDateTime
from chameleon_workflow.schema import create_statements, drop_statements

#: The tables this revision made append-only.
PROTECTED_0003C = ("ledger_leaves", "ledger_nodes", "checkpoints")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _big_integer() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_leaves",
        sa.Column("position", _big_integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("row_id", sa.String(length=64), nullable=False),
        sa.Column("leaf_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_ledger_leaves")),
        sa.UniqueConstraint("kind", "row_id", name=op.f("uq_ledger_leaves_kind_row_id")),
    )
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("node_index", _big_integer(), autoincrement=False, nullable=False),
        sa.Column("node_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("level", "node_index", name=op.f("pk_ledger_nodes")),
    )
    op.create_table(
        "checkpoints",
        sa.Column("tree_size", _big_integer(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.Column(
            "frontier",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_checkpoints")),
    )
    dialect = op.get_bind().dialect.name
    # On PostgreSQL the statements begin with the shared trigger function: re-creating it
    # (CREATE OR REPLACE, same body) is harmless, and 0001's downgrade drops it.
    for statement in create_statements(dialect, PROTECTED_0003C):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_statements(op.get_bind().dialect.name, PROTECTED_0003C):
        op.execute(statement)
    op.drop_table("checkpoints")
    op.drop_table("ledger_nodes")
    op.drop_table("ledger_leaves")
