"""Log streams and the admin ledger.

``interaction_logs`` rows gain their writer's stream: ``stream_id``, ``stream_seq``, the
``key_id`` and the ``chain_hash`` that links each row to the one before it in its stream
(``log_links``), and two row kinds, STREAM_OPENED and STREAM_CLOSED. The rows written
before have no stream: their number and digest are sealed in the one row of the legacy
stream, so a row added later without a stream, or one of them changed or removed, is
found. ``admin_events`` (append-only) records admin actions (``admin_ledger``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from chameleon_workflow.columns import GUID, JSONDoc, UTCDateTime
from chameleon_workflow.hashing import format_timestamp
from chameleon_workflow.log_links import (
    LEGACY_LOG_FIELDS,
    LEGACY_STREAM_ID,
    legacy_digest,
    legacy_link,
)
from chameleon_workflow.schema import create_statements, drop_statements

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PROTECTED_0006 = ("admin_events",)
_STREAM_COLUMNS = ("stream_id", "stream_seq", "key_id", "chain_hash")
_OLD_TYPES = (
    "INTERACTION",
    "TELEMETRY",
    "ERROR",
    "GUARDIAN_DECISION",
    "STATE_TRANSITION",
    "TELEMETRY_LOSS",
)
_NEW_TYPES = (*_OLD_TYPES, "STREAM_OPENED", "STREAM_CLOSED")
_CHECK = "ck_interaction_logs_log_type"


def _types_check(types: tuple[str, ...]) -> str:
    return "log_type IN (" + ", ".join(f"'{t}'" for t in types) + ")"


def _big_integer() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


#: The log table as it was before this revision, for reading the rows to seal.
_LEGACY = sa.Table(
    "interaction_logs",
    sa.MetaData(),
    sa.Column("log_id", GUID()),
    sa.Column("instance_id", GUID()),
    sa.Column("uow_id", GUID()),
    sa.Column("actor_id", GUID()),
    sa.Column("role_id", GUID()),
    sa.Column("interaction_id", GUID()),
    sa.Column("timestamp", UTCDateTime()),
    sa.Column("log_type", sa.String(32)),
    sa.Column("event_details", JSONDoc),
    sa.Column("error_metadata", JSONDoc),
    sa.Column("stream_id", GUID()),
    sa.Column("stream_seq", _big_integer()),
    sa.Column("key_id", sa.String(64)),
    sa.Column("chain_hash", sa.String(64)),
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _change_log_table(dialect, _NEW_TYPES, add=True)
    _seal_legacy_rows()
    op.create_table(
        "admin_events",
        sa.Column("sequence", _big_integer(), autoincrement=False, nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("principal", sa.String(length=32), nullable=False),
        sa.Column("actor_id", GUID(), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("instance_id", GUID(), nullable=True),
        sa.Column("subject_id", sa.String(length=64), nullable=True),
        sa.Column("details", JSONDoc, nullable=True),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("chain_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_admin_events")),
    )
    for statement in create_statements(dialect, PROTECTED_0006):
        op.execute(statement)


def _change_log_table(dialect: str, types: tuple[str, ...], *, add: bool) -> None:
    """Add (or drop) the stream columns and widen (or narrow) the row kinds."""
    if dialect == "sqlite":
        # SQLite changes a CHECK constraint by copying the table, which loses its triggers.
        for statement in drop_statements(dialect, ("interaction_logs",)):
            op.execute(statement)
    with op.batch_alter_table("interaction_logs", recreate="auto") as batch:
        batch.drop_constraint(op.f(_CHECK), type_="check")
        batch.create_check_constraint(op.f(_CHECK), sa.text(_types_check(types)))
        if add:
            batch.add_column(sa.Column("stream_id", GUID(), nullable=True))
            batch.add_column(sa.Column("stream_seq", _big_integer(), nullable=True))
            batch.add_column(sa.Column("key_id", sa.String(length=64), nullable=True))
            batch.add_column(sa.Column("chain_hash", sa.String(length=64), nullable=True))
        else:
            for column in reversed(_STREAM_COLUMNS):
                batch.drop_column(column)
    if dialect == "sqlite":
        for statement in create_statements(dialect, ("interaction_logs",)):
            op.execute(statement)


def _seal_legacy_rows() -> None:
    """Count and digest the rows written before streams; seal them in the legacy stream."""
    bind = op.get_bind()
    columns = [_LEGACY.c[name] for name in LEGACY_LOG_FIELDS]
    query = sa.select(*columns).order_by(_LEGACY.c.log_id)
    count, digest = legacy_digest(_canonical(row) for row in bind.execute(query))
    now = datetime.now(UTC)
    row: dict[str, Any] = {
        "log_id": str(uuid.uuid5(LEGACY_STREAM_ID, "seal")),
        "instance_id": None,
        "uow_id": None,
        "actor_id": None,
        "role_id": None,
        "interaction_id": None,
        "timestamp": format_timestamp(now),
        "log_type": "STREAM_CLOSED",
        "event_details": {"legacy_rows": count, "legacy_digest": digest},
        "error_metadata": None,
        "stream_id": str(LEGACY_STREAM_ID),
        "stream_seq": 0,
        "key_id": None,
    }
    link = legacy_link(row)
    row.update(
        log_id=uuid.UUID(row["log_id"]),
        timestamp=now,
        stream_id=LEGACY_STREAM_ID,
        chain_hash=link,
    )
    bind.execute(sa.insert(_LEGACY).values(**row))


def _canonical(row: Any) -> tuple[Any, ...]:
    """Return a legacy row's values as its digest takes them (ids and time as text)."""
    return tuple(
        format_timestamp(v)
        if isinstance(v, datetime)
        else str(v)
        if isinstance(v, uuid.UUID)
        else v
        for v in row
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in drop_statements(dialect, PROTECTED_0006):
        op.execute(statement)
    op.drop_table("admin_events")
    # The narrower row kinds would refuse the stream rows: a downgrade removes them.
    for statement in drop_statements(dialect, ("interaction_logs",)):
        op.execute(statement)
    op.execute("DELETE FROM interaction_logs WHERE stream_id IS NOT NULL")
    if dialect != "sqlite":  # on SQLite the table copy below makes them again
        for statement in create_statements(dialect, ("interaction_logs",)):
            op.execute(statement)
    _change_log_table(dialect, _OLD_TYPES, add=False)
