"""Keyed links: history rows in link format 2, salted attribute digests, the key ledger.

History rows gain the columns of format 2 (``link_version`` 1 on every row written before,
so those keep verifying as they did), attribute rows their salt, value digest and the
history row that commits to them, and ``ledger_keys`` (append-only) records the keys made
current. Its row 0 seals what was written before: the number of history rows (and their
links' digest) and of attribute rows that carry no keyed link, so a row added later in
the old, unkeyed format is found. A UOW row's identity columns become unchangeable.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from chameleon_workflow.columns import GUID, UTCDateTime
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.keys import LegacyTally, key_event_link
from chameleon_workflow.schema import (
    create_statements,
    drop_identity_statements,
    drop_statements,
    identity_statements,
)

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PROTECTED_0003 = ("ledger_keys",)
_HISTORY_COLUMNS = (
    "link_version",
    "key_id",
    "holder_id",
    "retry_count",
    "attributes_digest",
    "local_workflow_id",
    "parent_id",
)
_ATTRIBUTE_COLUMNS = ("salt", "value_digest", "history_sequence")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column(
        "uow_history",
        sa.Column("link_version", sa.Integer(), server_default=sa.text("1"), nullable=False),
    )
    op.add_column("uow_history", sa.Column("key_id", sa.String(length=64), nullable=True))
    op.add_column("uow_history", sa.Column("holder_id", GUID(), nullable=True))
    op.add_column("uow_history", sa.Column("retry_count", sa.Integer(), nullable=True))
    op.add_column(
        "uow_history", sa.Column("attributes_digest", sa.String(length=64), nullable=True)
    )
    op.add_column("uow_history", sa.Column("local_workflow_id", GUID(), nullable=True))
    op.add_column("uow_history", sa.Column("parent_id", GUID(), nullable=True))
    op.add_column("uow_attributes", sa.Column("salt", sa.String(length=32), nullable=True))
    op.add_column("uow_attributes", sa.Column("value_digest", sa.String(length=64), nullable=True))
    op.add_column("uow_attributes", sa.Column("history_sequence", sa.Integer(), nullable=True))
    keys_table = op.create_table(
        "ledger_keys",
        sa.Column("sequence", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("legacy_history_rows", sa.Integer(), nullable=True),
        sa.Column("legacy_attribute_rows", sa.Integer(), nullable=True),
        sa.Column("legacy_digest", sa.String(length=64), nullable=True),
        sa.Column("link_version", sa.Integer(), nullable=False),
        sa.Column("chain_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_ledger_keys")),
    )
    op.bulk_insert(keys_table, [_seal()])
    for statement in create_statements(dialect, PROTECTED_0003):
        op.execute(statement)
    for statement in identity_statements(dialect):
        op.execute(statement)


def _seal() -> dict[str, object]:
    """Return key-ledger row 0: what exists now in the unkeyed format, counted and digested."""
    bind = op.get_bind()
    tally = LegacyTally()
    for (link,) in bind.execute(
        sa.text("SELECT chain_hash FROM uow_history ORDER BY uow_id, sequence")
    ):
        tally.add(link)
    attributes = bind.execute(sa.text("SELECT count(*) FROM uow_attributes")).scalar_one()
    now = datetime.now(UTC)
    row: dict[str, object] = {
        "sequence": 0,
        "key_id": None,
        "fingerprint": None,
        "recorded_at": format_timestamp(now),
        "legacy_history_rows": tally.rows,
        "legacy_attribute_rows": attributes,
        "legacy_digest": tally.hexdigest(),
        "link_version": 1,
    }
    row["chain_hash"] = key_event_link(None, row, None)
    row["recorded_at"] = now
    return row


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in drop_identity_statements(dialect):
        op.execute(statement)
    for statement in drop_statements(dialect, PROTECTED_0003):
        op.execute(statement)
    op.drop_table("ledger_keys")
    # SQLite drops columns by copying the table, which loses its triggers: lift them first.
    for statement in drop_statements(dialect, ("uow_history", "uow_attributes")):
        op.execute(statement)
    with op.batch_alter_table("uow_attributes", schema=None) as batch_op:
        for column in reversed(_ATTRIBUTE_COLUMNS):
            batch_op.drop_column(column)
    with op.batch_alter_table("uow_history", schema=None) as batch_op:
        for column in reversed(_HISTORY_COLUMNS):
            batch_op.drop_column(column)
    for statement in create_statements(dialect, ("uow_history", "uow_attributes")):
        op.execute(statement)
